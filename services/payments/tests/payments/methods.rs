//! Lease payment methods, and card data refused before anything is stored.

use lessor_payments::{CARD_NUMBER_REFUSED, NewPayment, PaymentError, PaymentMethod, find_card_number};
use serde_json::json;

use crate::helpers::{Engine, ScriptedGateway, TestDb, today};
use crate::on_each_engine;

async fn a_lease_payment_method_is_set_read_and_replaced(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let stranger = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let mandate = json!({
        "provider": "bank",
        "payment_method": {"iban": "DE89 3704 0044 0532 0130 00", "mandate_reference": "M-1",
                           "mandate_signed_on": "2025-01-31", "debtor_name": "Jane Roe"},
    });

    assert!(service.payment_method(customer, lease_id).await.unwrap().is_none());
    let set = service.set_payment_method(customer, lease_id, &mandate, today()).await.unwrap();
    let read = service.payment_method(staff, lease_id).await.unwrap().unwrap();

    assert_eq!((read.provider.as_str(), read.method.kind()), ("bank", "sepa_mandate"));
    assert_eq!(read.method, set.method);
    assert_eq!(
        read.method.wire(),
        r#"{"debtor_name":"Jane Roe","iban":"DE89370400440532013000","mandate_reference":"M-1","mandate_signed_on":"2025-01-31"}"#
    );
    assert!(!format!("{read:?}").contains("DE89"), "never printed");
    assert!(matches!(service.payment_method(stranger, lease_id).await, Err(PaymentError::NotFound)));
    let token = json!({"provider": "stripe", "payment_method": "pm_123"});
    assert!(matches!(
        service.set_payment_method(stranger, lease_id, &token, today()).await,
        Err(PaymentError::NotFound)
    ));

    service.set_payment_method(staff, lease_id, &token, today()).await.unwrap();
    let replaced = service.payment_method(customer, lease_id).await.unwrap().unwrap();
    assert_eq!((replaced.provider.as_str(), replaced.method), ("stripe", PaymentMethod::Token("pm_123".into())));
    assert_eq!(t.count("lease_payment_methods").await, 1);
    assert!(service.remove_payment_method(customer, lease_id).await.unwrap());
    assert!(service.payment_method(customer, lease_id).await.unwrap().is_none());
}

async fn card_numbers_are_refused_and_nothing_is_stored(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let payment_body = |method: serde_json::Value| json!({"lease_id": lease_id, "amount": 100, "currency": "EUR", "provider": "stripe", "payment_method": method});

    // A valid Luhn number with spaces, anywhere in the body, is refused by path.
    let card = payment_body(json!("4111 1111 1111 1111"));
    assert_eq!(find_card_number(&card).as_deref(), Some("payment_method"));
    let refused = NewPayment::parse(&card, today()).unwrap_err();
    assert_eq!(refused.reason_for("payment_method"), Some(CARD_NUMBER_REFUSED));
    let in_mandate = json!({"provider": "bank", "payment_method": {"iban": "DE89370400440532013000",
        "mandate_reference": "M-1", "mandate_signed_on": "2025-01-31", "debtor_name": "4111-1111-1111-1111"}});
    let refused = service.set_payment_method(customer, lease_id, &in_mandate, today()).await.unwrap_err();
    assert!(
        matches!(&refused, PaymentError::Invalid(e) if e.reason_for("payment_method.debtor_name") == Some(CARD_NUMBER_REFUSED)),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains("4111"));
    assert_eq!(t.count("lease_payment_methods").await, 0);
    assert_eq!(gateway.validate_calls(), 0);

    // Sixteen digits failing Luhn are not a card; a token is fine.
    for method in [json!("4111111111111112"), json!("pm_card_visa")] {
        let new = NewPayment::parse(&payment_body(method), today()).unwrap();
        service.create(customer, &new, None).await.unwrap();
    }
    assert_eq!(t.count("payments").await, 2);
}

on_each_engine!(a_lease_payment_method_is_set_read_and_replaced, card_numbers_are_refused_and_nothing_is_stored);
