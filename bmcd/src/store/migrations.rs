//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each entry upgrades the schema from version N to N+1 and runs in its own
//! transaction. Entries are never edited once released; new ones are appended.

use rusqlite::Connection;

use super::StoreError;

/// Console tokens: only the SHA-256 of each token is stored, with what it
/// opens, for whom, until when and how many more times. Kept as a named
/// constant so that its place in [`MIGRATIONS`] is easy to move.
const CONSOLE_TOKENS: &str = "CREATE TABLE console_tokens (
        token_hash BLOB PRIMARY KEY,
        system_id TEXT NOT NULL,
        console_type TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        user_name TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        session_deadline INTEGER NOT NULL,
        uses_left INTEGER NOT NULL
    );
    CREATE INDEX console_tokens_expiry ON console_tokens(expires);";

/// The images catalog (base volumes), profiles (as JSON) and the systems
/// bmcd composed, with their life cycle state and what they count against
/// the quotas.
const COMPOSITION: &str = "CREATE TABLE images (
        id TEXT PRIMARY KEY,
        pool TEXT NOT NULL,
        volume TEXT NOT NULL,
        os TEXT NOT NULL,
        description TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE composed_systems (
        system_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        profile TEXT NOT NULL,
        image TEXT,
        state TEXT NOT NULL,
        message TEXT NOT NULL,
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        disk_bytes INTEGER NOT NULL,
        volumes TEXT NOT NULL,
        created INTEGER NOT NULL
    );";

const PROJECTS: &str = "CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        max_systems INTEGER NOT NULL,
        max_vcpus INTEGER NOT NULL,
        max_memory_mib INTEGER NOT NULL,
        max_disk_gib INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    ALTER TABLE accounts ADD COLUMN project TEXT;
    ALTER TABLE composed_systems ADD COLUMN project TEXT;
    ALTER TABLE images ADD COLUMN project TEXT;
    ALTER TABLE profiles ADD COLUMN project TEXT;
    CREATE TABLE volume_projects (
        pool TEXT NOT NULL,
        volume TEXT NOT NULL,
        project TEXT NOT NULL,
        PRIMARY KEY (pool, volume)
    );";

const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions, settings
    "CREATE TABLE accounts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role_id TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        last_failure INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0,
        password_change_required INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        created INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        client_address TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 2: per-system BMC state: boot overrides, asset tag, location indicator
    "CREATE TABLE boot_overrides (
        system_id TEXT PRIMARY KEY,
        enabled TEXT NOT NULL,
        target TEXT NOT NULL,
        saved_order TEXT NOT NULL
    );
    CREATE TABLE system_settings (
        system_id TEXT PRIMARY KEY,
        asset_tag TEXT NOT NULL DEFAULT '',
        location_indicator_active INTEGER NOT NULL DEFAULT 0
    );",
    // 3: tasks and virtual media
    "CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        percent INTEGER NOT NULL DEFAULT 0,
        messages TEXT NOT NULL DEFAULT '[]',
        started INTEGER NOT NULL,
        ended INTEGER,
        target TEXT NOT NULL
    );
    CREATE TABLE virtual_media (
        system_id TEXT NOT NULL,
        slot TEXT NOT NULL,
        image TEXT NOT NULL,
        cache_path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        write_protected INTEGER NOT NULL,
        PRIMARY KEY (system_id, slot)
    );",
    // 4: TLS trust of virtual media slots
    "CREATE TABLE media_settings (
        system_id TEXT NOT NULL,
        slot TEXT NOT NULL,
        verify_certificate INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (system_id, slot)
    );
    CREATE TABLE media_certificates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        system_id TEXT NOT NULL,
        slot TEXT NOT NULL,
        pem TEXT NOT NULL
    );",
    // 5: event subscriptions and the delivery outbox
    "CREATE TABLE event_subscriptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        destination TEXT NOT NULL,
        context TEXT NOT NULL,
        registry_prefixes TEXT NOT NULL,
        resource_types TEXT NOT NULL,
        origin_resources TEXT NOT NULL,
        http_headers TEXT NOT NULL,
        retry_policy TEXT NOT NULL,
        state TEXT NOT NULL,
        verify_certificate INTEGER NOT NULL
    );
    CREATE TABLE event_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subscription_id INTEGER NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        dead INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX event_outbox_due ON event_outbox(dead, next_attempt);",
    // 6: logs: the BMC's event log, per-system logs and the audit trail
    "CREATE TABLE log_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        log TEXT NOT NULL,
        created INTEGER NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        message_id TEXT NOT NULL,
        args TEXT NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE INDEX log_entries_by_log ON log_entries(log, id);",
    // 7: per-VM BMC endpoints with their persona, the vendor jobs a persona
    // shows (iDRAC JID_...), and vendor BIOS attributes that exist only in a
    // persona's registry
    "CREATE TABLE bmc_endpoints (
        id TEXT PRIMARY KEY,
        system_id TEXT NOT NULL,
        persona TEXT NOT NULL,
        listen TEXT NOT NULL UNIQUE,
        user_name TEXT,
        created INTEGER NOT NULL
    );
    CREATE TABLE persona_jobs (
        id TEXT PRIMARY KEY,
        system_id TEXT NOT NULL,
        job_type TEXT NOT NULL,
        name TEXT NOT NULL,
        created INTEGER NOT NULL,
        state TEXT NOT NULL,
        percent INTEGER NOT NULL,
        message TEXT NOT NULL,
        message_id TEXT NOT NULL,
        completed INTEGER
    );
    CREATE TABLE persona_attributes (
        system_id TEXT NOT NULL,
        name TEXT NOT NULL,
        current TEXT NOT NULL,
        pending TEXT,
        PRIMARY KEY (system_id, name)
    );",
    // 8: console tokens
    CONSOLE_TOKENS,
    // 9: reserved for another branch's migration (replaced when it merges)
    "-- reserved",
    // 10: composition: the images catalog, profiles and composed systems with
    // their life cycle state
    COMPOSITION,
    // 11: the TLS server certificate of each per-VM BMC endpoint, its key,
    // and the key of its pending certificate signing request
    "CREATE TABLE endpoint_certificates (
        endpoint_id TEXT PRIMARY KEY,
        certificate TEXT NOT NULL,
        private_key TEXT NOT NULL,
        csr_key TEXT
    );",
    // 12: projects (tenants): their quotas, and the project of accounts,
    // composed systems, images, profiles and volumes
    PROJECTS,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Upgrades to `target` (at most [`SCHEMA_VERSION`]); tests make old
/// databases with it.
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "state database has schema version {current}, newer than this bmcd ({SCHEMA_VERSION}); \
             refusing to downgrade"
        )));
    }
    let wanted = target.clamp(0, SCHEMA_VERSION) as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(wanted).skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_from_empty_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().expect("opens");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// A database made by an older bmcd (only the first migrations applied,
    /// rows written in that schema) is upgraded on open, its rows intact.
    #[test]
    fn an_old_database_is_upgraded_with_its_rows_intact() {
        for old in [1, 2, 5, SCHEMA_VERSION - 1] {
            let dir = std::env::temp_dir().join(format!("bmcd-migrate-{}-{old}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("dir");
            let db = dir.join("bmcd.sqlite3");
            {
                let mut conn = Connection::open(&db).expect("opens");
                migrate_to(&mut conn, old).expect("old schema");
                conn.execute_batch(
                    "INSERT INTO accounts(user_name, password_hash, role_id) VALUES ('old-admin', 'h', 'Administrator');
                     INSERT INTO settings(key, value) VALUES ('service_uuid', 'u-1');",
                )
                .expect("rows");
                if old >= 2 {
                    conn.execute_batch("INSERT INTO boot_overrides VALUES ('sys-1', 'Once', 'Pxe', '[]');")
                        .expect("boot row");
                }
                let v: i64 = conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .expect("v");
                assert_eq!(v, old);
            }
            assert_eq!(crate::store::migrate_file(&db).expect("migrates"), old);
            let conn = Connection::open(&db).expect("opens");
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .expect("v");
            assert_eq!(v, SCHEMA_VERSION);
            let user: String = conn
                .query_row("SELECT user_name FROM accounts", [], |r| r.get(0))
                .expect("account kept");
            assert_eq!(user, "old-admin");
            let uuid: String = conn
                .query_row("SELECT value FROM settings WHERE key = 'service_uuid'", [], |r| {
                    r.get(0)
                })
                .expect("setting kept");
            assert_eq!(uuid, "u-1");
            if old >= 2 {
                let target: String = conn
                    .query_row("SELECT target FROM boot_overrides", [], |r| r.get(0))
                    .expect("boot kept");
                assert_eq!(target, "Pxe");
            }
            // Tables of later migrations exist and work.
            conn.execute_batch("INSERT INTO log_entries(log, created, severity, message, message_id, args, origin) VALUES ('x', 0, 'OK', 'm', 'i', '[]', '')")
                .expect("later table");
            drop(conn);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_newer_database_file_is_refused_with_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("bmcd-migrate-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("bmcd.sqlite3");
        {
            let mut conn = Connection::open(&db).expect("opens");
            migrate(&mut conn).expect("current");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 3)
                .expect("set");
        }
        let err = match crate::store::Store::open(&db) {
            Ok(_) => panic!("a newer schema must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("newer than this bmcd"), "{err}");
        assert!(err.contains(&format!("{}", SCHEMA_VERSION + 3)), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set");
        assert!(migrate(&mut conn).is_err());
    }
}
