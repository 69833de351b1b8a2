//! Each fault's row: one JSON line appended to `target/faults/results.jsonl`
//! (`scripts/faults.sh` prints them as a table).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub fault: String,
    pub payments_accepted: usize,
    pub lost: usize,
    pub doubled: usize,
    pub events_lost: usize,
    pub events_doubled: usize,
    /// From the fault's end (the host restarted, the server back) until payments succeed again.
    pub recovery_ms: u64,
}

impl Row {
    pub fn new(fault: &str) -> Self {
        Self {
            fault: fault.to_owned(),
            payments_accepted: 0,
            lost: 0,
            doubled: 0,
            events_lost: 0,
            events_doubled: 0,
            recovery_ms: 0,
        }
    }

    /// Appends the row to `<target>/faults/results.jsonl` (`CARGO_TARGET_DIR` or `target/`).
    pub fn write(&self) {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::build::workspace_root().join("target"));
        let dir = target.join("faults");
        std::fs::create_dir_all(&dir).expect("create target/faults");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("results.jsonl"))
            .expect("open target/faults/results.jsonl");
        writeln!(file, "{}", serde_json::to_string(self).expect("a row is JSON")).expect("write the row");
        println!("FAULT {}", serde_json::to_string(self).expect("a row is JSON"));
    }
}
