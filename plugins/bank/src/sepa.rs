//! SEPA direct-debit field rules: IBAN (ISO 13616), BIC (ISO 9362), mandate reference, creditor
//! identifier, and the calendar arithmetic for mandate dates and RFC 3339 timestamps.

/// IBAN lengths of the countries in the SEPA scheme (EU/EEA, CH, GB, AD, GI, MC, SM, VA).
/// Overseas territories that use another country's IBAN (e.g. Réunion → FR) are covered by it.
const SEPA_IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
];

/// The IBAN in electronic form (no spaces, upper case), or why it is not a SEPA IBAN.
pub fn normalize_iban(input: &str) -> Result<String, String> {
    let iban: String = input.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    if iban.len() < 5 || !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("must be a country code, two check digits and the account number (letters and digits)".into());
    }
    let (country, check) = (&iban[..2], &iban[2..4]);
    if !country.bytes().all(|b| b.is_ascii_uppercase()) || !check.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must start with a country code and two check digits".into());
    }
    let Some(&(_, length)) = SEPA_IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return Err(format!("country {country} is not in the SEPA scheme"));
    };
    if iban.len() != length {
        return Err(format!("a {country} IBAN has {length} characters, not {}", iban.len()));
    }
    if mod97(iban[4..].bytes().chain(iban[..4].bytes())) != 1 {
        return Err("check digits do not match (ISO 13616 mod-97)".into());
    }
    Ok(iban)
}

/// The ISO 7064 MOD 97-10 remainder of letters-as-numbers (A = 10 … Z = 35) and digits.
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0u32, |rem, c| match c {
        b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
        _ => (rem * 100 + u32::from(c.to_ascii_uppercase() - b'A') + 10) % 97,
    })
}

/// A BIC: 4 letters (bank), 2 letters (country), 2 letters or digits (location), optionally 3
/// letters or digits (branch). Returned upper case.
pub fn normalize_bic(input: &str) -> Result<String, String> {
    let bic = input.trim().to_ascii_uppercase();
    let b = bic.as_bytes();
    let ok = (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && b[6..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(bic)
    } else {
        Err("must be 8 or 11 characters: bank (4 letters), country (2 letters), location (2), branch (3, optional)"
            .into())
    }
}

/// SEPA identifiers use the Latin subset: a-z A-Z 0-9 / - ? : ( ) . , ' + and space.
fn is_sepa_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"/-?:().,'+ ".contains(&c)
}

/// A mandate reference: 1–35 SEPA characters, not starting or ending with `/`, without `//`.
pub fn check_mandate_reference(reference: &str) -> Result<(), String> {
    if reference.is_empty() || reference.len() > 35 {
        return Err("must be 1 to 35 characters".into());
    }
    if let Some(c) = reference.chars().find(|c| !c.is_ascii() || !is_sepa_char(*c as u8)) {
        return Err(format!("`{c}` is not in the SEPA character set (a-z A-Z 0-9 / - ? : ( ) . , ' + space)"));
    }
    if reference.starts_with('/') || reference.ends_with('/') || reference.contains("//") {
        return Err("must not start or end with `/` or contain `//`".into());
    }
    if reference.starts_with(' ') || reference.ends_with(' ') {
        return Err("must not start or end with a space".into());
    }
    Ok(())
}

/// Free text in SEPA characters: anything else becomes a space; cut to `max` characters.
pub fn sepa_text(text: &str, max: usize) -> String {
    text.chars().map(|c| if c.is_ascii() && is_sepa_char(c as u8) { c } else { ' ' }).take(max).collect()
}

/// A SEPA creditor identifier: country, 2 check digits, 3-character business code, national id
/// (up to 28 letters or digits); the check digits cover the national id and the country only.
pub fn check_creditor_id(id: &str) -> bool {
    let b = id.as_bytes();
    if !(8..=35).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !b[..2].iter().all(u8::is_ascii_uppercase) || !b[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    mod97(b[7..].iter().chain(&b[..4]).copied()) == 1
}

/// A SEPA R-transaction reason code (ISO 20022 external status reason), e.g. AC04, AM04, MD06.
pub fn is_reason_code(code: &str) -> bool {
    code.len() == 4 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A calendar date `YYYY-MM-DD`, as days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// An RFC 3339 timestamp (`2024-03-05T06:00:00Z`, fractions and offsets allowed) as Unix ms.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let first3: Vec<u8> = fraction[..n].iter().copied().chain(std::iter::repeat(b'0')).take(3).collect();
        millis = digits(&first3)?;
        rest = &fraction[n..];
    }
    let offset_minutes = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' { h * 60 + m } else { -(h * 60 + m) }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
