//! `bmcd admin backup` and `bmcd admin restore`, and the state directory's
//! lock that keeps a restore away from a running bmcd.
//!
//! A backup is one ustar archive:
//! - `manifest.json`: format, bmcd version, schema version, time, and the
//!   SHA-256 and size of every other file;
//! - `state/bmcd.sqlite3`: a consistent snapshot of the state database
//!   (`VACUUM INTO`, safe while bmcd runs);
//! - `state/...`: the other files of the state directory that are state (the
//!   HTTPS certificate and key under `tls/`, ...), not the media cache, the
//!   firmware work directory or the firmware bank record, which belong to
//!   this machine's disks (`--with-media` adds the media cache);
//! - `config/bmcd.toml`: the configuration file, when `--config` named one;
//! - `external/cert`, `external/key`: a configured certificate and key that
//!   live outside the state directory, restored to their paths.

pub mod tar;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::config::{AdminAction, AdminCommand, Command, Config};
use crate::firmware::package::{self, Span};

/// The state database's file name in the state directory.
pub const DATABASE: &str = "bmcd.sqlite3";
/// The lock file a running bmcd holds (`flock`, exclusive).
pub const LOCK_FILE: &str = "bmcd.lock";
const FORMAT: &str = "redfin-bmcd-backup";
const FORMAT_VERSION: u32 = 1;
/// State-directory entries a backup leaves out.
const NOT_STATE: &[&str] = &[
    DATABASE,
    "bmcd.sqlite3-wal",
    "bmcd.sqlite3-shm",
    "bmcd.sqlite3-journal",
    LOCK_FILE,
    "media",
    "firmware",
    "firmware.json",
    "console.sock",
];

/// The lock of a running bmcd on its state directory.
pub struct StateLock {
    _lock: Flock<File>,
}

/// Takes the state directory's lock, or says that another bmcd holds it.
pub fn lock_state_dir(dir: &Path) -> Result<StateLock, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("lock file {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(StateLock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(format!(
            "another bmcd is running on the state directory {} (it holds {})",
            dir.display(),
            path.display()
        )),
        Err((_, e)) => Err(format!("lock file {}: {e}", path.display())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub bmcd_version: String,
    pub schema_version: i64,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestFile {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    /// Where an `external/` file goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// A file of a backup and where it is in the archive.
pub type ArchivedFile = (ManifestFile, Span);

#[cfg(test)]
fn sha256_hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn config_of(args: &[String]) -> Result<Config, String> {
    match Config::from_args(args, &|k| std::env::var(k).ok()) {
        Ok(Command::Run(c)) => Ok(*c),
        Ok(_) => Err("admin options are bmcd's run options".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs an admin command; the text to print on success.
pub fn run(cmd: &AdminCommand) -> Result<String, String> {
    match cmd.action {
        AdminAction::Backup => {
            let config = config_of(&cmd.args)?;
            let m = backup(&config, cmd.config_file.as_deref(), &cmd.archive, cmd.with_media)?;
            Ok(format!(
                "bmcd: backup of {} written to {} (schema version {}, {} files)",
                config.state_dir.display(),
                cmd.archive.display(),
                m.schema_version,
                m.files.len()
            ))
        }
        AdminAction::Restore => restore(cmd),
    }
}

/// The state files to back up: relative paths under `dir`, sorted.
fn state_files(dir: &Path, with_media: bool) -> Result<Vec<String>, String> {
    fn walk(root: &Path, rel: &str, with_media: bool, out: &mut Vec<String>) -> Result<(), String> {
        let here = if rel.is_empty() {
            root.to_owned()
        } else {
            root.join(rel)
        };
        let entries = std::fs::read_dir(&here).map_err(|e| format!("{}: {e}", here.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", here.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if rel.is_empty() && NOT_STATE.contains(&name.as_str()) && !(with_media && name == "media") {
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|e| format!("{child}: {e}"))?;
            if kind.is_dir() {
                walk(root, &child, with_media, out)?;
            } else if kind.is_file() {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", with_media, &mut out)?;
    out.sort();
    Ok(out)
}

/// SHA-256 (hex) and size of a file, read in pieces.
fn hash_file(path: &Path) -> Result<(String, u64), String> {
    use std::io::Read as _;
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        size += n as u64;
    }
    let hex = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, size))
}

/// Writes the backup archive of `config`'s state (and `config_file`) to `archive`.
pub fn backup(
    config: &Config,
    config_file: Option<&Path>,
    archive: &Path,
    with_media: bool,
) -> Result<Manifest, String> {
    let dir = &config.state_dir;
    let db = dir.join(DATABASE);
    if !db.exists() {
        return Err(format!("no state database at {}", db.display()));
    }
    // The snapshot goes next to the archive, and is removed afterwards.
    let snapshot = archive.with_extension(format!("snapshot-{}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&snapshot);
    let result = crate::store::snapshot(&db, &snapshot)
        .map_err(|e| format!("snapshot: {e}"))
        .and_then(|schema_version| {
            write_backup(
                config,
                config_file,
                archive,
                with_media,
                &snapshot,
                schema_version,
            )
        });
    let _ = std::fs::remove_file(&snapshot);
    result
}

fn write_backup(
    config: &Config,
    config_file: Option<&Path>,
    archive: &Path,
    with_media: bool,
    snapshot: &Path,
    schema_version: i64,
) -> Result<Manifest, String> {
    let dir = &config.state_dir;
    let mut sources: Vec<(String, PathBuf, Option<PathBuf>)> =
        vec![(format!("state/{DATABASE}"), snapshot.to_owned(), None)];
    for rel in state_files(dir, with_media)? {
        sources.push((format!("state/{rel}"), dir.join(&rel), None));
    }
    if let Some(cf) = config_file {
        sources.push(("config/bmcd.toml".into(), cf.to_owned(), Some(cf.to_owned())));
    }
    for (name, path) in [("external/cert", &config.cert), ("external/key", &config.key)] {
        if let Some(p) = path.as_ref().filter(|p| !p.starts_with(dir)) {
            sources.push((name.into(), p.clone(), Some(p.clone())));
        }
    }
    let mut files = Vec::with_capacity(sources.len());
    for (name, src, path) in &sources {
        let (sha256, size) = hash_file(src)?;
        files.push(ManifestFile {
            name: name.clone(),
            sha256,
            size,
            path: path.clone(),
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        bmcd_version: crate::VERSION.into(),
        schema_version,
        created: now(),
        files,
    };
    let manifest_json = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;

    // Written beside the target and renamed, so a failed backup leaves no half archive.
    let partial = archive.with_extension("partial");
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)?,
        );
        let t = manifest.created;
        tar::append(&mut out, "manifest.json", &manifest_json, t)?;
        for (m, (_, src, _)) in manifest.files.iter().zip(&sources) {
            tar::append_file(&mut out, &m.name, src, m.size, t)?;
        }
        tar::finish(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, archive)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        format!("{}: {e}", archive.display())
    })?;
    Ok(manifest)
}

/// A backup opened and checked: format, hashes, and a schema this bmcd can
/// read (the same or older).
pub struct Backup {
    pub manifest: Manifest,
    file: File,
    /// Each manifest entry and where its contents are in the archive.
    pub files: Vec<ArchivedFile>,
}

impl Backup {
    /// A small file's contents.
    pub fn read(&self, span: Span) -> Result<Vec<u8>, String> {
        package::read_span(&self.file, span, 16 << 20).map_err(|e| e.to_string())
    }

    /// Copies a file out of the archive to `path` (through a temporary file).
    fn extract(&self, span: Span, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::FileExt as _;
        write_with(path, |out| {
            let mut buf = vec![0u8; 64 << 10];
            let mut done = 0u64;
            while done < span.len {
                let n = buf.len().min((span.len - done) as usize);
                self.file.read_exact_at(&mut buf[..n], span.offset + done)?;
                out.write_all(&buf[..n])?;
                done += n as u64;
            }
            Ok(())
        })
    }
}

pub fn read_archive(archive: &Path) -> Result<Backup, String> {
    let file = File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let entries = package::tar_tree(&file, Span { offset: 0, len })
        .map_err(|e| format!("{}: {e}", archive.display()))?;
    let manifest_entry = entries
        .iter()
        .find(|e| e.name == "manifest.json")
        .ok_or_else(|| format!("{}: no manifest.json; not a bmcd backup", archive.display()))?;
    let raw = package::read_span(&file, manifest_entry.data, 1 << 20).map_err(|e| e.to_string())?;
    let manifest: Manifest =
        serde_json::from_slice(&raw).map_err(|e| format!("manifest.json: {e}; not a bmcd backup"))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(format!(
            "not a bmcd backup of a known format ({} version {})",
            manifest.format, manifest.format_version
        ));
    }
    if manifest.schema_version > crate::store::SCHEMA_VERSION {
        return Err(format!(
            "the backup's state database has schema version {}, newer than this bmcd ({}); \
             restore it with bmcd {} or newer",
            manifest.schema_version,
            crate::store::SCHEMA_VERSION,
            manifest.bmcd_version
        ));
    }
    let mut files = Vec::new();
    for m in &manifest.files {
        let entry = entries
            .iter()
            .find(|e| e.name == m.name)
            .ok_or_else(|| format!("{} is in the manifest but not in the archive", m.name))?;
        let sha = package::sha256_span(&file, entry.data, &|_| {}).map_err(|e| e.to_string())?;
        if entry.data.len != m.size || !sha.eq_ignore_ascii_case(&m.sha256) {
            return Err(format!(
                "{} does not match its manifest entry (damaged archive)",
                m.name
            ));
        }
        let ok_name = m.name.starts_with("state/")
            || m.name == "config/bmcd.toml"
            || (m.name.starts_with("external/") && m.path.as_ref().is_some_and(|p| p.is_absolute()));
        if !ok_name {
            return Err(format!("unexpected file {} in the backup", m.name));
        }
        files.push((m.clone(), entry.data));
    }
    if !files.iter().any(|(m, _)| m.name == format!("state/{DATABASE}")) {
        return Err("the backup holds no state database".into());
    }
    Ok(Backup {
        manifest,
        file,
        files,
    })
}

/// Writes `path` through a temporary file beside it (mode 0600), creating
/// missing directories (0700).
fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let tmp = path.with_extension("restoring");
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

fn restore(cmd: &AdminCommand) -> Result<String, String> {
    let backup = read_archive(&cmd.archive)?;
    let manifest = &backup.manifest;
    // The configuration file first: after a wipe it may be gone, and it names
    // the state directory.
    let mut notes = Vec::new();
    if let Some((_, span)) = backup.files.iter().find(|(m, _)| m.name == "config/bmcd.toml") {
        match &cmd.config_file {
            Some(target) if !target.exists() || cmd.force => {
                backup.extract(*span, target)?;
                notes.push(format!("configuration restored to {}", target.display()));
            }
            Some(target) => notes.push(format!(
                "configuration file {} exists; kept (the backup's copy is written with --force)",
                target.display()
            )),
            None => {
                notes.push("the backup holds a configuration file; give --config FILE to restore it".into())
            }
        }
    }
    let config = config_of(&cmd.args)?;
    let dir = &config.state_dir;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    }
    // Held for the whole restore: a bmcd starting meanwhile waits for nothing
    // and fails, rather than reading a half-restored directory.
    let _lock = lock_state_dir(dir)?;
    let db = dir.join(DATABASE);
    if db.exists() && !cmd.force {
        return Err(format!(
            "{} already has a state database; restore into an empty state directory, or give --force to replace it",
            dir.display()
        ));
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let p = dir.join(format!("{DATABASE}{suffix}"));
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    for (m, span) in &backup.files {
        if let Some(rel) = m.name.strip_prefix("state/") {
            backup.extract(*span, &dir.join(rel))?;
        } else if let (true, Some(target)) = (m.name.starts_with("external/"), &m.path) {
            if !target.exists() || cmd.force {
                backup.extract(*span, target)?;
            } else {
                notes.push(format!("{} exists; kept", target.display()));
            }
        }
    }
    let before = crate::store::migrate_file(&db).map_err(|e| format!("state database: {e}"))?;
    let migrated = if before < crate::store::SCHEMA_VERSION {
        format!(
            ", migrated from schema version {before} to {}",
            crate::store::SCHEMA_VERSION
        )
    } else {
        String::new()
    };
    let mut text = format!(
        "bmcd: restored {} from {} (bmcd {}, schema version {}{migrated})",
        dir.display(),
        cmd.archive.display(),
        manifest.bmcd_version,
        manifest.schema_version
    );
    for n in notes {
        text.push_str("\nbmcd: ");
        text.push_str(&n);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bmcd-admin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn admin(action: AdminAction, archive: &Path, state: &Path, force: bool) -> AdminCommand {
        AdminCommand {
            action,
            archive: archive.to_owned(),
            force,
            with_media: false,
            config_file: None,
            args: vec!["--state-dir".into(), state.display().to_string()],
        }
    }

    fn make_state(state: &Path) {
        std::fs::create_dir_all(state.join("tls")).expect("dir");
        std::fs::create_dir_all(state.join("media")).expect("dir");
        let store = crate::store::Store::open(&state.join(DATABASE)).expect("store");
        drop(store);
        std::fs::write(state.join("tls/https.crt"), b"CERT").expect("w");
        std::fs::write(state.join("media/big.iso"), b"ISO").expect("w");
    }

    #[test]
    fn backup_and_restore_round_trip_and_refusals() {
        let root = temp("rt");
        let state = root.join("state");
        make_state(&state);
        let archive = root.join("b.tar");
        let out = run(&admin(AdminAction::Backup, &archive, &state, false)).expect("backup");
        assert!(out.contains("written"), "{out}");
        let b = read_archive(&archive).expect("reads");
        assert_eq!(b.manifest.schema_version, crate::store::SCHEMA_VERSION);
        let names: Vec<&str> = b.files.iter().map(|(f, _)| f.name.as_str()).collect();
        assert_eq!(names, ["state/bmcd.sqlite3", "state/tls/https.crt"]);
        let mut with_media = admin(AdminAction::Backup, &root.join("m.tar"), &state, false);
        with_media.with_media = true;
        run(&with_media).expect("backup with media");
        let b = read_archive(&root.join("m.tar")).expect("reads");
        assert!(b.files.iter().any(|(f, _)| f.name == "state/media/big.iso"));

        // Into the same, populated directory: refused without --force.
        let err = run(&admin(AdminAction::Restore, &archive, &state, false)).expect_err("refused");
        assert!(err.contains("--force"), "{err}");
        // While "bmcd" holds the lock: refused.
        let lock = lock_state_dir(&state).expect("lock");
        let err = run(&admin(AdminAction::Restore, &archive, &state, true)).expect_err("refused");
        assert!(err.contains("another bmcd is running"), "{err}");
        drop(lock);
        // Wiped, then restored.
        std::fs::remove_dir_all(&state).expect("wipe");
        let out = run(&admin(AdminAction::Restore, &archive, &state, false)).expect("restore");
        assert!(out.contains("restored"), "{out}");
        assert_eq!(std::fs::read(state.join("tls/https.crt")).expect("r"), b"CERT");
        assert_eq!(
            crate::store::schema_version(&state.join(DATABASE)).expect("v"),
            crate::store::SCHEMA_VERSION
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    fn rewrite_manifest(archive: &Path, edit: impl Fn(&mut Manifest)) {
        let b = read_archive(archive).expect("reads");
        let mut m = b.manifest.clone();
        edit(&mut m);
        let contents: Vec<(String, Vec<u8>)> = b
            .files
            .iter()
            .map(|(f, span)| (f.name.clone(), b.read(*span).expect("read")))
            .collect();
        drop(b);
        let mut out = File::create(archive).expect("create");
        tar::append(
            &mut out,
            "manifest.json",
            &serde_json::to_vec(&m).expect("json"),
            0,
        )
        .expect("w");
        for (name, data) in &contents {
            tar::append(&mut out, name, data, 0).expect("w");
        }
        tar::finish(&mut out).expect("w");
    }

    #[test]
    fn a_backup_from_a_newer_schema_is_refused_and_an_older_one_migrated() {
        let root = temp("schema");
        let state = root.join("state");
        make_state(&state);
        let archive = root.join("b.tar");
        run(&admin(AdminAction::Backup, &archive, &state, false)).expect("backup");
        rewrite_manifest(&archive, |m| m.schema_version = crate::store::SCHEMA_VERSION + 1);
        let err = match read_archive(&archive) {
            Ok(_) => panic!("a newer schema must be refused"),
            Err(e) => e,
        };
        assert!(err.contains("newer than this bmcd"), "{err}");

        // An archive whose database is at an old schema is migrated forward.
        let old_db = root.join("old.sqlite3");
        {
            let mut conn = rusqlite::Connection::open(&old_db).expect("open");
            crate::store::migrations_for_tests::migrate_to(&mut conn, 3).expect("old");
        }
        let data = std::fs::read(&old_db).expect("read");
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            bmcd_version: "0.0.1".into(),
            schema_version: 3,
            created: 0,
            files: vec![ManifestFile {
                name: "state/bmcd.sqlite3".into(),
                sha256: sha256_hex(&data),
                size: data.len() as u64,
                path: None,
            }],
        };
        let mut out = File::create(&archive).expect("create");
        tar::append(
            &mut out,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
            0,
        )
        .expect("w");
        tar::append(&mut out, "state/bmcd.sqlite3", &data, 0).expect("w");
        tar::finish(&mut out).expect("w");
        drop(out);
        let fresh = root.join("fresh");
        let text = run(&admin(AdminAction::Restore, &archive, &fresh, false)).expect("restore");
        assert!(text.contains("migrated from schema version 3"), "{text}");
        assert_eq!(
            crate::store::schema_version(&fresh.join(DATABASE)).expect("v"),
            crate::store::SCHEMA_VERSION
        );

        // A damaged file is found.
        let mut bytes = std::fs::read(&archive).expect("read");
        let last = bytes.len() - 1024 - 600;
        bytes[last] ^= 0xff;
        std::fs::write(&archive, bytes).expect("write");
        assert!(read_archive(&archive).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
