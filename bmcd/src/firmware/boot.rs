//! The two firmware banks and the boot loader's choice between them, behind
//! [`BootControl`]. [`FileBootControl`] keeps the banks in files or block
//! devices (`partlabel:NAME` finds a GPT partition by name) and the choice in a
//! GRUB environment block, the file `board/qemu-x86_64/grub.cfg` reads:
//!
//! - `redfin_bank=a|b`: the good bank, booted by default;
//! - `redfin_try=a|b`: boot this bank once. GRUB clears it (`save_env`) before
//!   booting it, so if that bank does not come up healthy, the next boot is the
//!   good bank again: a rollback. A healthy bmcd on the tried bank makes it the
//!   good one ([`BootControl::mark_good`]).
//!
//! Everything here is blocking I/O: call it from `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{FileExt as _, FileTypeExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::package::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bank {
    A,
    B,
}

impl Bank {
    pub const BOTH: [Bank; 2] = [Bank::A, Bank::B];

    pub fn letter(self) -> &'static str {
        match self {
            Bank::A => "a",
            Bank::B => "b",
        }
    }

    pub fn parse(s: &str) -> Option<Bank> {
        match s {
            "a" | "A" => Some(Bank::A),
            "b" | "B" => Some(Bank::B),
            _ => None,
        }
    }

    pub fn other(self) -> Bank {
        match self {
            Bank::A => Bank::B,
            Bank::B => Bank::A,
        }
    }

    /// Its FirmwareInventory member id.
    pub fn inventory_id(self) -> &'static str {
        match self {
            Bank::A => "BMC_BankA",
            Bank::B => "BMC_BankB",
        }
    }
}

/// What the boot loader will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEnv {
    pub good: Bank,
    /// Booted once at the next start, then forgotten.
    pub try_once: Option<Bank>,
}

/// The banks and the boot loader.
pub trait BootControl: Send + Sync {
    /// The bank this system booted from.
    fn booted(&self) -> Bank;
    fn read_env(&self) -> io::Result<BootEnv>;
    /// Boot `bank` once at the next start.
    fn set_try_once(&self, bank: Bank) -> io::Result<()>;
    /// Boot `bank` from now on (and forget any try).
    fn mark_good(&self, bank: Bank) -> io::Result<()>;
    /// Copies `span` of `src` onto `bank`, which must not be the booted one,
    /// and flushes it to stable storage. `progress` gets the bytes written.
    fn write_bank(&self, bank: Bank, src: &File, span: Span, progress: &dyn Fn(u64)) -> io::Result<()>;
}

const ENV_SIZE: usize = 1024;
const ENV_HEADER: &str = "# GRUB Environment Block\n";
const GOOD: &str = "redfin_bank";
const TRY: &str = "redfin_try";

/// Parses a GRUB environment block.
pub fn parse_grubenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A GRUB environment block of exactly 1024 bytes.
pub fn render_grubenv(vars: &BTreeMap<String, String>) -> io::Result<Vec<u8>> {
    let mut out = String::from(ENV_HEADER);
    for (k, v) in vars {
        if k.contains(['=', '\n', '\\', '#']) || v.contains(['\n', '\\']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unsafe GRUB variable",
            ));
        }
        out.push_str(&format!("{k}={v}\n"));
    }
    if out.len() > ENV_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "GRUB environment too large",
        ));
    }
    let mut bytes = out.into_bytes();
    bytes.resize(ENV_SIZE, b'#');
    Ok(bytes)
}

/// Finds the block device of the GPT partition named `label`.
fn partition_by_name(label: &str) -> io::Result<PathBuf> {
    for entry in std::fs::read_dir("/sys/class/block")? {
        let entry = entry?;
        let Ok(uevent) = std::fs::read_to_string(entry.path().join("uevent")) else {
            continue;
        };
        let mut name = None;
        let mut dev = None;
        for line in uevent.lines() {
            if let Some(v) = line.strip_prefix("PARTNAME=") {
                name = Some(v.to_owned());
            }
            if let Some(v) = line.strip_prefix("DEVNAME=") {
                dev = Some(v.to_owned());
            }
        }
        if let (Some(n), Some(d)) = (name, dev) {
            if n == label {
                return Ok(Path::new("/dev").join(d));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no partition named '{label}'"),
    ))
}

/// Banks in files or block devices, the choice in a GRUB environment file.
pub struct FileBootControl {
    bank_a: String,
    bank_b: String,
    env: PathBuf,
    booted: Bank,
}

impl FileBootControl {
    pub fn new(bank_a: String, bank_b: String, env: PathBuf, booted: Bank) -> FileBootControl {
        FileBootControl {
            bank_a,
            bank_b,
            env,
            booted,
        }
    }

    fn path(&self, bank: Bank) -> io::Result<PathBuf> {
        let spec = match bank {
            Bank::A => &self.bank_a,
            Bank::B => &self.bank_b,
        };
        match spec.strip_prefix("partlabel:") {
            Some(label) => partition_by_name(label),
            None => Ok(PathBuf::from(spec)),
        }
    }

    fn vars(&self) -> io::Result<BTreeMap<String, String>> {
        match std::fs::read(&self.env) {
            Ok(b) => Ok(parse_grubenv(&String::from_utf8_lossy(&b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Rewrites the block in place when it exists (GRUB's `save_env` writes to
    /// the file's blocks, so they stay where they are), else creates it.
    fn write_vars(&self, vars: &BTreeMap<String, String>) -> io::Result<()> {
        let bytes = render_grubenv(vars)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.env)?;
        f.write_all_at(&bytes, 0)?;
        if f.seek(SeekFrom::End(0))? != ENV_SIZE as u64 {
            f.set_len(ENV_SIZE as u64)?;
        }
        f.flush()?;
        f.sync_all()
    }
}

impl BootControl for FileBootControl {
    fn booted(&self) -> Bank {
        self.booted
    }

    fn read_env(&self) -> io::Result<BootEnv> {
        let vars = self.vars()?;
        Ok(BootEnv {
            good: vars.get(GOOD).and_then(|v| Bank::parse(v)).unwrap_or(Bank::A),
            try_once: vars.get(TRY).and_then(|v| Bank::parse(v)),
        })
    }

    fn set_try_once(&self, bank: Bank) -> io::Result<()> {
        let mut vars = self.vars()?;
        vars.entry(GOOD.to_owned())
            .or_insert_with(|| self.booted.letter().to_owned());
        vars.insert(TRY.to_owned(), bank.letter().to_owned());
        self.write_vars(&vars)
    }

    fn mark_good(&self, bank: Bank) -> io::Result<()> {
        let mut vars = self.vars()?;
        vars.insert(GOOD.to_owned(), bank.letter().to_owned());
        vars.insert(TRY.to_owned(), String::new());
        self.write_vars(&vars)
    }

    fn write_bank(&self, bank: Bank, src: &File, span: Span, progress: &dyn Fn(u64)) -> io::Result<()> {
        let target = self.path(bank)?;
        let active = self.path(self.booted)?;
        if bank == self.booted
            || target == active
            || std::fs::canonicalize(&target)
                .ok()
                .is_some_and(|t| std::fs::canonicalize(&active).ok() == Some(t))
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing to write the bank the system runs from",
            ));
        }
        let block = std::fs::metadata(&target)
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        let mut out = if block {
            OpenOptions::new().write(true).open(&target)?
        } else {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&target)?
        };
        if block {
            let capacity = out.seek(SeekFrom::End(0))?;
            if span.len > capacity {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the image ({} bytes) is larger than the bank ({capacity} bytes)",
                        span.len
                    ),
                ));
            }
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < span.len {
            let n = buf.len().min((span.len - done) as usize);
            src.read_exact_at(&mut buf[..n], span.offset + done)?;
            out.write_all_at(&buf[..n], done)?;
            done += n as u64;
            progress(done);
        }
        out.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grubenv_round_trip_is_1024_bytes() {
        let mut vars = BTreeMap::new();
        vars.insert(GOOD.to_owned(), "b".to_owned());
        vars.insert(TRY.to_owned(), String::new());
        let bytes = render_grubenv(&vars).expect("render");
        assert_eq!(bytes.len(), ENV_SIZE);
        assert!(bytes.starts_with(ENV_HEADER.as_bytes()));
        let back = parse_grubenv(&String::from_utf8_lossy(&bytes));
        assert_eq!(back, vars);
    }

    #[test]
    fn the_booted_bank_is_never_written() {
        let dir = std::env::temp_dir().join(format!("bmcd-banks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = dir.join("a.img");
        let b = dir.join("b.img");
        std::fs::write(&a, b"AAAA").expect("a");
        std::fs::write(&b, b"BBBB").expect("b");
        let src_path = dir.join("src");
        std::fs::write(&src_path, b"NEWNEW").expect("src");
        let src = File::open(&src_path).expect("open");
        let c = FileBootControl::new(
            a.display().to_string(),
            b.display().to_string(),
            dir.join("grubenv"),
            Bank::A,
        );
        let span = Span { offset: 0, len: 6 };
        assert!(c.write_bank(Bank::A, &src, span, &|_| {}).is_err());
        assert_eq!(std::fs::read(&a).expect("a"), b"AAAA");
        c.write_bank(Bank::B, &src, span, &|_| {}).expect("write b");
        assert_eq!(std::fs::read(&b).expect("b"), b"NEWNEW");
        c.set_try_once(Bank::B).expect("try");
        assert_eq!(
            c.read_env().expect("env"),
            BootEnv {
                good: Bank::A,
                try_once: Some(Bank::B)
            }
        );
        c.mark_good(Bank::B).expect("good");
        assert_eq!(
            c.read_env().expect("env"),
            BootEnv {
                good: Bank::B,
                try_once: None
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
