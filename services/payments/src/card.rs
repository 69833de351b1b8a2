//! Refusing card numbers (PCI DSS 3.3): Lessor never receives, stores or logs a primary
//! account number. Clients send provider tokens; anything that looks like a card number
//! anywhere in a request is refused before the request goes further.
//!
//! A value "looks like a card number" when it contains a run of 13 to 19 digits, optionally
//! grouped by single spaces or dashes, that stands on its own (no letter or digit directly
//! before or after it) and passes the Luhn check. This catches `"4111 1111 1111 1111"`,
//! `4111111111111111` as a JSON number and `"card 4111-1111-1111-1111 please"`, and lets
//! IBANs (`DE89 3704 …`: the digits follow letters), UUIDs and ordinary tokens through.

use serde_json::Value;

/// The JSON path of the first value in `value` that looks like a card number, e.g.
/// `"payment_method"` or `"metadata.note"` (array elements as `items[2]`). The value itself
/// is never returned, so the caller cannot echo or log it by accident.
pub fn find_card_number(value: &Value) -> Option<String> {
    let mut found = Vec::new();
    walk(value, &mut String::new(), &mut found, 1);
    found.pop()
}

/// The JSON paths of every value in `value` that looks like a card number, in document order.
pub fn find_card_numbers(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, &mut String::new(), &mut found, usize::MAX);
    found
}

fn walk(value: &Value, path: &mut String, found: &mut Vec<String>, limit: usize) {
    if found.len() >= limit {
        return;
    }
    match value {
        Value::String(s) => {
            if contains_card_number(s) {
                found.push(path_or_root(path));
            }
        }
        Value::Number(n) => {
            if contains_card_number(&n.to_string()) {
                found.push(path_or_root(path));
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(item, path, found, limit);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(item, path, found, limit);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() { "$".to_owned() } else { path.to_owned() }
}

/// Whether `text` holds a stand-alone run of 13–19 digits (single spaces or dashes between
/// digits allowed) that passes the Luhn check.
pub fn contains_card_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !starts_run {
            i += 1;
            continue;
        }
        // Extend the run: digits, and single separators between digits.
        let mut digits = Vec::new();
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                j += 1;
            } else if (b == b' ' || b == b'-') && j + 1 < bytes.len() && bytes[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let stands_alone = j == bytes.len() || !bytes[j].is_ascii_alphanumeric();
        if stands_alone && (13..=19).contains(&digits.len()) && luhn(&digits) {
            return true;
        }
        i = j.max(i + 1);
    }
    false
}

/// The Luhn (mod 10) check over decimal digits, the last being the check digit.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &d)| {
            let d = u32::from(d);
            if position % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn luhn_accepts_test_cards_and_refuses_a_changed_digit() {
        let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        for good in ["4111111111111111", "5555555555554444", "378282246310005", "79927398713"] {
            assert!(luhn(&digits(good)), "{good}");
        }
        for bad in ["4111111111111112", "79927398710", ""] {
            assert!(!luhn(&digits(bad)), "{bad}");
        }
    }

    #[test]
    fn card_shaped_values_are_found() {
        for text in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "378282246310005",
            "pay with 5555 5555 5555 4444 please",
            "4000056655665556",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn other_values_are_not_cards() {
        for text in [
            "4111111111111112",     // fails Luhn
            "4111 1111 1111",       // 12 digits
            "41111111111111111111", // 20 digits
            "tok_visa",
            "pm_1N3T2kLkdIwHu7ixkdXUhWtd",
            "DE89 3704 0044 0532 0130 00", // an IBAN: digits follow letters
            "NO9386011117947",
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "4111  1111 1111 1111", // double space breaks the run into short groups
            "x4111111111111111",    // not stand-alone
            "2025-01-31",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn finds_the_path_in_nested_json_strings_and_numbers() {
        let body = json!({
            "lease_id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "amount": 129900,
            "payment_method": {"iban": "DE89370400440532013000", "debtor_name": "4111 1111 1111 1111"},
        });
        assert_eq!(find_card_number(&body).as_deref(), Some("payment_method.debtor_name"));
        let number = json!({"items": [1, {"pan": 4111111111111111_u64}]});
        assert_eq!(find_card_number(&number).as_deref(), Some("items[1].pan"));
        assert_eq!(find_card_number(&json!("4111111111111111")).as_deref(), Some("$"));
        assert_eq!(find_card_number(&json!({"payment_method": "tok_visa", "amount": 4111111111111112_u64})), None);
        let two = json!({"a": "4111111111111111", "b": ["5555555555554444"]});
        assert_eq!(find_card_numbers(&two), ["a", "b[0]"]);
    }
}
