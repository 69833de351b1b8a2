//! Accounts and authentication: users with roles, argon2id password hashes, JWT access
//! tokens each backed by a revocable session, and login throttling.
//!
//! Storage sits behind traits ([`UserRepository`], [`SessionStore`], [`LoginThrottle`])
//! with one implementation per engine; [`AuthService`] holds the rules.

mod email;
mod gate;
pub mod keys;
mod password;
mod role;
mod service;
pub mod sessions;
pub mod throttle;
mod tokens;
mod users;

pub use email::{Email, EmailError};
pub use gate::{AuthMetrics, HashGate, cores};
pub use keys::{KeyStore, SigningKey, SqlSigningKeys};
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordError, PasswordHasher};
pub use role::{Role, UnknownRole};
pub use service::{AuthError, AuthService, CreateUserError, IssuedToken, Principal};
pub use sessions::{ActiveSession, Session, SessionError, SessionStore};
pub use throttle::{LoginThrottle, ThrottlePolicy, address_key};
pub use tokens::{Claims, TokenCodec, TokenError};
pub use users::{SqlUsers, StoredUser, User, UserRepoError, UserRepository};
