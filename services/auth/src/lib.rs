//! Accounts and authentication: users with roles, argon2id password hashes, JWT access
//! tokens each backed by a revocable session, and login throttling.
//!
//! Storage sits behind traits ([`UserRepository`], [`SessionStore`], [`LoginThrottle`])
//! with one implementation per engine; [`AuthService`] holds the rules.

mod email;
mod password;
mod role;
mod secrets;
mod service;
pub mod sessions;
pub mod throttle;
mod tokens;
mod users;

pub use email::{Email, EmailError};
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordError, PasswordHasher};
pub use role::{Role, UnknownRole};
pub use secrets::load_or_create_signing_key;
pub use service::{AuthError, AuthService, CreateUserError, IssuedToken, Principal};
pub use sessions::{Session, SessionError, SessionStore};
pub use throttle::{LoginThrottle, ThrottlePolicy};
pub use tokens::{Claims, TokenCodec, TokenError};
pub use users::{SqlUsers, StoredUser, User, UserRepoError, UserRepository};
