use std::process::ExitCode;

use clap::Parser;
use host::cli::{self, Cli};
use host::{Config, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    host::allocator::tune();
    let cli = Cli::parse();
    // Publishers' commands (keygen, sign) need no configuration: a publisher has none, and an
    // operator's (say, signatures required with no key trusted yet) must not stand in the way.
    if let Some(result) = cli::run_without_config(&cli) {
        return exit_code(result);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // `serve` logs at the configured level; the other commands print their results and log
    // only warnings and errors, unless `--verbose`.
    let level = if cli.logs_at_configured_level() { config.log_level.clone() } else { "warn".to_owned() };
    telemetry::init(config.log_format, &level);
    exit_code(cli::run(cli, config).await)
}

/// Success, or the error printed once (to stderr) and a failure status.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
