//! Test harness: a fresh migrated database per test (SQLite file or PostgreSQL database via
//! `PgTestDb`), seeded users and active leases, and a scripted provider gateway.
//!
//! The gateway double stands in for the plugin runtime (the host's tests run the real
//! plugins): it answers from a script and, like a real provider, deduplicates charges and
//! refunds by idempotency key, so "charged twice" is observable.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Months, NaiveDate, Utc};
use lessor_events::{Event, Outbox, PAYMENTS};
use lessor_leases::repo::{LeaseRepository, SqlLeases};
use lessor_leases::{Installment, LeaseInput, LeaseStatus, NewLease, VehicleInput};
use lessor_payments::{
    GatewayError, PaymentLookup, PaymentOutcome, PaymentRequest, PaymentService, ProviderCapabilities, ProviderGateway,
    ProviderPaymentStatus, ProviderRefundStatus, ReconcilePolicy, RefundLookup, RefundOutcome, RefundRequest, Viewer,
};
use lessor_store::on_db;
pub use lessor_store::testing::Engine;
use uuid::Uuid;

/// Runs an `async fn(Engine)` test once per engine, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_each_engine {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Engine;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() { super::$name(Engine::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() { super::$name(Engine::Postgres).await }
        }
    )*};
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A migrated database of one engine (`lessor_store::testing::TestDb`), gone when dropped,
/// with the seeding and inspection this crate's tests share.
pub struct TestDb(lessor_store::testing::TestDb);

impl Deref for TestDb {
    type Target = lessor_store::testing::TestDb;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestDb {
    pub async fn new(engine: Engine) -> Self {
        init_logging();
        Self(lessor_store::testing::TestDb::new(engine, "lessor_payments_test").await)
    }

    /// A user of role `customer` (or `operator` for staff); its viewer.
    pub async fn user(&self, staff: bool) -> Viewer {
        let id = Uuid::new_v4();
        let role = if staff { "operator" } else { "customer" };
        let sql = "INSERT INTO users (id, email, role, password_hash, created_at) VALUES ($1, $2, $3, 'x', $4)";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(format!("{id}@example.com")).bind(role).bind(Utc::now())
            .execute(pool).await.map(drop))
        .unwrap();
        Viewer { user_id: id, is_staff: staff }
    }

    /// An active EUR lease of `owner` whose first installment fell due `months_ago` months
    /// before today; its installments.
    pub async fn active_lease(&self, owner: Viewer, months_ago: u32, monthly_amount: i64) -> (Uuid, Vec<Installment>) {
        let today = Utc::now().date_naive();
        let start = today.checked_sub_months(Months::new(months_ago)).unwrap();
        let input = LeaseInput {
            vehicle: Some(VehicleInput {
                vin: Some("1M8GDM9AXKP042788".into()),
                make: Some("Ford".into()),
                model: Some("Transit".into()),
                year: Some(2024),
                category: Some("van".into()),
            }),
            start_date: Some(start.format("%Y-%m-%d").to_string()),
            term_months: Some(12),
            monthly_amount: Some(monthly_amount),
            deposit: Some(0),
            currency: Some("EUR".into()),
        };
        let new = NewLease::parse(input, today).expect("a valid lease");
        let leases = SqlLeases::new(self.db.clone());
        let lease = leases.create(owner.user_id, &new).await.unwrap();
        leases.set_status(lease.id, LeaseStatus::Draft, LeaseStatus::Active).await.unwrap().unwrap();
        let installments = leases.installments(lease.id).await.unwrap();
        (lease.id, installments)
    }

    pub async fn installment_status(&self, id: Uuid) -> String {
        let sql = "SELECT status FROM installments WHERE id = $1";
        on_db!(&self.db, pool => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await).unwrap()
    }

    pub async fn set_installment_status(&self, id: Uuid, status: &str) {
        let sql = "UPDATE installments SET status = $2 WHERE id = $1";
        on_db!(&self.db, pool => sqlx::query(sql).bind(id).bind(status).execute(pool).await.map(drop)).unwrap();
    }

    pub async fn set_lease_status(&self, id: Uuid, status: &str) {
        let sql = "UPDATE leases SET status = $2 WHERE id = $1";
        on_db!(&self.db, pool => sqlx::query(sql).bind(id).bind(status).execute(pool).await.map(drop)).unwrap();
    }

    /// Every event in the `payments` outbox, in insertion order.
    pub async fn events(&self) -> Vec<Event> {
        let entries = Outbox::new(self.db.clone()).entries(PAYMENTS).await.unwrap();
        entries.iter().map(|e| Event::from_json(&e.payload).unwrap()).collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        on_db!(&self.db, pool => sqlx::query_scalar(&sql).fetch_one(pool).await).unwrap()
    }

    pub fn service(&self, gateway: &Arc<ScriptedGateway>) -> PaymentService {
        PaymentService::new(self.db.clone(), gateway.clone(), ReconcilePolicy::default())
    }
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// What the double does on one `process` call.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answers with this status (and charges, unless `Failed`).
    Answer(ProviderPaymentStatus),
    /// Refuses without charging.
    Refuse(GatewayError),
    /// Charges (succeeded) but the answer is lost: the caller sees this error.
    ChargeThenLose(GatewayError),
    /// Answers `succeeded` with this transaction id (whatever other payments got).
    AnswerTx(String),
}

/// What the double does on one `refund` call.
#[derive(Debug, Clone)]
pub enum RefundStep {
    Answer(ProviderRefundStatus),
    Refuse(GatewayError),
    RefundThenLose(GatewayError),
}

#[derive(Default)]
struct State {
    validate: VecDeque<Result<(), GatewayError>>,
    process: VecDeque<Step>,
    refund: VecDeque<RefundStep>,
    /// Charges made, by idempotency key: a repeated key answers the first outcome.
    charges: HashMap<String, PaymentOutcome>,
    refunds: HashMap<String, RefundOutcome>,
    validate_calls: usize,
    /// Answers `retrieve_*` from the charges and refunds made (else `NotSupported`, the default).
    retrieve: bool,
    retrieve_calls: usize,
    capabilities: Option<ProviderCapabilities>,
    process_calls: Vec<PaymentRequest>,
    refund_calls: Vec<RefundRequest>,
}

/// A provider gateway answering from a script; by default everything succeeds.
#[derive(Default)]
pub struct ScriptedGateway {
    state: Mutex<State>,
}

impl ScriptedGateway {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn on_validate(&self, answer: Result<(), GatewayError>) {
        self.state.lock().unwrap().validate.push_back(answer);
    }

    pub fn on_process(&self, step: Step) {
        self.state.lock().unwrap().process.push_back(step);
    }

    /// Answers `retrieve_payment`/`retrieve_refund` as a 0.2.0 provider does: what it made under
    /// the lookup's idempotency key, or `None`.
    pub fn with_retrieve(&self) {
        self.state.lock().unwrap().retrieve = true;
    }

    pub fn retrieve_calls(&self) -> usize {
        self.state.lock().unwrap().retrieve_calls
    }

    /// What the provider declares it offers (enforced by the service before calling).
    pub fn set_capabilities(&self, capabilities: ProviderCapabilities) {
        self.state.lock().unwrap().capabilities = Some(capabilities);
    }

    pub fn on_refund(&self, step: RefundStep) {
        self.state.lock().unwrap().refund.push_back(step);
    }

    /// Payments charged (distinct idempotency keys that took money).
    pub fn charges(&self) -> usize {
        let state = self.state.lock().unwrap();
        state.charges.values().filter(|o| o.status == ProviderPaymentStatus::Succeeded).count()
    }

    pub fn process_calls(&self) -> Vec<PaymentRequest> {
        self.state.lock().unwrap().process_calls.clone()
    }

    pub fn validate_calls(&self) -> usize {
        self.state.lock().unwrap().validate_calls
    }

    pub fn refund_calls(&self) -> Vec<RefundRequest> {
        self.state.lock().unwrap().refund_calls.clone()
    }

    /// Refunds made (distinct idempotency keys that returned money).
    pub fn refunds_made(&self) -> usize {
        let state = self.state.lock().unwrap();
        state.refunds.values().filter(|o| o.status == ProviderRefundStatus::Succeeded).count()
    }
}

fn outcome(request: &PaymentRequest, status: ProviderPaymentStatus) -> PaymentOutcome {
    PaymentOutcome {
        status,
        provider_tx_id: format!("tx_{}", request.payment_id.simple()),
        decline_code: (status == ProviderPaymentStatus::Failed).then(|| "insufficient_funds".to_owned()),
        next_action_url: (status == ProviderPaymentStatus::RequiresAction).then(|| "https://psp.test/3ds".to_owned()),
    }
}

#[async_trait]
impl ProviderGateway for ScriptedGateway {
    fn capabilities(&self, _provider: &str) -> Option<ProviderCapabilities> {
        self.state.lock().unwrap().capabilities.clone()
    }

    async fn retrieve_payment(
        &self,
        _provider: &str,
        lookup: &PaymentLookup,
    ) -> Result<Option<PaymentOutcome>, GatewayError> {
        let mut state = self.state.lock().unwrap();
        if !state.retrieve {
            return Err(GatewayError::NotSupported);
        }
        state.retrieve_calls += 1;
        Ok(state.charges.get(&lookup.idempotency_key).cloned())
    }

    async fn retrieve_refund(
        &self,
        _provider: &str,
        lookup: &RefundLookup,
    ) -> Result<Option<RefundOutcome>, GatewayError> {
        let mut state = self.state.lock().unwrap();
        if !state.retrieve {
            return Err(GatewayError::NotSupported);
        }
        state.retrieve_calls += 1;
        Ok(state.refunds.get(&lookup.idempotency_key).cloned())
    }

    async fn validate(&self, _provider: &str, _request: &PaymentRequest) -> Result<(), GatewayError> {
        let mut state = self.state.lock().unwrap();
        state.validate_calls += 1;
        state.validate.pop_front().unwrap_or(Ok(()))
    }

    async fn process(&self, _provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError> {
        let answer = {
            let mut state = self.state.lock().unwrap();
            state.process_calls.push(request.clone());
            if let Some(first) = state.charges.get(&request.idempotency_key) {
                return Ok(first.clone());
            }
            match state.process.pop_front().unwrap_or(Step::Answer(ProviderPaymentStatus::Succeeded)) {
                Step::Answer(status) => {
                    let o = outcome(request, status);
                    state.charges.insert(request.idempotency_key.clone(), o.clone());
                    Ok(o)
                }
                Step::Refuse(e) => Err(e),
                Step::AnswerTx(tx) => {
                    let o = PaymentOutcome { provider_tx_id: tx, ..outcome(request, ProviderPaymentStatus::Succeeded) };
                    state.charges.insert(request.idempotency_key.clone(), o.clone());
                    Ok(o)
                }
                Step::ChargeThenLose(e) => {
                    let o = outcome(request, ProviderPaymentStatus::Succeeded);
                    state.charges.insert(request.idempotency_key.clone(), o);
                    Err(e)
                }
            }
        };
        // Let other tasks run, as a real call would.
        tokio::task::yield_now().await;
        answer
    }

    async fn refund(&self, _provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let mut state = self.state.lock().unwrap();
        state.refund_calls.push(request.clone());
        if let Some(first) = state.refunds.get(&request.idempotency_key) {
            return Ok(first.clone());
        }
        let made = |status| RefundOutcome {
            status,
            provider_refund_id: format!("re_{}", request.refund_id.simple()),
            failure_reason: (status == ProviderRefundStatus::Failed).then(|| "refused".to_owned()),
        };
        match state.refund.pop_front().unwrap_or(RefundStep::Answer(ProviderRefundStatus::Succeeded)) {
            RefundStep::Answer(status) => {
                let o = made(status);
                state.refunds.insert(request.idempotency_key.clone(), o.clone());
                Ok(o)
            }
            RefundStep::Refuse(e) => Err(e),
            RefundStep::RefundThenLose(e) => {
                state.refunds.insert(request.idempotency_key.clone(), made(ProviderRefundStatus::Succeeded));
                Err(e)
            }
        }
    }
}
