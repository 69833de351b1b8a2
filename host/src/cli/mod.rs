//! The command line: `host serve`, `host migrate`, `host user create`, `host auth rotate-key`,
//! `host search reindex`, `host plugin …` (in [`plugin`]).

mod authoring;
pub mod plugin;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lessor_auth::{CreateUserError, Role};
use secrecy::SecretString;

use crate::config::Config;
use crate::startup::{self, Application};

#[derive(Debug, Parser)]
#[command(name = "host", version, about = "Lessor: car leasing with sandboxed payment plugins")]
pub struct Cli {
    /// A TOML configuration file; `LESSOR_*` environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Also print the log lines (info and up) of commands other than `serve`.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (and run the background workers).
    Serve {
        /// Do not apply database migrations on start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Manage the lease search index.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Charge due installments of active leases through their payment methods now (what
    /// `serve` does every `collection_interval_secs`); safe to run beside `serve`.
    CollectDue {
        /// Collect as of this day (YYYY-MM-DD) instead of today.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// Install and manage payment provider plugins; sign packages.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Rebuild the search index from the database (stop `host serve` first when it uses
    /// the embedded index in the same data directory).
    Reindex,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Generate a new token signing key in the database. It signs from now on (every replica
    /// picks it up within a second); tokens signed with the previous key keep working until
    /// they expire (one token lifetime).
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: lessor_auth::UnknownRole| e.to_string())
}

impl Cli {
    /// `serve`, or any command with `--verbose`: log at the configured level.
    pub fn logs_at_configured_level(&self) -> bool {
        self.verbose || matches!(self.command, Command::Serve { .. })
    }
}

/// Runs the commands that need no configuration (`plugin keygen`, `plugin sign`); `None` for
/// the others.
pub fn run_without_config(cli: &Cli) -> Option<anyhow::Result<()>> {
    match &cli.command {
        Command::Plugin(command) => plugin::run_without_config(command),
        _ => None,
    }
}

pub async fn run(cli: Cli, mut config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { no_migrate } => {
            if no_migrate {
                config.migrate_on_start = false;
            }
            let app = Application::build(config).await?;
            app.run_until_stopped(startup::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let db = startup::open_database(&config, true).await?;
            println!("migrations applied to {}", config.database);
            db.close().await;
        }
        Command::Search(SearchCommand::Reindex) => {
            let db = startup::open_database(&config, config.migrate_on_start).await?;
            let repo: std::sync::Arc<dyn lessor_leases::repo::LeaseRepository> =
                std::sync::Arc::new(lessor_leases::repo::SqlLeases::new(db.clone()));
            let index = crate::search::open_index(&config, &repo, true).await?;
            let started = std::time::Instant::now();
            let count = crate::search::reindex(&repo, &index).await?;
            println!("re-indexed {count} leases into {} in {:.1} s", index.engine(), started.elapsed().as_secs_f64());
            db.close().await;
        }
        Command::Plugin(command) => plugin::run(command, &config).await?,
        Command::Auth(AuthCommand::RotateKey) => {
            if config.jwt_secret.is_some() {
                bail!(
                    "LESSOR_JWT_SECRET is set, so the database keys are not used: rotate by moving the current \
                     secret to LESSOR_JWT_PREVIOUS_SECRET and setting a new LESSOR_JWT_SECRET"
                );
            }
            let db = startup::open_database(&config, config.migrate_on_start).await?;
            let keys = lessor_auth::SqlSigningKeys::new(db.clone());
            keys.ensure().await.context("reading the signing keys")?;
            let kid = keys.rotate().await.context("storing the new signing key")?;
            println!(
                "new signing key {kid}; tokens signed with the previous key are accepted for {} s more",
                config.token_ttl_secs + lessor_auth::keys::SIGNING_STALENESS_SECS as u64
            );
            db.close().await;
        }
        Command::CollectDue { date } => {
            let db = startup::open_database(&config, config.migrate_on_start).await?;
            let runtime = startup::plugin_runtime(&config)?;
            let registry = startup::plugin_registry(&config, &db)?;
            let providers = std::sync::Arc::new(crate::plugins::LiveProviders::new(runtime, registry, &config.plugins));
            providers.refresh().await.context("loading the installed payment providers")?;
            let events = crate::events::EventPipes::new(&config, &db)?;
            let payments = startup::payment_service(&config, &db, &providers, &events);
            let job = lessor_payments::CollectionJob::new(payments, startup::collection_policy(&config));
            let day = date.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let r = job.run_once(day).await.context("collecting due installments")?;
            println!(
                "collection for {day}: {} attempted, {} succeeded, {} pending, {} failed, {} skipped, {} marked overdue, {} errors",
                r.attempted, r.succeeded, r.pending, r.failed, r.skipped, r.marked_overdue, r.errors
            );
            db.close().await;
        }
        Command::User(UserCommand::Create { email, password_stdin: _, role }) => {
            let password = read_password_line()?;
            let db = startup::open_database(&config, config.migrate_on_start).await?;
            let auth = startup::auth_service(&config, &db, None).await?;
            match auth.create_user(&email, password, role).await {
                Ok(user) => println!("created {} {} ({})", user.id, user.email, user.role),
                Err(CreateUserError::Internal(cause)) => bail!("could not create the user: {cause}"),
                Err(e) => bail!("{e}"),
            }
            db.close().await;
        }
    }
    Ok(())
}

fn read_password_line() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on standard input (pipe it in: `echo \"$PW\" | host user create ... --password-stdin`)");
    }
    Ok(SecretString::from(password.to_owned()))
}
