//! Durable state in SQLite: one thread owns the connection (WAL mode), async
//! callers send it jobs and await the answer. `rusqlite` never leaves this module.

mod composition;
mod migrations;
mod personas;
pub use composition::{ComposedRecord, ImageRecord, ProfileRecord, ProjectRecord};
pub use personas::{AttributeRecord, EndpointCertificateRecord, EndpointRecord, JobRecord};

use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

pub use migrations::SCHEMA_VERSION;

/// Old schemas, made on purpose by other modules' tests.
#[cfg(test)]
pub(crate) mod migrations_for_tests {
    pub(crate) use super::migrations::migrate_to;
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

const QUEUE_DEPTH: usize = 1024;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A row with the same unique key exists.
    Conflict(String),
    /// No such row.
    NotFound,
    /// The database could not be opened, read or written.
    Io(String),
    /// The state directory's file system is full: nothing was written.
    Full,
    /// The store thread is gone or overloaded.
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Conflict(what) => write!(f, "already exists: {what}"),
            StoreError::NotFound => f.write_str("no such record"),
            StoreError::Io(what) => write!(f, "state database error: {what}"),
            StoreError::Full => f.write_str("state database error: no space left on the state directory"),
            StoreError::Unavailable(what) => write!(f, "state database unavailable: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(code, msg) = &e {
            if code.code == rusqlite::ErrorCode::ConstraintViolation {
                return StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()));
            }
            if code.code == rusqlite::ErrorCode::DiskFull {
                return StoreError::Full;
            }
        }
        StoreError::Io(e.to_string())
    }
}

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: i64,
    pub user_name: String,
    /// PHC-style PBKDF2 string; never the password.
    pub password_hash: String,
    pub role_id: String,
    pub enabled: bool,
    /// Failed logins since the last success or counter reset.
    pub failed_logins: u32,
    /// Unix time of the last failed login.
    pub last_failure: i64,
    /// Unix time until which the account is locked out; 0 when not locked.
    pub locked_until: i64,
    pub password_change_required: bool,
    /// The project (tenant) the account belongs to; `None`: the whole service.
    pub project: Option<String>,
}

/// A login session as stored: the token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub token_hash: [u8; 32],
    pub account_id: i64,
    pub created: i64,
    pub last_used: i64,
    pub client_address: String,
}

/// A boot override in force, and the boot order to restore when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOverrideRecord {
    pub system_id: String,
    /// `Once` or `Continuous`.
    pub enabled: String,
    pub target: String,
    /// Boot option ids, first boots first.
    pub saved_order: Vec<String>,
}

/// What the BMC keeps about a system that the hypervisor does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemSettings {
    pub asset_tag: String,
    pub location_indicator_active: bool,
}

/// A task as stored (`Task` resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: i64,
    pub name: String,
    /// `TaskState` word: New, Running, Completed, Exception, Interrupted...
    pub state: String,
    /// `Health` word: OK, Warning, Critical.
    pub status: String,
    pub percent: u8,
    /// `Message` objects, as JSON.
    pub messages: Vec<serde_json::Value>,
    pub started: i64,
    pub ended: Option<i64>,
    /// The URI of the resource the task works on.
    pub target: String,
}

/// An image a virtual media slot holds, as the BMC inserted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub system_id: String,
    pub slot: String,
    pub image: String,
    pub cache_path: String,
    pub sha256: String,
    pub write_protected: bool,
}

/// An event subscription (`EventDestination`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: i64,
    pub destination: String,
    pub context: String,
    pub registry_prefixes: Vec<String>,
    pub resource_types: Vec<String>,
    pub origin_resources: Vec<String>,
    /// Sent with every delivery; never shown back.
    pub http_headers: Vec<(String, String)>,
    /// `TerminateAfterRetries`, `SuspendRetries` or `RetryForever`.
    pub retry_policy: String,
    /// `Enabled` or `Suspended`.
    pub state: String,
    pub verify_certificate: bool,
}

/// One event waiting for delivery to one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: i64,
    pub subscription_id: i64,
    pub payload: String,
    pub attempts: u32,
    pub next_attempt: i64,
}

/// Inserts (`id` 0) or updates a subscription.
fn write_subscription(
    c: &mut Connection,
    mut s: SubscriptionRecord,
) -> Result<SubscriptionRecord, StoreError> {
    let (prefixes, types, origins, headers) = (
        json_list(&s.registry_prefixes)?,
        json_list(&s.resource_types)?,
        json_list(&s.origin_resources)?,
        json_list(&s.http_headers)?,
    );
    if s.id == 0 {
        c.execute(
            "INSERT INTO event_subscriptions(destination, context, registry_prefixes, resource_types,
                     origin_resources, http_headers, retry_policy, state, verify_certificate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.destination,
                s.context,
                prefixes,
                types,
                origins,
                headers,
                s.retry_policy,
                s.state,
                s.verify_certificate
            ],
        )?;
        s.id = c.last_insert_rowid();
    } else {
        let n = c.execute(
            "UPDATE event_subscriptions SET context = ?2, registry_prefixes = ?3, resource_types = ?4,
                     origin_resources = ?5, http_headers = ?6, retry_policy = ?7, state = ?8,
                     verify_certificate = ?9
                 WHERE id = ?1",
            params![
                s.id,
                s.context,
                prefixes,
                types,
                origins,
                headers,
                s.retry_policy,
                s.state,
                s.verify_certificate
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(s)
}

/// Integers as the inside of an SQL list (SQLite takes an empty `NOT IN ()`: true).
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn json_list<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Io(e.to_string()))
}

/// One entry of a log (`LogEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub id: i64,
    /// `events`, `audit` or `system:<uuid>`.
    pub log: String,
    pub created: i64,
    pub severity: String,
    pub message: String,
    pub message_id: String,
    pub args: Vec<String>,
    pub origin: String,
}

/// A console token as stored: its SHA-256, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTokenRecord {
    pub token_hash: [u8; 32],
    pub system_id: String,
    /// `KVMIP`, `Spice` or `Serial`.
    pub console_type: String,
    pub account_id: i64,
    pub user_name: String,
    pub created: i64,
    /// Unix time after which the token cannot be redeemed.
    pub expires: i64,
    /// Unix time at which sessions opened with the token end.
    pub session_deadline: i64,
    pub uses_left: u32,
}

/// What redeeming a console token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleRedeem {
    /// Granted; the record shows the uses left after this one.
    Granted(ConsoleTokenRecord),
    Unknown,
    Expired,
    UsedUp,
    /// Issued for another system or console type (no use consumed).
    OtherTarget,
}

#[derive(Clone)]
pub struct Store {
    jobs: SyncSender<Job>,
    /// One permit per queue place, held by a job until it has run.
    places: Arc<tokio::sync::Semaphore>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it to the
    /// current schema and starts the store thread. Blocking.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrations::migrate(&mut conn)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start store thread: {e}")))?;
        Ok(Store {
            jobs: tx,
            places: Arc::new(tokio::sync::Semaphore::new(QUEUE_DEPTH)),
        })
    }

    /// Queues a job for the store thread. A burst waits for a queue place
    /// (first come, first served) until `deadline` instead of failing at once.
    /// Not generic, so that the many `call` instances stay small.
    async fn submit(&self, job: Job, deadline: tokio::time::Instant) -> Result<(), StoreError> {
        let place = match tokio::time::timeout_at(deadline, Arc::clone(&self.places).acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(StoreError::Unavailable("store thread stopped".into())),
            Err(_) => return Err(StoreError::Unavailable("queue full".into())),
        };
        let job: Job = Box::new(move |conn| {
            let _place = place;
            job(conn);
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Unavailable("queue full".into())),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Unavailable("store thread stopped".into())),
        }
    }
}

/// Writes a consistent copy of the database at `db` to `out` (`VACUUM INTO`:
/// one read transaction, so it is safe while bmcd runs and writes); returns
/// the copy's schema version. Blocking.
pub fn snapshot(db: &Path, out: &Path) -> Result<i64, StoreError> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Io(format!("{} is not UTF-8", out.display())))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    schema_version(out)
}

/// The schema version of the database file at `db`. Blocking.
pub fn schema_version(db: &Path) -> Result<i64, StoreError> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Opens the database file at `db` and migrates it to [`SCHEMA_VERSION`]
/// (refusing a newer one); returns the version it had. Blocking.
pub fn migrate_file(db: &Path) -> Result<i64, StoreError> {
    let mut conn = Connection::open(db)?;
    let before: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    migrations::migrate(&mut conn)?;
    Ok(before)
}

impl Store {
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        let (reply, answer) = oneshot::channel();
        self.submit(
            Box::new(move |conn| {
                let _ = reply.send(f(conn));
            }),
            deadline,
        )
        .await?;
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StoreError::Unavailable("store thread dropped the call".into())),
            Err(_) => Err(StoreError::Unavailable("store did not answer in time".into())),
        }
    }

    /// Whether the database takes writes now: takes the write lock and
    /// lets it go (readiness).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.call(|c| {
            c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
        .await
    }

    // ---- settings -------------------------------------------------------

    pub async fn setting(&self, key: &'static str) -> Result<Option<String>, StoreError> {
        self.call(move |c| {
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    pub async fn set_setting(&self, key: &'static str, value: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    // ---- per-system state -----------------------------------------------

    pub async fn boot_override(&self, system_id: String) -> Result<Option<BootOverrideRecord>, StoreError> {
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT enabled, target, saved_order FROM boot_overrides WHERE system_id = ?1",
                    [&system_id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()?;
            Ok(row.map(|(enabled, target, saved)| BootOverrideRecord {
                system_id,
                enabled,
                target,
                saved_order: serde_json::from_str(&saved).unwrap_or_default(),
            }))
        })
        .await
    }

    pub async fn set_boot_override(&self, rec: BootOverrideRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let saved = serde_json::to_string(&rec.saved_order).map_err(|e| StoreError::Io(e.to_string()))?;
            c.execute(
                "INSERT INTO boot_overrides(system_id, enabled, target, saved_order) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(system_id) DO UPDATE SET enabled = excluded.enabled,
                     target = excluded.target, saved_order = excluded.saved_order",
                params![rec.system_id, rec.enabled, rec.target, saved],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_boot_override(&self, system_id: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM boot_overrides WHERE system_id = ?1", [system_id])?;
            Ok(())
        })
        .await
    }

    pub async fn system_settings(&self, system_id: String) -> Result<SystemSettings, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT asset_tag, location_indicator_active FROM system_settings WHERE system_id = ?1",
                [system_id],
                |r| {
                    Ok(SystemSettings {
                        asset_tag: r.get(0)?,
                        location_indicator_active: r.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
        })
        .await
    }

    pub async fn set_system_settings(&self, system_id: String, s: SystemSettings) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO system_settings(system_id, asset_tag, location_indicator_active) VALUES (?1, ?2, ?3)
                 ON CONFLICT(system_id) DO UPDATE SET asset_tag = excluded.asset_tag,
                     location_indicator_active = excluded.location_indicator_active",
                params![system_id, s.asset_tag, s.location_indicator_active],
            )?;
            Ok(())
        })
        .await
    }

    // ---- console tokens -------------------------------------------------

    /// Stores a new token and forgets tokens expired for over ten minutes.
    pub async fn insert_console_token(&self, t: ConsoleTokenRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM console_tokens WHERE expires < ?1", [t.created - 600])?;
            tx.execute(
                "INSERT INTO console_tokens(token_hash, system_id, console_type, account_id, user_name,
                     created, expires, session_deadline, uses_left)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    &t.token_hash[..],
                    t.system_id,
                    t.console_type,
                    t.account_id,
                    t.user_name,
                    t.created,
                    t.expires,
                    t.session_deadline,
                    t.uses_left
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Uses a token once, in one transaction: it must exist, be unexpired at
    /// `now`, have uses left and be for this system and console type.
    pub async fn redeem_console_token(
        &self,
        token_hash: [u8; 32],
        system_id: String,
        console_type: String,
        now: i64,
    ) -> Result<ConsoleRedeem, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let row = tx
                .query_row(
                    "SELECT system_id, console_type, account_id, user_name, created, expires,
                            session_deadline, uses_left
                     FROM console_tokens WHERE token_hash = ?1",
                    [&token_hash[..]],
                    |r| {
                        Ok(ConsoleTokenRecord {
                            token_hash,
                            system_id: r.get(0)?,
                            console_type: r.get(1)?,
                            account_id: r.get(2)?,
                            user_name: r.get(3)?,
                            created: r.get(4)?,
                            expires: r.get(5)?,
                            session_deadline: r.get(6)?,
                            uses_left: r.get(7)?,
                        })
                    },
                )
                .optional()?;
            let Some(mut t) = row else {
                return Ok(ConsoleRedeem::Unknown);
            };
            if t.system_id != system_id || t.console_type != console_type {
                return Ok(ConsoleRedeem::OtherTarget);
            }
            if now >= t.expires {
                return Ok(ConsoleRedeem::Expired);
            }
            if t.uses_left == 0 {
                return Ok(ConsoleRedeem::UsedUp);
            }
            t.uses_left -= 1;
            tx.execute(
                "UPDATE console_tokens SET uses_left = ?2 WHERE token_hash = ?1",
                params![&token_hash[..], t.uses_left],
            )?;
            tx.commit()?;
            Ok(ConsoleRedeem::Granted(t))
        })
        .await
    }

    // ---- tasks ----------------------------------------------------------

    pub async fn tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, state, status, percent, messages, started, ended, target
                 FROM tasks ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let messages: String = r.get(5)?;
                Ok(TaskRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    state: r.get(2)?,
                    status: r.get(3)?,
                    percent: r.get(4)?,
                    messages: serde_json::from_str(&messages).unwrap_or_default(),
                    started: r.get(6)?,
                    ended: r.get(7)?,
                    target: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Inserts a task (its id is assigned here) or updates it.
    pub async fn save_task(&self, mut t: TaskRecord) -> Result<TaskRecord, StoreError> {
        self.call(move |c| {
            let messages = serde_json::Value::Array(t.messages.clone()).to_string();
            if t.id == 0 {
                c.execute(
                    "INSERT INTO tasks(name, state, status, percent, messages, started, ended, target)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![t.name, t.state, t.status, t.percent, messages, t.started, t.ended, t.target],
                )?;
                t.id = c.last_insert_rowid();
            } else {
                c.execute(
                    "UPDATE tasks SET state = ?2, status = ?3, percent = ?4, messages = ?5, ended = ?6
                     WHERE id = ?1",
                    params![t.id, t.state, t.status, t.percent, messages, t.ended],
                )?;
            }
            Ok(t)
        })
        .await
    }

    /// Keeps the newest `keep` tasks.
    pub async fn prune_tasks(&self, keep: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM tasks WHERE id NOT IN (SELECT id FROM tasks ORDER BY id DESC LIMIT ?1)",
                [keep],
            )?;
            Ok(())
        })
        .await
    }

    // ---- virtual media --------------------------------------------------

    pub async fn media(&self, system_id: String) -> Result<Vec<MediaRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT slot, image, cache_path, sha256, write_protected FROM virtual_media
                 WHERE system_id = ?1 ORDER BY slot",
            )?;
            let rows = stmt.query_map([&system_id], |r| {
                Ok(MediaRecord {
                    system_id: system_id.clone(),
                    slot: r.get(0)?,
                    image: r.get(1)?,
                    cache_path: r.get(2)?,
                    sha256: r.get(3)?,
                    write_protected: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn set_media(&self, m: MediaRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO virtual_media(system_id, slot, image, cache_path, sha256, write_protected)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(system_id, slot) DO UPDATE SET image = excluded.image,
                     cache_path = excluded.cache_path, sha256 = excluded.sha256,
                     write_protected = excluded.write_protected",
                params![
                    m.system_id,
                    m.slot,
                    m.image,
                    m.cache_path,
                    m.sha256,
                    m.write_protected
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_media(&self, system_id: String, slot: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "DELETE FROM virtual_media WHERE system_id = ?1 AND slot = ?2",
                params![system_id, slot],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn media_verify_certificate(
        &self,
        system_id: String,
        slot: String,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT verify_certificate FROM media_settings WHERE system_id = ?1 AND slot = ?2",
                params![system_id, slot],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
        })
        .await
    }

    pub async fn set_media_verify_certificate(
        &self,
        system_id: String,
        slot: String,
        verify: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO media_settings(system_id, slot, verify_certificate) VALUES (?1, ?2, ?3)
                 ON CONFLICT(system_id, slot) DO UPDATE SET verify_certificate = excluded.verify_certificate",
                params![system_id, slot, verify],
            )?;
            Ok(())
        })
        .await
    }

    /// Trusted certificates of a slot: (id, PEM).
    pub async fn media_certificates(
        &self,
        system_id: String,
        slot: String,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, pem FROM media_certificates WHERE system_id = ?1 AND slot = ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![system_id, slot], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn add_media_certificate(
        &self,
        system_id: String,
        slot: String,
        pem: String,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO media_certificates(system_id, slot, pem) VALUES (?1, ?2, ?3)",
                params![system_id, slot, pem],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    pub async fn delete_media_certificate(
        &self,
        system_id: String,
        slot: String,
        id: i64,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "DELETE FROM media_certificates WHERE system_id = ?1 AND slot = ?2 AND id = ?3",
                params![system_id, slot, id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    // ---- events -----------------------------------------------------------

    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, destination, context, registry_prefixes, resource_types, origin_resources,
                        http_headers, retry_policy, state, verify_certificate
                 FROM event_subscriptions ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let list = |i: usize| -> rusqlite::Result<Vec<String>> {
                    let s: String = r.get(i)?;
                    Ok(serde_json::from_str(&s).unwrap_or_default())
                };
                let headers: String = r.get(6)?;
                Ok(SubscriptionRecord {
                    id: r.get(0)?,
                    destination: r.get(1)?,
                    context: r.get(2)?,
                    registry_prefixes: list(3)?,
                    resource_types: list(4)?,
                    origin_resources: list(5)?,
                    http_headers: serde_json::from_str(&headers).unwrap_or_default(),
                    retry_policy: r.get(7)?,
                    state: r.get(8)?,
                    verify_certificate: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Inserts (id 0) or updates a subscription; returns it with its id.
    pub async fn save_subscription(&self, s: SubscriptionRecord) -> Result<SubscriptionRecord, StoreError> {
        self.call(move |c| write_subscription(c, s)).await
    }

    /// Creates a subscription unless `max` exist already (`None` then).
    pub async fn create_subscription(
        &self,
        s: SubscriptionRecord,
        max: usize,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.call(move |c| {
            let n: i64 = c.query_row("SELECT COUNT(*) FROM event_subscriptions", [], |r| r.get(0))?;
            if n >= max as i64 {
                return Ok(None);
            }
            write_subscription(c, SubscriptionRecord { id: 0, ..s }).map(Some)
        })
        .await
    }

    /// Deletes a subscription and its pending deliveries.
    pub async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM event_outbox WHERE subscription_id = ?1", [id])?;
            let n = tx.execute("DELETE FROM event_subscriptions WHERE id = ?1", [id])?;
            tx.commit()?;
            Ok(n > 0)
        })
        .await
    }

    /// Queues deliveries (subscription id, payload) in one transaction.
    pub async fn enqueue_events(&self, rows: Vec<(i64, String)>, now: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for (sub, payload) in &rows {
                tx.execute(
                    "INSERT INTO event_outbox(subscription_id, payload, next_attempt) VALUES (?1, ?2, ?3)",
                    params![sub, payload, now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Deliveries due at `now`, at most `per_subscription` (the oldest) of each
    /// subscription, leaving out the subscriptions in `skip` (being delivered to).
    pub async fn due_events(
        &self,
        now: i64,
        per_subscription: i64,
        skip: Vec<i64>,
    ) -> Result<Vec<OutboxRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT id, subscription_id, payload, attempts, next_attempt FROM (
                   SELECT id, subscription_id, payload, attempts, next_attempt,
                          ROW_NUMBER() OVER (PARTITION BY subscription_id ORDER BY id) AS n
                   FROM event_outbox
                   WHERE dead = 0 AND next_attempt <= ?1 AND subscription_id NOT IN ({}))
                 WHERE n <= ?2 ORDER BY id",
                id_list(&skip)
            ))?;
            let rows = stmt.query_map(params![now, per_subscription], |r| {
                Ok(OutboxRecord {
                    id: r.get(0)?,
                    subscription_id: r.get(1)?,
                    payload: r.get(2)?,
                    attempts: r.get(3)?,
                    next_attempt: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The earliest pending delivery time, if any, of the subscriptions not in `skip`.
    pub async fn next_event_due(&self, skip: Vec<i64>) -> Result<Option<i64>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT MIN(next_attempt) FROM event_outbox WHERE dead = 0 AND subscription_id NOT IN ({})",
                    id_list(&skip)
                ),
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
        .await
    }

    pub async fn event_delivered(&self, id: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM event_outbox WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt: retry at `next_attempt`, or give up (`dead`).
    pub async fn event_failed(
        &self,
        id: i64,
        attempts: u32,
        next_attempt: i64,
        dead: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE event_outbox SET attempts = ?2, next_attempt = ?3, dead = ?4 WHERE id = ?1",
                params![id, attempts, next_attempt, dead],
            )?;
            Ok(())
        })
        .await
    }

    /// Brings back deliveries given up on (`deliver`), or drops them.
    pub async fn revive_events(&self, subscription_id: i64, deliver: bool) -> Result<(), StoreError> {
        self.call(move |c| {
            if deliver {
                c.execute(
                    "UPDATE event_outbox SET dead = 0, attempts = 0, next_attempt = 0 WHERE subscription_id = ?1",
                    [subscription_id],
                )?;
            } else {
                c.execute(
                    "DELETE FROM event_outbox WHERE subscription_id = ?1 AND dead = 1",
                    [subscription_id],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// How many deliveries are pending and how many were given up, per subscription.
    pub async fn outbox_counts(&self, subscription_id: i64) -> Result<(i64, i64), StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 1), 0) FROM event_outbox
                 WHERE subscription_id = ?1",
                [subscription_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
    }

    // ---- logs -------------------------------------------------------------

    /// Appends entries, then keeps only the newest `keep` of each log touched.
    pub async fn append_logs(&self, entries: Vec<LogRecord>, keep: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let mut logs: Vec<&str> = Vec::new();
            for e in &entries {
                tx.execute(
                    "INSERT INTO log_entries(log, created, severity, message, message_id, args, origin)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        e.log,
                        e.created,
                        e.severity,
                        e.message,
                        e.message_id,
                        json_list(&e.args)?,
                        e.origin
                    ],
                )?;
                if !logs.contains(&e.log.as_str()) {
                    logs.push(&e.log);
                }
            }
            for log in logs {
                tx.execute(
                    "DELETE FROM log_entries WHERE log = ?1 AND id <= (
                         SELECT id FROM log_entries WHERE log = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    params![log, keep],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// A log's entries, oldest first.
    pub async fn log_entries(&self, log: String) -> Result<Vec<LogRecord>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, created, severity, message, message_id, args, origin FROM log_entries
                 WHERE log = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([&log], |r| {
                let args: String = r.get(5)?;
                Ok(LogRecord {
                    id: r.get(0)?,
                    log: log.clone(),
                    created: r.get(1)?,
                    severity: r.get(2)?,
                    message: r.get(3)?,
                    message_id: r.get(4)?,
                    args: serde_json::from_str(&args).unwrap_or_default(),
                    origin: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn clear_log(&self, log: String) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute("DELETE FROM log_entries WHERE log = ?1", [log])?;
            Ok(())
        })
        .await
    }

    // ---- accounts -------------------------------------------------------

    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, user_name, password_hash, role_id, enabled, failed_logins,
                        last_failure, locked_until, password_change_required, project
                 FROM accounts ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AccountRecord {
                    id: r.get(0)?,
                    user_name: r.get(1)?,
                    password_hash: r.get(2)?,
                    role_id: r.get(3)?,
                    enabled: r.get(4)?,
                    failed_logins: r.get(5)?,
                    last_failure: r.get(6)?,
                    locked_until: r.get(7)?,
                    password_change_required: r.get(8)?,
                    project: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Inserts a new account and returns it with its id.
    pub async fn insert_account(&self, mut account: AccountRecord) -> Result<AccountRecord, StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO accounts(user_name, password_hash, role_id, enabled, failed_logins,
                                      last_failure, locked_until, password_change_required, project)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    account.user_name,
                    account.password_hash,
                    account.role_id,
                    account.enabled,
                    account.failed_logins,
                    account.last_failure,
                    account.locked_until,
                    account.password_change_required,
                    account.project
                ],
            )?;
            account.id = c.last_insert_rowid();
            Ok(account)
        })
        .await
    }

    pub async fn update_account(&self, account: AccountRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE accounts SET user_name = ?2, password_hash = ?3, role_id = ?4, enabled = ?5,
                        failed_logins = ?6, last_failure = ?7, locked_until = ?8,
                        password_change_required = ?9, project = ?10
                 WHERE id = ?1",
                params![
                    account.id,
                    account.user_name,
                    account.password_hash,
                    account.role_id,
                    account.enabled,
                    account.failed_logins,
                    account.last_failure,
                    account.locked_until,
                    account.password_change_required,
                    account.project
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// Deletes an account and, in the same transaction, its sessions.
    pub async fn delete_account(&self, id: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM sessions WHERE account_id = ?1", [id])?;
            let n = tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    // ---- sessions -------------------------------------------------------

    pub async fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, token_hash, account_id, created, last_used, client_address
                 FROM sessions ORDER BY created",
            )?;
            let rows = stmt.query_map([], |r| {
                let hash: Vec<u8> = r.get(1)?;
                Ok((
                    SessionRecord {
                        id: r.get(0)?,
                        token_hash: [0; 32],
                        account_id: r.get(2)?,
                        created: r.get(3)?,
                        last_used: r.get(4)?,
                        client_address: r.get(5)?,
                    },
                    hash,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (mut rec, hash) = row?;
                // A row whose hash is not 32 bytes cannot match any token: drop it.
                if let Ok(h) = <[u8; 32]>::try_from(hash.as_slice()) {
                    rec.token_hash = h;
                    out.push(rec);
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn insert_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO sessions(id, token_hash, account_id, created, last_used, client_address)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.id,
                    s.token_hash.as_slice(),
                    s.account_id,
                    s.created,
                    s.last_used,
                    s.client_address
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_sessions(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for id in &ids {
                tx.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records when sessions were last used (written behind, in batches).
    pub async fn touch_sessions(&self, uses: Vec<(String, i64)>) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for (id, t) in &uses {
                tx.execute("UPDATE sessions SET last_used = ?2 WHERE id = ?1", params![id, t])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> AccountRecord {
        AccountRecord {
            id: 0,
            user_name: name.into(),
            password_hash: "h".into(),
            role_id: "Administrator".into(),
            enabled: true,
            failed_logins: 0,
            last_failure: 0,
            locked_until: 0,
            password_change_required: false,
            project: None,
        }
    }

    #[tokio::test]
    async fn accounts_and_sessions_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("bmcd-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("state.db");
        let _ = std::fs::remove_file(&path);
        {
            let store = Store::open(&path).expect("opens");
            let a = store.insert_account(account("alice")).await.expect("insert");
            assert!(a.id > 0);
            let dup = store.insert_account(account("alice")).await;
            assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
            store
                .insert_session(SessionRecord {
                    id: "s1".into(),
                    token_hash: [7; 32],
                    account_id: a.id,
                    created: 1,
                    last_used: 2,
                    client_address: "127.0.0.1".into(),
                })
                .await
                .expect("session");
            store
                .touch_sessions(vec![("s1".into(), 99)])
                .await
                .expect("touch");
            store
                .set_setting("session_timeout", "600".into())
                .await
                .expect("setting");
        }
        let store = Store::open(&path).expect("reopens");
        let accounts = store.accounts().await.expect("accounts");
        assert_eq!(accounts.len(), 1);
        let sessions = store.sessions().await.expect("sessions");
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].token_hash, [7; 32]);
        assert_eq!(sessions[0].last_used, 99);
        assert_eq!(
            store.setting("session_timeout").await.expect("get").as_deref(),
            Some("600")
        );
        store.delete_account(accounts[0].id).await.expect("delete");
        assert!(store.sessions().await.expect("sessions").is_empty());
        assert_eq!(
            store.delete_account(accounts[0].id).await,
            Err(StoreError::NotFound)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn subscription(context: &str) -> SubscriptionRecord {
        SubscriptionRecord {
            id: 0,
            destination: "http://127.0.0.1:9/".into(),
            context: context.into(),
            registry_prefixes: Vec::new(),
            resource_types: Vec::new(),
            origin_resources: Vec::new(),
            http_headers: Vec::new(),
            retry_policy: "SuspendRetries".into(),
            state: "Enabled".into(),
            verify_certificate: false,
        }
    }

    #[tokio::test]
    async fn subscriptions_are_limited_and_deliveries_taken_per_subscriber() {
        let dir = std::env::temp_dir().join(format!("bmcd-store-outbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("state.db");
        let _ = std::fs::remove_file(&path);
        let store = Store::open(&path).expect("opens");
        let a = store.create_subscription(subscription("a"), 2).await.expect("a");
        let b = store.create_subscription(subscription("b"), 2).await.expect("b");
        let (Some(a), Some(b)) = (a, b) else {
            panic!("two subscriptions fit a limit of 2")
        };
        assert_eq!(store.create_subscription(subscription("c"), 2).await, Ok(None));
        let rows: Vec<(i64, String)> = (0..5)
            .flat_map(|n| [(a.id, format!("a{n}")), (b.id, format!("b{n}"))])
            .collect();
        store.enqueue_events(rows, 10).await.expect("enqueue");
        // At most 2 of each subscriber, oldest first, in outbox order.
        let due = store.due_events(10, 2, Vec::new()).await.expect("due");
        let payloads: Vec<&str> = due.iter().map(|r| r.payload.as_str()).collect();
        assert_eq!(payloads, ["a0", "b0", "a1", "b1"]);
        // A subscriber being delivered to is left out, also from the next due time.
        let due = store.due_events(10, 64, vec![a.id]).await.expect("due");
        assert!(due.iter().all(|r| r.subscription_id == b.id) && due.len() == 5);
        assert_eq!(
            store.due_events(9, 64, Vec::new()).await.expect("due"),
            Vec::new()
        );
        for r in &due {
            store.event_delivered(r.id).await.expect("delivered");
        }
        assert_eq!(store.next_event_due(vec![a.id]).await, Ok(None));
        assert_eq!(store.next_event_due(Vec::new()).await, Ok(Some(10)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn console_tokens_are_used_once_and_expire() {
        let dir = std::env::temp_dir().join(format!("bmcd-store-console-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("state.db");
        let _ = std::fs::remove_file(&path);
        let store = Store::open(&path).expect("opens");
        let token = |hash: u8, uses: u32| ConsoleTokenRecord {
            token_hash: [hash; 32],
            system_id: "sys".into(),
            console_type: "KVMIP".into(),
            account_id: 1,
            user_name: "admin".into(),
            created: 1000,
            expires: 1060,
            session_deadline: 4600,
            uses_left: uses,
        };
        store.insert_console_token(token(1, 1)).await.expect("insert");
        store.insert_console_token(token(2, 2)).await.expect("insert");
        let redeem = |hash: u8, system: &str, kind: &str, now: i64| {
            store.redeem_console_token([hash; 32], system.into(), kind.into(), now)
        };
        assert_eq!(redeem(9, "sys", "KVMIP", 1001).await, Ok(ConsoleRedeem::Unknown));
        assert_eq!(
            redeem(1, "other", "KVMIP", 1001).await,
            Ok(ConsoleRedeem::OtherTarget)
        );
        assert_eq!(
            redeem(1, "sys", "Serial", 1001).await,
            Ok(ConsoleRedeem::OtherTarget)
        );
        match redeem(1, "sys", "KVMIP", 1001).await {
            Ok(ConsoleRedeem::Granted(t)) => assert_eq!((t.uses_left, t.session_deadline), (0, 4600)),
            other => panic!("{other:?}"),
        }
        assert_eq!(redeem(1, "sys", "KVMIP", 1002).await, Ok(ConsoleRedeem::UsedUp));
        assert!(matches!(
            redeem(2, "sys", "KVMIP", 1059).await,
            Ok(ConsoleRedeem::Granted(_))
        ));
        assert_eq!(redeem(2, "sys", "KVMIP", 1060).await, Ok(ConsoleRedeem::Expired));
        // Minting ten minutes after expiry forgets the old tokens.
        let mut late = token(3, 1);
        late.created = 1060 + 601;
        late.expires = late.created + 60;
        store.insert_console_token(late).await.expect("insert");
        assert_eq!(redeem(1, "sys", "KVMIP", 1700).await, Ok(ConsoleRedeem::Unknown));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
