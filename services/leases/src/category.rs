//! Vehicle categories.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The class of a leased vehicle. Serialised lowercase: `"suv"`, `"electric"`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Economy,
    Compact,
    Midsize,
    Luxury,
    Suv,
    Sports,
    Van,
    Electric,
    Truck,
}

/// The string is not one of the category names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a vehicle category: expected one of economy, compact, midsize, luxury, suv, sports, van, electric, truck"
)]
pub struct UnknownCategory(pub String);

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Economy,
        Category::Compact,
        Category::Midsize,
        Category::Luxury,
        Category::Suv,
        Category::Sports,
        Category::Van,
        Category::Electric,
        Category::Truck,
    ];

    /// The lowercase wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Economy => "economy",
            Category::Compact => "compact",
            Category::Midsize => "midsize",
            Category::Luxury => "luxury",
            Category::Suv => "suv",
            Category::Sports => "sports",
            Category::Van => "van",
            Category::Electric => "electric",
            Category::Truck => "truck",
        }
    }
}

/// Accepts exactly the lowercase wire names.
impl FromStr for Category {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|category| category.as_str() == s).ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_from_str_and_serde_agree() {
        for category in Category::ALL {
            let name = category.as_str();
            assert_eq!(name.parse::<Category>(), Ok(category));
            assert_eq!(serde_json::to_string(&category).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Category>(&format!("\"{name}\"")).unwrap(), category);
        }
    }

    #[test]
    fn unknown_or_differently_cased_names_are_refused() {
        for bad in ["", "SUV", "Suv", "limousine", " van"] {
            assert_eq!(bad.parse::<Category>(), Err(UnknownCategory(bad.to_owned())));
        }
    }
}
