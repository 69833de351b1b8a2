//! One metric of the bench output protocol: `BENCH {"metric", "value", "unit", "baseline",
//! "ratio", "baseline_name", "spread", "rounds"}`.

use serde_json::Value;

pub struct Metric {
    pub name: String,
    /// The object as the bench printed it (written to `results.json` unchanged).
    pub json: Value,
}

impl Metric {
    pub fn parse(text: &str) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let name = json["metric"].as_str().ok_or("no \"metric\" name")?.to_owned();
        if !json["value"].is_number() && !json["value"].is_null() {
            return Err(format!("{name}: \"value\" is not a number"));
        }
        Ok(Self { name, json })
    }

    pub fn number(&self, key: &str) -> Option<f64> {
        self.json[key].as_f64()
    }

    pub fn text(&self, key: &str) -> &str {
        self.json[key].as_str().unwrap_or("")
    }

    /// `(min, max)` over the rounds.
    pub fn spread(&self) -> Option<(f64, f64)> {
        Some((self.json["spread"][0].as_f64()?, self.json["spread"][1].as_f64()?))
    }
}
