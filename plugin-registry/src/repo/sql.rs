//! `PluginRepository` on PostgreSQL and SQLite: one SQL text, compiled per engine by `on_db!`.

use async_trait::async_trait;
use chrono::Utc;
use lessor_store::{Db, on_db};

use super::rows::{PLUGIN_COLUMNS, PluginRow, VersionState, corrupt};
use super::{GrantChange, InsertMode, Inserted, PluginRepository, RepoError};
use crate::digest::Digest;
use crate::names::{ProviderId, Version};
use crate::origin::OriginPattern;
use crate::records::{Activation, NewPlugin, PluginRecord, Removal, Revision, StoredParts};

pub struct SqlPlugins {
    db: Db,
}

impl SqlPlugins {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Taken first in every change: bumps the revision and holds the registry's write lock.
const BUMP: &str = "UPDATE plugin_registry_state SET revision = revision + 1 WHERE id = 1 RETURNING revision";
const STATES: &str = "SELECT version, digest, enabled, active, activated_revision FROM plugins \
     WHERE provider = $1 ORDER BY installed_revision";
const DEACTIVATE: &str = "UPDATE plugins SET active = FALSE WHERE provider = $1 AND active";
const ACTIVATE: &str = "UPDATE plugins SET active = TRUE, activated_revision = $3, activated_at = $4 \
     WHERE provider = $1 AND version = $2";
const INSERT_COMPONENT: &str =
    "INSERT INTO plugin_components (digest, component, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING";

fn parse_version(s: &str) -> Result<Version, RepoError> {
    s.parse().map_err(|e| corrupt("version", e))
}

fn not_installed(provider: &ProviderId, version: Option<&Version>) -> RepoError {
    match version {
        Some(v) => RepoError::VersionNotInstalled { provider: provider.clone(), version: v.clone() },
        None => RepoError::NotInstalled { provider: provider.clone() },
    }
}

/// The new version's grants (its manifest's hosts and this command's extras) plus the
/// operator's grants of the version it replaces: those its manifest did not request.
fn with_carried_grants(new: &[OriginPattern], previous: Option<&PluginRecord>) -> Vec<OriginPattern> {
    let mut grants = new.to_vec();
    for carried in previous.into_iter().flat_map(PluginRecord::extra_grants) {
        // An origin granted again by this command keeps this command's `+private`.
        if !grants.iter().any(|g| same_origin(g, carried)) {
            grants.push(carried.clone());
        }
    }
    grants
}

/// Two grants of the same origin pattern, whatever their `+private`.
fn same_origin(a: &OriginPattern, b: &OriginPattern) -> bool {
    a.scheme == b.scheme && a.host == b.host && a.port == b.port
}

fn changed_grants(grants: &[OriginPattern], origin: &OriginPattern, change: GrantChange) -> Vec<OriginPattern> {
    let mut out: Vec<OriginPattern> = grants.iter().filter(|g| !same_origin(g, origin)).cloned().collect();
    if change == GrantChange::Grant {
        // In place of the grant it replaces, or at the end.
        match grants.iter().position(|g| same_origin(g, origin)) {
            Some(at) => out.insert(at, origin.clone()),
            None => out.push(origin.clone()),
        }
    }
    out
}

fn records(rows: Vec<PluginRow>) -> Result<Vec<PluginRecord>, RepoError> {
    rows.into_iter().map(PluginRecord::try_from).collect()
}

#[async_trait]
impl PluginRepository for SqlPlugins {
    async fn revision(&self) -> Result<Revision, RepoError> {
        let sql = "SELECT revision FROM plugin_registry_state WHERE id = 1";
        let revision: i64 = on_db!(&self.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?;
        Ok(Revision::new(revision))
    }

    async fn list(&self) -> Result<Vec<PluginRecord>, RepoError> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY provider, installed_revision");
        let rows: Vec<PluginRow> = on_db!(&self.db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        records(rows)
    }

    async fn versions(&self, provider: &ProviderId) -> Result<Vec<PluginRecord>, RepoError> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE provider = $1 ORDER BY installed_revision");
        let rows: Vec<PluginRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(provider.as_str()).fetch_all(pool).await)?;
        records(rows)
    }

    async fn active(&self) -> Result<Vec<PluginRecord>, RepoError> {
        let sql = format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE active ORDER BY provider");
        let rows: Vec<PluginRow> = on_db!(&self.db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        records(rows)
    }

    async fn insert(&self, new: &NewPlugin, component: &[u8], mode: InsertMode) -> Result<Inserted, RepoError> {
        let now = Utc::now();
        // The version an upgrade replaces: the active one, else the newest.
        let previous_sql = format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins WHERE provider = $1 \
             ORDER BY active DESC, installed_revision DESC LIMIT 1"
        );
        let insert = format!(
            "INSERT INTO plugins (provider, version, name, wit, digest, manifest_digest, manifest, signature, \
             signed_by, grants, enabled, active, installed_revision, activated_revision, installed_at, activated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING {PLUGIN_COLUMNS}"
        );
        let provider = new.provider.as_str();
        let inserted = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let states: Vec<VersionState> = sqlx::query_as(STATES).bind(provider).fetch_all(&mut *tx).await?;
            if let Some(existing) = states.iter().find(|s| s.version == new.version.as_str()) {
                let digest = existing.digest.parse().map_err(|e| corrupt("digest", e))?;
                return Err(RepoError::Duplicate { provider: new.provider.clone(), version: new.version.clone(), digest });
            }
            let activate = match mode {
                InsertMode::Install => states.is_empty(),
                InsertMode::Upgrade if states.is_empty() => return Err(not_installed(&new.provider, None)),
                InsertMode::Upgrade => true,
            };
            let enabled = states.iter().all(|s| s.enabled);
            let previous = match mode {
                InsertMode::Install => None,
                InsertMode::Upgrade => {
                    let row: Option<PluginRow> =
                        sqlx::query_as(&previous_sql).bind(provider).fetch_optional(&mut *tx).await?;
                    row.map(PluginRecord::try_from).transpose()?
                }
            };
            let grants = with_carried_grants(&new.grants, previous.as_ref());
            let grants = serde_json::to_string(&grants).map_err(|e| corrupt("grants", e))?;
            if activate {
                sqlx::query(DEACTIVATE).bind(provider).execute(&mut *tx).await?;
            }
            let digest = new.digest.to_string();
            sqlx::query(INSERT_COMPONENT).bind(&digest).bind(component).bind(now).execute(&mut *tx).await?;
            let row: PluginRow = sqlx::query_as(&insert)
                .bind(provider)
                .bind(new.version.as_str())
                .bind(new.name.as_str())
                .bind(&new.wit)
                .bind(&digest)
                .bind(new.manifest_digest.to_string())
                .bind(&new.manifest_text)
                .bind(new.signature_text.as_deref())
                .bind(new.signed_by.as_ref().map(|k| k.as_str()))
                .bind(&grants)
                .bind(enabled)
                .bind(activate)
                .bind(revision)
                .bind(activate.then_some(revision))
                .bind(now)
                .bind(activate.then_some(now))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, RepoError>((row, revision, previous))
        })?;
        let (row, revision, previous) = inserted;
        Ok(Inserted { record: PluginRecord::try_from(row)?, revision: Revision::new(revision), previous })
    }

    async fn change_grant(
        &self,
        provider: &ProviderId,
        origin: &OriginPattern,
        change: GrantChange,
    ) -> Result<Option<(Vec<PluginRecord>, Revision)>, RepoError> {
        let select = format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE provider = $1 ORDER BY installed_revision");
        let update = "UPDATE plugins SET grants = $3 WHERE provider = $1 AND version = $2";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let rows: Vec<PluginRow> = sqlx::query_as(&select).bind(provider.as_str()).fetch_all(&mut *tx).await?;
            if rows.is_empty() {
                return Err(not_installed(provider, None));
            }
            let mut records = records(rows)?;
            let mut changed = false;
            for record in &mut records {
                let grants = changed_grants(&record.grants, origin, change);
                if grants != record.grants {
                    let text = serde_json::to_string(&grants).map_err(|e| corrupt("grants", e))?;
                    sqlx::query(update)
                        .bind(provider.as_str())
                        .bind(record.version.as_str())
                        .bind(text)
                        .execute(&mut *tx)
                        .await?;
                    record.grants = grants;
                    changed = true;
                }
            }
            if !changed {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some((records, Revision::new(revision))))
        })
    }

    async fn set_enabled(&self, provider: &ProviderId, enabled: bool) -> Result<Option<Revision>, RepoError> {
        let update = "UPDATE plugins SET enabled = $2 WHERE provider = $1 AND enabled <> $2";
        let count = "SELECT COUNT(*) FROM plugins WHERE provider = $1";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let changed =
                sqlx::query(update).bind(provider.as_str()).bind(enabled).execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                let installed: i64 = sqlx::query_scalar(count).bind(provider.as_str()).fetch_one(&mut *tx).await?;
                return if installed == 0 { Err(not_installed(provider, None)) } else { Ok(None) };
            }
            tx.commit().await?;
            Ok(Some(Revision::new(revision)))
        })
    }

    async fn activate(&self, provider: &ProviderId, version: &Version) -> Result<Option<Activation>, RepoError> {
        let now = Utc::now();
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let states: Vec<VersionState> =
                sqlx::query_as(STATES).bind(provider.as_str()).fetch_all(&mut *tx).await?;
            let Some(target) = states.iter().find(|s| s.version == version.as_str()) else {
                return Err(not_installed(provider, (!states.is_empty()).then_some(version)));
            };
            if target.active {
                return Ok(None);
            }
            let from = states.iter().find(|s| s.active).map(|s| parse_version(&s.version)).transpose()?;
            sqlx::query(DEACTIVATE).bind(provider.as_str()).execute(&mut *tx).await?;
            sqlx::query(ACTIVATE)
                .bind(provider.as_str())
                .bind(version.as_str())
                .bind(revision)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let revision = Revision::new(revision);
            Ok(Some(Activation { provider: provider.clone(), from, to: version.clone(), revision }))
        })
    }

    async fn rollback(&self, provider: &ProviderId) -> Result<Activation, RepoError> {
        let now = Utc::now();
        let leave = "UPDATE plugins SET active = FALSE, activated_revision = NULL WHERE provider = $1 AND active";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let states: Vec<VersionState> =
                sqlx::query_as(STATES).bind(provider.as_str()).fetch_all(&mut *tx).await?;
            if states.is_empty() {
                return Err(not_installed(provider, None));
            }
            let from = states.iter().find(|s| s.active).map(|s| parse_version(&s.version)).transpose()?;
            let target = states
                .iter()
                .filter(|s| !s.active)
                .filter_map(|s| s.activated_revision.map(|at| (at, s)))
                .max_by_key(|(at, _)| *at)
                .map(|(_, s)| parse_version(&s.version))
                .transpose()?;
            let Some(to) = target else {
                return Err(RepoError::NoRollbackTarget { provider: provider.clone(), active: from });
            };
            sqlx::query(leave).bind(provider.as_str()).execute(&mut *tx).await?;
            sqlx::query(ACTIVATE)
                .bind(provider.as_str())
                .bind(to.as_str())
                .bind(revision)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Activation { provider: provider.clone(), from, to, revision: Revision::new(revision) })
        })
    }

    async fn delete(
        &self,
        provider: &ProviderId,
        version: Option<&Version>,
        force: bool,
    ) -> Result<Removal, RepoError> {
        let delete_one = "DELETE FROM plugins WHERE provider = $1 AND version = $2";
        let delete_all = "DELETE FROM plugins WHERE provider = $1";
        let users = "SELECT COUNT(*) FROM plugins WHERE digest = $1";
        let delete_component = "DELETE FROM plugin_components WHERE digest = $1";
        on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let revision: i64 = sqlx::query_scalar(BUMP).fetch_one(&mut *tx).await?;
            let states: Vec<VersionState> =
                sqlx::query_as(STATES).bind(provider.as_str()).fetch_all(&mut *tx).await?;
            let doomed: Vec<&VersionState> =
                states.iter().filter(|s| version.is_none_or(|v| s.version == v.as_str())).collect();
            if doomed.is_empty() {
                return Err(not_installed(provider, version.filter(|_| !states.is_empty())));
            }
            if !force && let Some(live) = doomed.iter().find(|s| s.active && s.enabled) {
                let version = parse_version(&live.version)?;
                return Err(RepoError::ActiveAndEnabled { provider: provider.clone(), version });
            }
            match version {
                Some(v) => sqlx::query(delete_one).bind(provider.as_str()).bind(v.as_str()).execute(&mut *tx).await?,
                None => sqlx::query(delete_all).bind(provider.as_str()).execute(&mut *tx).await?,
            };
            let mut digests: Vec<&str> = doomed.iter().map(|s| s.digest.as_str()).collect();
            digests.sort_unstable();
            digests.dedup();
            let mut orphaned = Vec::new();
            for digest in digests {
                let remaining: i64 = sqlx::query_scalar(users).bind(digest).fetch_one(&mut *tx).await?;
                if remaining == 0 {
                    sqlx::query(delete_component).bind(digest).execute(&mut *tx).await?;
                    orphaned.push(digest.parse::<Digest>().map_err(|e| corrupt("digest", e))?);
                }
            }
            let versions = doomed.iter().map(|s| parse_version(&s.version)).collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            Ok(Removal { provider: provider.clone(), versions, orphaned, revision: Revision::new(revision) })
        })
    }

    async fn stored_parts(&self, digest: &Digest) -> Result<Option<StoredParts>, RepoError> {
        let sql = "SELECT p.manifest, p.signature, c.component FROM plugin_components c \
             JOIN plugins p ON p.digest = c.digest WHERE c.digest = $1 ORDER BY p.installed_revision DESC LIMIT 1";
        let digest = digest.to_string();
        let row: Option<(String, Option<String>, Vec<u8>)> =
            on_db!(&self.db, pool => sqlx::query_as(sql).bind(&digest).fetch_optional(pool).await)?;
        Ok(row.map(|(manifest_text, signature_text, component)| StoredParts {
            manifest_text,
            signature_text,
            component,
        }))
    }
}
