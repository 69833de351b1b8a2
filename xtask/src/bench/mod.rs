//! `cargo xtask bench [--smoke]`: every benchmark of the workspace in release mode, one table.
//!
//! 1. `cargo build --release -p host` and `cargo xtask plugins`;
//! 2. every bench target of the workspace's packages (`cargo metadata`), each with
//!    `cargo bench -p <package> --bench <name>` (`BENCH_SMOKE=1` with `--smoke`), its output
//!    passed through; the soak is left out (it has its own command, README "Reliability");
//! 3. the `BENCH {json}` lines they print (the protocol in `host/benches/support/bench_line.rs`)
//!    are collected, printed as a table and as the JSON objects, and written as one JSON array to
//!    `bench/results.json` (with `--smoke`: `target/bench/results.json`, so the checked-in file
//!    keeps the real figures);
//! 4. the growth series (`growth.<series>.<clients|threads>_<n>`) are drawn to `bench/growth.svg`
//!    (with `--smoke`: `target/bench/growth.svg`).
//!
//! A bench that fails (non-zero exit) fails the command, after the others ran and what was
//! collected was written.

mod metric;
mod plot;
mod table;
mod targets;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use crate::{Error, cargo, root};
use metric::Metric;

/// Bench targets not run here, with the reason printed.
const LEFT_OUT: &[(&str, &str)] =
    &[("soak", "a soak, not a bench: `cargo bench -p host --bench soak` (README \"Reliability\")")];

pub fn run(args: &[String]) -> Result<(), Error> {
    let smoke = match args {
        [] => false,
        [flag] if flag == "--smoke" => true,
        _ => return Err(format!("unexpected arguments {args:?}; usage: cargo xtask bench [--smoke]").into()),
    };
    let root = root();
    let out_dir = if smoke { root.join("target").join("bench") } else { root.join("bench") };

    step("cargo build --release -p host");
    let status = cargo().current_dir(&root).args(["build", "--release", "-p", "host"]).status()?;
    if !status.success() {
        return Err(format!("cargo build --release -p host failed ({status})").into());
    }
    step("cargo xtask plugins");
    crate::build_plugins(&root.join("target").join("plugins"))?;

    let mut metrics = Vec::new();
    let mut failed = Vec::new();
    for target in targets::benches(&root)? {
        if let Some((_, why)) = LEFT_OUT.iter().find(|(name, _)| *name == target.name) {
            println!("\nxtask bench: {} left out: {why}", target.name);
            continue;
        }
        step(&format!("cargo bench -p {} --bench {}", target.package, target.name));
        match run_bench(&root, &target, smoke) {
            Ok(found) if found.is_empty() => println!("xtask bench: {} printed no BENCH lines", target.name),
            Ok(found) => metrics.extend(found),
            Err(e) => {
                eprintln!("xtask bench: {}: {e}", target.name);
                failed.push(target.name.clone());
            }
        }
    }

    println!();
    table::print(&metrics);
    println!();
    for m in &metrics {
        println!("{}", m.json);
    }
    std::fs::create_dir_all(&out_dir)?;
    let results = out_dir.join("results.json");
    let array = serde_json::Value::Array(metrics.iter().map(|m| m.json.clone()).collect());
    std::fs::write(&results, serde_json::to_string_pretty(&array)? + "\n")?;
    println!("\nxtask bench: {} metrics written to {}", metrics.len(), results.display());
    let svg = out_dir.join("growth.svg");
    match plot::growth(&metrics, &svg) {
        Ok(0) => println!("xtask bench: no growth series, {} not drawn", svg.display()),
        Ok(series) => println!("xtask bench: {series} growth series drawn to {}", svg.display()),
        Err(e) => failed.push(format!("growth plot ({e})")),
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("failed: {}", failed.join(", ")).into()) }
}

fn step(what: &str) {
    println!("\n== {what}");
}

/// Runs one bench, its stdout passed through; returns the metrics of its `BENCH` lines.
fn run_bench(root: &Path, target: &targets::Target, smoke: bool) -> Result<Vec<Metric>, Error> {
    let mut command = cargo();
    command.current_dir(root).args(["bench", "-p", &target.package, "--bench", &target.name]);
    if smoke {
        command.env("BENCH_SMOKE", "1");
    }
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut metrics = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(json) = line.strip_prefix("BENCH ") {
            metrics.push(Metric::parse(json).map_err(|e| format!("bad BENCH line {line:?}: {e}"))?);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("exited with {status}").into());
    }
    Ok(metrics)
}
