//! Vehicle identification numbers (ISO 3779).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const VIN_LENGTH: usize = 17;
/// Weight of each position in the check-digit sum; position 9 (the check digit) weighs 0.
const WEIGHTS: [u32; VIN_LENGTH] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
const CHECK_DIGIT_INDEX: usize = 8;

/// Why a string is not a [`Vin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    #[error("a VIN has exactly 17 characters, got {0}")]
    Length(usize),
    /// `position` is 1-based. I, O and Q are never used, to avoid confusion with 1 and 0.
    #[error("character `{character}` at position {position} is not allowed in a VIN")]
    InvalidCharacter { position: usize, character: char },
    #[error("check digit (position 9) is `{found}` but the VIN requires `{expected}`")]
    CheckDigit { expected: char, found: char },
}

/// A 17-character vehicle identification number: trimmed, uppercase, from the VIN alphabet
/// (digits and letters except I, O, Q).
///
/// The check digit (position 9) is enforced where it is mandatory, for North American VINs
/// (first character 1 to 5). Elsewhere (e.g. European `WDB…`, `WVW…`, `VF…`) manufacturers
/// may use position 9 freely, so it is not checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

impl Vin {
    pub fn parse(input: &str) -> Result<Self, VinError> {
        let vin = input.trim().to_uppercase();
        let length = vin.chars().count();
        if length != VIN_LENGTH {
            return Err(VinError::Length(length));
        }
        if let Some((index, character)) = vin.chars().enumerate().find(|(_, c)| value_of(*c).is_none()) {
            return Err(VinError::InvalidCharacter { position: index + 1, character });
        }
        if is_north_american(&vin) {
            let expected = check_digit(&vin);
            let found = vin.as_bytes()[CHECK_DIGIT_INDEX] as char;
            if expected != found {
                return Err(VinError::CheckDigit { expected, found });
            }
        }
        Ok(Vin(vin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The ISO 3779 transliteration of one VIN character, or `None` outside the alphabet.
fn value_of(c: char) -> Option<u32> {
    Some(match c {
        '0'..='9' => c.to_digit(10)?,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    })
}

/// North America (first character 1 to 5) makes the check digit mandatory.
fn is_north_american(vin: &str) -> bool {
    matches!(vin.as_bytes()[0], b'1'..=b'5')
}

/// The check digit a VIN of 17 valid characters requires: the weighted sum modulo 11,
/// with a remainder of 10 written `X`.
fn check_digit(vin: &str) -> char {
    let sum: u32 = vin.chars().zip(WEIGHTS).map(|(c, weight)| value_of(c).unwrap_or(0) * weight).sum();
    match sum % 11 {
        10 => 'X',
        digit => char::from_digit(digit, 10).unwrap_or('X'),
    }
}

impl FromStr for Vin {
    type Err = VinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Vin {
    type Error = VinError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Vin> for String {
    fn from(vin: Vin) -> Self {
        vin.0
    }
}

impl AsRef<str> for Vin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published North American VINs whose check digits are correct.
    const VALID_NORTH_AMERICAN: [&str; 6] = [
        "1M8GDM9AXKP042788", // the classic example, check digit X
        "11111111111111111",
        "1HGCM82633A004352", // Honda Accord
        "5YJSA1DG9DFP14705", // Tesla Model S
        "5YJ3E1EA7HF000337", // Tesla Model 3
        "1HGBH41JXMN109186", // Honda Civic, check digit X
    ];

    #[test]
    fn accepts_valid_north_american_vins() {
        for vin in VALID_NORTH_AMERICAN {
            assert_eq!(Vin::parse(vin).unwrap().as_str(), vin);
        }
    }

    #[test]
    fn computes_the_check_digit_of_vins_from_elsewhere_too() {
        // A Japanese Nissan whose published check digit is 6; not enforced, but computed alike.
        assert_eq!(check_digit("JN1DA31D63T505967"), '6');
    }

    #[test]
    fn trims_and_uppercases() {
        let vin = Vin::parse("  1m8gdm9axkp042788\n").unwrap();
        assert_eq!(vin.as_str(), "1M8GDM9AXKP042788");
    }

    #[test]
    fn a_single_flipped_character_breaks_the_check_digit() {
        assert_eq!(Vin::parse("1M8GDM9AXKP042789"), Err(VinError::CheckDigit { expected: '1', found: 'X' }));
        assert_eq!(Vin::parse("1M8GDM9A1KP042788"), Err(VinError::CheckDigit { expected: 'X', found: '1' }));
        assert!(matches!(Vin::parse("11111111111111112"), Err(VinError::CheckDigit { .. })));
    }

    #[test]
    fn every_single_substitution_in_a_north_american_vin_is_caught_or_rejected() {
        let valid = "1M8GDM9AXKP042788";
        // Position 9 weighs 0 in the sum, and flipping the first character may leave
        // North America; every other position must be caught.
        for index in (1..VIN_LENGTH).filter(|&i| i != CHECK_DIGIT_INDEX) {
            let original = valid.as_bytes()[index] as char;
            for replacement in "0123456789ABCDEFGHJKLMNPRSTUVWXYZ".chars() {
                if value_of(replacement) == value_of(original) {
                    continue; // transliterates to the same value: undetectable by design
                }
                let mut flipped: Vec<char> = valid.chars().collect();
                flipped[index] = replacement;
                let flipped: String = flipped.into_iter().collect();
                assert!(Vin::parse(&flipped).is_err(), "{flipped} was accepted");
            }
        }
    }

    #[test]
    fn european_vins_do_not_need_a_check_digit() {
        // Mercedes-Benz, Volkswagen and Peugeot VINs: position 9 is not a check digit.
        for vin in ["WDB2030461A123456", "WVWZZZ1JZXW000001", "VF3ABCDEF12345678"] {
            assert!(Vin::parse(vin).is_ok(), "{vin}");
        }
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(Vin::parse(""), Err(VinError::Length(0)));
        assert_eq!(Vin::parse("1M8GDM9AXKP04278"), Err(VinError::Length(16)));
        assert_eq!(Vin::parse("1M8GDM9AXKP0427888"), Err(VinError::Length(18)));
        // Length counts characters, not bytes.
        assert_eq!(Vin::parse("ÉÉÉ"), Err(VinError::Length(3)));
    }

    #[test]
    fn letters_i_o_q_and_symbols_are_refused() {
        for (vin, position, character) in [
            ("IM8GDM9AXKP042788", 1, 'I'),
            ("1M8GDM9AXKP04278O", 17, 'O'),
            ("1M8GDQ9AXKP042788", 6, 'Q'),
            ("1M8GDM9AXKP-42788", 12, '-'),
            ("1M8GDM9AXKP04278É", 17, 'É'),
        ] {
            assert_eq!(Vin::parse(vin), Err(VinError::InvalidCharacter { position, character }));
        }
    }

    #[test]
    fn serialises_as_a_string_and_is_checked_on_the_way_in() {
        let vin = Vin::parse("1M8GDM9AXKP042788").unwrap();
        assert_eq!(serde_json::to_string(&vin).unwrap(), r#""1M8GDM9AXKP042788""#);
        assert_eq!(serde_json::from_str::<Vin>(r#""1M8GDM9AXKP042788""#).unwrap(), vin);
        assert!(serde_json::from_str::<Vin>(r#""1M8GDM9AXKP042789""#).is_err());
    }
}
