//! Users and their storage.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lessor_store::{Db, on_db};
use uuid::Uuid;

use crate::{Email, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: Email,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A user together with the password hash; never leaves this crate's callers' login path.
#[derive(Clone)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserRepoError {
    #[error("a user with this e-mail already exists")]
    DuplicateEmail,
    #[error("stored user is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

#[async_trait]
pub trait UserRepository: Send + Sync {
    async fn insert(&self, user: &User, password_hash: &str) -> Result<(), UserRepoError>;
    async fn by_email(&self, email: &Email) -> Result<Option<StoredUser>, UserRepoError>;
    async fn by_id(&self, id: Uuid) -> Result<Option<User>, UserRepoError>;
}

/// Users in the `users` table, on either engine.
pub struct SqlUsers {
    db: Db,
}

impl SqlUsers {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    role: String,
    password_hash: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for StoredUser {
    type Error = UserRepoError;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let email = Email::parse(&row.email).map_err(|e| UserRepoError::Corrupt(format!("email: {e}")))?;
        let role = row.role.parse().map_err(|e| UserRepoError::Corrupt(format!("{e}")))?;
        Ok(StoredUser {
            user: User { id: row.id, email, role, created_at: row.created_at },
            password_hash: row.password_hash,
        })
    }
}

const SELECT_USER: &str = "SELECT id, email, role, password_hash, created_at FROM users";

#[async_trait]
impl UserRepository for SqlUsers {
    async fn insert(&self, user: &User, password_hash: &str) -> Result<(), UserRepoError> {
        let sql = "INSERT INTO users (id, email, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
        let result = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(user.id)
            .bind(user.email.as_str())
            .bind(user.role.as_str())
            .bind(password_hash)
            .bind(user.created_at)
            .execute(pool)
            .await
            .map(drop));
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(UserRepoError::DuplicateEmail),
            other => Ok(other?),
        }
    }

    async fn by_email(&self, email: &Email) -> Result<Option<StoredUser>, UserRepoError> {
        let sql = format!("{SELECT_USER} WHERE email = $1");
        let row: Option<UserRow> = on_db!(&self.db, pool => sqlx::query_as(&sql)
            .bind(email.as_str())
            .fetch_optional(pool)
            .await)?;
        row.map(StoredUser::try_from).transpose()
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<User>, UserRepoError> {
        let sql = format!("{SELECT_USER} WHERE id = $1");
        let row: Option<UserRow> = on_db!(&self.db, pool => sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(StoredUser::try_from).transpose()?.map(|s| s.user))
    }
}
