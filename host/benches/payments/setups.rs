//! The four configurations the bench measures, and what each needs.

/// Secret key the local Stripe peer accepts, handed to the plugin as `secret_key`.
pub const STRIPE_KEY: &str = "sk_test_bench_51Hx";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// (a) the Stripe plugin calling the local Stripe peer, on PostgreSQL + Redis.
    StripePgRedis,
    /// (b) the `echo` test plugin on PostgreSQL + Redis.
    EchoPgRedis,
    /// (c) the `echo` plugin on PostgreSQL alone (sessions in the database, in-process bus).
    EchoPg,
    /// (d) the `echo` plugin on the embedded SQLite default.
    EchoSqlite,
}

impl Setup {
    pub const ALL: [Setup; 4] = [Setup::StripePgRedis, Setup::EchoPgRedis, Setup::EchoPg, Setup::EchoSqlite];

    /// The metric prefix: `e2e.<name>.…`.
    pub fn name(self) -> &'static str {
        match self {
            Setup::StripePgRedis => "stripe_pg_redis",
            Setup::EchoPgRedis => "echo_pg_redis",
            Setup::EchoPg => "echo_pg",
            Setup::EchoSqlite => "echo_sqlite",
        }
    }

    /// The package under `target/plugins/` and the provider id it serves.
    pub fn package(self) -> (&'static str, &'static str) {
        match self {
            Setup::StripePgRedis => ("stripe", "stripe"),
            _ => ("echo-v1", "echo"),
        }
    }

    /// A payment method the provider accepts and succeeds with.
    pub fn payment_method(self) -> &'static str {
        match self {
            Setup::StripePgRedis => "pm_card_visa",
            _ => "tok_bench",
        }
    }

    pub fn postgres(self) -> bool {
        self != Setup::EchoSqlite
    }

    pub fn redis(self) -> bool {
        matches!(self, Setup::StripePgRedis | Setup::EchoPgRedis)
    }
}
