//! Refusing card numbers (PCI DSS 3.3): Lessor never receives, stores or logs a primary
//! account number. Clients send provider tokens; anything that looks like a card number
//! anywhere in a request (every string and number of the JSON body at any depth, and every
//! object key) is refused before the request goes further.
//!
//! A text "holds a card number" when it contains a run of 13 to 19 digits that
//! - is written plain (`4111111111111111`) or in groups joined by single separators: space,
//!   `-`, `.`, `_` or `/` (`4111 1111 1111 1111`, `4111.1111.1111.1111`, `4111/1111/1111/1111`);
//!   a run that mixes separators is also read as its parts of one separator each, so a date
//!   written before a card number (`2025-01-31 4111 1111 1111 1111`) does not hide it;
//! - stands on its own: no letter or digit directly before or after it, and no `+` before it
//!   (`+49 170 1234 5678 901` is a phone number);
//! - does not start with `0` (no card number does: `0049 170 …`, `0800 …` are phone numbers);
//! - is not part of a valid IBAN (`DE89 3704 0044 0532 0130 00`, `GB29 NWBK 6016 1331 9268 19`
//!   pass: IBANs that verify by ISO 7064 mod 97 are set aside first);
//! - and passes the Luhn check.
//!
//! Tokens (`pm_1N3T…`, `tok_visa`), UUIDs, dates (`2025-01-31`, `31.01.2025`), times and phone
//! numbers therefore pass; only a Luhn-valid 13–19 digit number can be refused.

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
/// An object key that looks like one is reported at the path of its value.
pub fn find_card_numbers(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(value, &mut String::new(), &mut found, usize::MAX);
    found
}

/// Nesting deeper than this is not walked further; serde_json refuses bodies nested deeper
/// than 128 levels anyway.
const MAX_DEPTH: usize = 256;

fn walk(value: &Value, path: &mut String, found: &mut Vec<String>, limit: usize) {
    walk_at(value, path, found, limit, 0);
}

fn walk_at(value: &Value, path: &mut String, found: &mut Vec<String>, limit: usize, depth: usize) {
    if found.len() >= limit || depth > MAX_DEPTH {
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
                walk_at(item, path, found, limit, depth + 1);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                if contains_card_number(key) {
                    // The key itself is the card number: name it without echoing it.
                    path.push_str("<key>");
                    if found.len() < limit {
                        found.push(path.clone());
                    }
                    path.truncate(len);
                    continue;
                }
                path.push_str(key);
                walk_at(item, path, found, limit, depth + 1);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() { "$".to_owned() } else { path.to_owned() }
}

const SEPARATORS: &[u8] = b" -._/";

/// A group of digits in a text, and the separator that joins it to the previous group.
#[derive(Debug, Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
    /// The single separator byte before this group, if it continues the previous group.
    joined_by: Option<u8>,
}

/// Whether `text` holds a card number as described in the module documentation.
pub fn contains_card_number(text: &str) -> bool {
    let masked = mask_ibans(text.as_bytes());
    let bytes = masked.as_slice();
    let mut groups: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let joined_by =
            groups.last().filter(|g| g.end + 1 == start && SEPARATORS.contains(&bytes[g.end])).map(|g| bytes[g.end]);
        groups.push(Group { start, end: i, joined_by });
    }
    // Chains: maximal sequences of joined groups.
    let mut first = 0;
    while first < groups.len() {
        let mut last = first;
        while last + 1 < groups.len() && groups[last + 1].joined_by.is_some() {
            last += 1;
        }
        if chain_holds_card(bytes, &groups[first..=last]) {
            return true;
        }
        first = last + 1;
    }
    false
}

/// The whole chain, else each part of it joined by one kind of separator (and that part
/// without its first group, which may belong to what comes before).
fn chain_holds_card(bytes: &[u8], chain: &[Group]) -> bool {
    if is_card(bytes, chain, true) {
        return true;
    }
    let mut from = 0;
    while from < chain.len() {
        let kind = chain.get(from + 1).and_then(|g| g.joined_by);
        let mut to = from;
        while to + 1 < chain.len() && chain[to + 1].joined_by == kind {
            to += 1;
        }
        if to == from {
            from += 1;
            continue;
        }
        let part = &chain[from..=to];
        if (from > 0 || to + 1 < chain.len()) && is_card(bytes, part, from == 0) {
            return true;
        }
        if from > 0 && part.len() > 2 && is_card(bytes, &part[1..], false) {
            return true;
        }
        from = to;
    }
    false
}

/// `groups` (joined) as one number: stands alone, 13–19 digits, no leading 0, Luhn.
fn is_card(bytes: &[u8], groups: &[Group], at_chain_start: bool) -> bool {
    let (Some(first), Some(last)) = (groups.first(), groups.last()) else { return false };
    let count: usize = groups.iter().map(|g| g.end - g.start).sum();
    if !(13..=19).contains(&count) || bytes[first.start] == b'0' {
        return false;
    }
    if at_chain_start && first.start > 0 {
        let before = bytes[first.start - 1];
        if before.is_ascii_alphanumeric() || before == b'+' {
            return false;
        }
    }
    if last.end < bytes.len() && bytes[last.end].is_ascii_alphanumeric() {
        return false;
    }
    let digits: Vec<u8> = groups.iter().flat_map(|g| bytes[g.start..g.end].iter().map(|b| b - b'0')).collect();
    luhn(&digits)
}

/// `text` with every valid IBAN (compact or in groups of four separated by single spaces)
/// overwritten by `#`, so that its digits are never read as a card number.
fn mask_ibans(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    let mut i = 0;
    while i + 4 <= text.len() {
        let starts = (i == 0 || !text[i - 1].is_ascii_alphanumeric())
            && text[i].is_ascii_alphabetic()
            && text[i + 1].is_ascii_alphabetic()
            && text[i + 2].is_ascii_digit()
            && text[i + 3].is_ascii_digit();
        if !starts {
            i += 1;
            continue;
        }
        // The longest stretch of letters, digits and single spaces (at most 34 characters
        // of IBAN), then the longest prefix of it that verifies.
        let mut ends = Vec::new();
        let mut j = i;
        let mut characters = 0;
        while j < text.len() && characters < 34 {
            if text[j].is_ascii_alphanumeric() {
                characters += 1;
                j += 1;
                if j == text.len() || !text[j].is_ascii_alphanumeric() {
                    ends.push(j);
                }
            } else if text[j] == b' ' && j + 1 < text.len() && text[j + 1].is_ascii_alphanumeric() {
                j += 1;
            } else {
                break;
            }
        }
        let valid = ends.iter().rev().copied().find(|&end| {
            let candidate = String::from_utf8_lossy(&text[i..end]);
            crate::method::normalise_iban(&candidate).is_ok()
        });
        match valid {
            Some(end) => {
                out[i..end].iter_mut().for_each(|b| *b = b'#');
                i = end;
            }
            None => i += 1,
        }
    }
    out
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
    fn separated_card_numbers_are_found() {
        for text in [
            "4111.1111.1111.1111",
            "4111_1111_1111_1111",
            "4111/1111/1111/1111",
            "3782 822463 10005", // Amex grouping 4-6-5
            "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
            "card: 5555-5555-5555-4444.",
            "note 2025-01-31 4111 1111 1111 1111", // a date before it does not hide it
            "4111-1111-1111-1111/12-28",           // an expiry after it neither
            "x_4111111111111111",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn look_alikes_are_not_cards() {
        for text in [
            "pm_card_visa",
            "tok_1N3T2kLkdIwHu7ixkdXUhWtd",
            "pi_3MtwBwLkdIwHu7ix28a3tqPa",
            "re_3MtwBwLkdIwHu7ix0zRmG1AP",
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB29 NWBK 6016 1331 9268 19",
            "GB29NWBK60161331926819",
            "FR14 2004 1010 0505 0001 3M02 606",
            "iban: NL91 ABNA 0417 1643 00",
            "2025-01-31",
            "31.01.2025",
            "2025/01/31 - 2025/12/31",
            "2025-01-31T10:30:00.123456789Z",
            "+49 170 1234 5678 901",
            "0049 170 1234 5678 9",
            "+1-800-555-0199",
            "(030) 1234-5678",
            "0800 123 4567 8901",
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "12345678-1234-1234-1234-123456789012",
            "M-2025/001",
            "WDD2220821A123456",
            "1234567890123456789012345",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn keys_and_deep_values_are_checked() {
        let body = json!({"a": {"b": [{"c": {"d": "x 4111.1111.1111.1111"}}]}});
        assert_eq!(find_card_number(&body).as_deref(), Some("a.b[0].c.d"));
        let key = json!({"metadata": {"4111 1111 1111 1111": "x"}});
        assert_eq!(find_card_numbers(&key), ["metadata.<key>"]);
        assert!(!find_card_numbers(&key)[0].contains("4111"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz_cases(256)))]

        /// Arbitrary text never panics, and a Luhn-valid card joined by any one separator is
        /// found wherever it stands between words.
        #[test]
        fn fuzz_card_detection(text in ".{0,200}", raw in proptest::collection::vec(0u8..10, 12..18), sep in 0usize..6) {
            let _ = contains_card_number(&text);
            let _ = find_card_numbers(&Value::String(text.clone()));
            let mut digits = raw;
            digits[0] = digits[0].max(1);
            let check = (0..10).find(|d| { let mut all = digits.clone(); all.push(*d); luhn(&all) }).unwrap();
            digits.push(check);
            let separator = ["", " ", "-", ".", "_", "/"][sep];
            let groups: Vec<String> = digits.chunks(4).map(|c| c.iter().map(|d| char::from(b'0' + d)).collect()).collect();
            let card = groups.join(separator);
            let framed = format!("ref: {card} thanks");
            proptest::prop_assert!(contains_card_number(&framed), "{}", framed);
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
