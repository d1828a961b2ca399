//! Firmware update of the BMC itself: two banks (A and B), signed update
//! packages ([`package`]), the boot loader's try-once choice ([`boot`]).
//!
//! An update verifies the package (signature, then every payload's SHA-256),
//! writes `rootfs.img` to the bank the system does not run from, and asks the
//! boot loader to boot that bank once. When bmcd comes up healthy on the tried
//! bank it makes it the good one; if it does not, the next boot returns to the
//! old bank. The running bank is never written.

pub mod boot;
pub mod inventory;
pub mod package;

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::FirmwareConfig;
use crate::error::{Message, RedfishError};
use crate::outbound::{self, FetchRequest};
use crate::registries::base;
use crate::store::TaskRecord;
use crate::tasks::{TaskState, Tasks};
use boot::{Bank, BootControl, BootEnv, FileBootControl};
use package::{PackageError, Span};

/// A file that is removed when dropped (an upload in the work directory).
#[derive(Debug)]
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What bmcd knows of each bank beyond what the boot loader says.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    a: Option<BankRecord>,
    b: Option<BankRecord>,
    /// The bank written last and not yet proven healthy.
    pending: Option<Bank>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankRecord {
    version: String,
    state: BankState,
}

/// The health of a bank's firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankState {
    /// Booted and healthy (or shipped that way).
    Good,
    /// Written, to be tried at the next start.
    Staged,
    /// Tried and not healthy: the boot loader went back to the other bank.
    Failed,
    /// Being written now.
    Updating,
}

impl Record {
    fn get(&self, bank: Bank) -> Option<&BankRecord> {
        match bank {
            Bank::A => self.a.as_ref(),
            Bank::B => self.b.as_ref(),
        }
    }

    fn set(&mut self, bank: Bank, r: BankRecord) {
        match bank {
            Bank::A => self.a = Some(r),
            Bank::B => self.b = Some(r),
        }
    }
}

/// One bank as FirmwareInventory shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankView {
    pub bank: Bank,
    pub version: String,
    /// The system runs from it.
    pub active: bool,
    pub state: BankState,
    /// The boot loader boots it at the next start (once, or for good).
    pub next_boot: bool,
}

/// Where a package comes from.
pub enum Source {
    /// An upload (written to the work directory); the package is `span` of it.
    Upload {
        file: TempFile,
        span: Span,
    },
    Download(FetchRequest),
}

pub struct FirmwareService {
    control: Option<Arc<dyn BootControl>>,
    keys: Vec<[u8; 32]>,
    compatible: String,
    version: String,
    max_package_bytes: u64,
    work_dir: PathBuf,
    record_path: PathBuf,
    record: Mutex<Record>,
    tasks: Arc<Tasks>,
    busy: AtomicBool,
    /// The bank booted and the boot loader's environment at start-up.
    at_start: Option<(Bank, BootEnv)>,
}

fn booted_from_cmdline(path: &Path) -> Option<Bank> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("redfin.bank="))
        .and_then(Bank::parse)
}

fn failure(e: &PackageError) -> Message {
    let def = match e {
        PackageError::Io(_) => &base::INTERNAL_ERROR,
        _ => &base::OPERATION_FAILED,
    };
    Message::new(def, &[]).resolution(format!(
        "{e} Nothing was written to the firmware banks; use a package signed by a trusted key for this BMC."
    ))
}

impl FirmwareService {
    /// Builds the service; without a `[firmware]` configuration it is disabled.
    /// Reads its record (blocking: call at start-up from a blocking context).
    pub fn open(config: Option<&FirmwareConfig>, state_dir: &Path, tasks: Arc<Tasks>) -> FirmwareService {
        let work_dir = state_dir.join("firmware");
        let record_path = state_dir.join("firmware.json");
        let record = std::fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let (control, keys, compatible, version, max) = match config {
            None => (None, Vec::new(), String::new(), crate::VERSION.to_owned(), 0),
            Some(c) => {
                let booted = c
                    .booted_bank
                    .as_deref()
                    .and_then(Bank::parse)
                    .or_else(|| booted_from_cmdline(&c.cmdline))
                    .unwrap_or(Bank::A);
                let control: Arc<dyn BootControl> = Arc::new(FileBootControl::new(
                    c.bank_a.clone(),
                    c.bank_b.clone(),
                    c.boot_env.clone(),
                    booted,
                ));
                (
                    Some(control),
                    c.trusted_keys
                        .iter()
                        .filter_map(|k| package::parse_public_key(k))
                        .collect(),
                    c.compatible.clone(),
                    c.version.clone().unwrap_or_else(|| crate::VERSION.to_owned()),
                    c.max_package_bytes,
                )
            }
        };
        let mut service = FirmwareService {
            control,
            keys,
            compatible,
            version,
            max_package_bytes: max,
            work_dir,
            record_path,
            record: Mutex::new(record),
            tasks,
            busy: AtomicBool::new(false),
            at_start: None,
        };
        service.at_start = service.settle();
        service
    }

    pub fn enabled(&self) -> bool {
        self.control.is_some()
    }

    /// The running firmware's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn max_package_bytes(&self) -> u64 {
        self.max_package_bytes
    }

    /// Where uploads and downloads are kept while they are checked.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub fn booted(&self) -> Option<Bank> {
        self.control.as_ref().map(|c| c.booted())
    }

    fn save(&self, record: &Record) {
        let write = || -> std::io::Result<()> {
            let tmp = self.record_path.with_extension("json.tmp");
            let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
            let f = File::create(&tmp)?;
            std::io::Write::write_all(&mut &f, &bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.record_path)
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, path = %self.record_path.display(), "could not save the firmware record");
        }
    }

    fn update_record(&self, f: impl FnOnce(&mut Record)) {
        let snapshot = {
            let mut r = self.record.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut r);
            r.clone()
        };
        self.save(&snapshot);
    }

    /// Start-up bookkeeping (blocking): the running bank holds this version; a
    /// pending bank that is not running and no longer tried was rolled back.
    fn settle(&self) -> Option<(Bank, BootEnv)> {
        let control = self.control.as_ref()?;
        let booted = control.booted();
        let env = match control.read_env() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the boot loader environment");
                return None;
            }
        };
        let version = self.version.clone();
        self.update_record(|r| {
            let state = if env.good == booted {
                BankState::Good
            } else {
                BankState::Staged
            };
            r.set(
                booted,
                BankRecord {
                    version: version.clone(),
                    state,
                },
            );
            let other = booted.other();
            if r.get(other).is_none() {
                // A fresh image carries the same build in both banks.
                r.set(
                    other,
                    BankRecord {
                        version: version.clone(),
                        state: BankState::Good,
                    },
                );
            }
            if r.pending == Some(other) && env.try_once != Some(other) {
                tracing::warn!(
                    bank = other.letter(),
                    "firmware bank was tried and did not become healthy: rolled back"
                );
                if let Some(rec) = match other {
                    Bank::A => r.a.as_mut(),
                    Bank::B => r.b.as_mut(),
                } {
                    rec.state = BankState::Failed;
                }
                r.pending = None;
            }
        });
        Some((booted, env))
    }

    /// When this boot is a trial of a new bank, makes that bank the good one
    /// once bmcd answers `GET /redfish/v1` with 200 on `https`.
    pub fn start(self: &Arc<Self>, https: SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
        let (booted, env) = self.at_start?;
        if env.good == booted {
            return None;
        }
        let this = Arc::clone(self);
        Some(tokio::spawn(async move {
            tracing::info!(
                bank = booted.letter(),
                "running a trial boot of this firmware bank; checking health"
            );
            for _ in 0..120 {
                if health_check(https).await {
                    let mark = Arc::clone(&this);
                    let done = tokio::task::spawn_blocking(move || mark.mark_good(booted)).await;
                    match done {
                        Ok(Ok(())) => {
                            tracing::info!(bank = booted.letter(), "firmware bank is healthy: marked good")
                        }
                        Ok(Err(e)) => tracing::error!(error = %e, "could not mark the firmware bank good"),
                        Err(e) => tracing::error!(error = %e, "could not mark the firmware bank good"),
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tracing::error!(
                bank = booted.letter(),
                "firmware bank never became healthy; not marked good"
            );
        }))
    }

    fn mark_good(&self, bank: Bank) -> std::io::Result<()> {
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| std::io::Error::other("firmware update is not configured"))?;
        control.mark_good(bank)?;
        let version = self.version.clone();
        self.update_record(|r| {
            r.set(
                bank,
                BankRecord {
                    version,
                    state: BankState::Good,
                },
            );
            if r.pending == Some(bank) {
                r.pending = None;
            }
        });
        Ok(())
    }

    /// Both banks (blocking: reads the boot loader environment).
    pub fn banks(&self) -> Vec<BankView> {
        let Some(control) = &self.control else {
            return Vec::new();
        };
        let booted = control.booted();
        let env = control.read_env().ok();
        let record = self.record.lock().unwrap_or_else(PoisonError::into_inner).clone();
        Bank::BOTH
            .iter()
            .map(|&bank| {
                let rec = record.get(bank);
                let next = match env {
                    Some(e) => e.try_once.unwrap_or(e.good) == bank,
                    None => bank == booted,
                };
                BankView {
                    bank,
                    version: rec
                        .map(|r| r.version.clone())
                        .unwrap_or_else(|| self.version.clone()),
                    active: bank == booted,
                    state: rec.map(|r| r.state).unwrap_or(BankState::Good),
                    next_boot: next,
                }
            })
            .collect()
    }

    /// Starts an update as a task. Refused (503) while another one runs.
    pub async fn update(
        self: &Arc<Self>,
        source: Source,
        target: Option<Bank>,
    ) -> Result<TaskRecord, RedfishError> {
        let Some(control) = self.control.clone() else {
            return Err(not_configured());
        };
        let bank = control.booted().other();
        if target.is_some_and(|t| t != bank) {
            return Err(RedfishError::bad_request(
                Message::new(&base::PROPERTY_VALUE_CONFLICT, &["Targets", "the running bank"]).resolution(
                    format!(
                        "The running bank cannot be updated; target {} (or omit Targets).",
                        bank.inventory_id()
                    ),
                ),
            ));
        }
        if self.busy.swap(true, Ordering::SeqCst) {
            return Err(RedfishError::unavailable(30));
        }
        let task = match self.tasks.create("Firmware update", &inventory_uri(bank)).await {
            Ok(t) => t,
            Err(e) => {
                self.busy.store(false, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let this = Arc::clone(self);
        let id = task.id;
        tokio::spawn(async move {
            let outcome = this.run(id, control, bank, source).await;
            this.busy.store(false, Ordering::SeqCst);
            let (state, message) = match outcome {
                Ok(version) => (
                    TaskState::Completed,
                    Message::new(&base::SUCCESS, &[]).resolution(format!(
                        "Firmware {version} was written to bank {} and is booted once at the next restart of the BMC; it becomes the good bank when bmcd starts healthy on it, otherwise the BMC returns to bank {}.",
                        bank.letter().to_uppercase(),
                        bank.other().letter().to_uppercase()
                    )),
                ),
                Err(m) => (TaskState::Exception, m),
            };
            if let Err(e) = this.tasks.finish(id, state, message).await {
                tracing::error!(task = id, error = %e, "could not record the end of a task");
            }
        });
        Ok(task)
    }

    async fn run(
        self: &Arc<Self>,
        task: i64,
        control: Arc<dyn BootControl>,
        bank: Bank,
        source: Source,
    ) -> Result<String, Message> {
        let (file, span, _download) = match source {
            Source::Upload { file, span } => (file, span, None),
            Source::Download(req) => {
                let tasks = Arc::clone(&self.tasks);
                let progress = move |got: u64, total: Option<u64>| {
                    if let Some(total) = total.filter(|t| *t > 0) {
                        tasks.progress(task, ((got * 30) / total) as u8);
                    }
                };
                let fetched = outbound::fetch(&req, &self.work_dir.join("download"), &progress)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "firmware package download failed");
                        Message::new(&base::COULD_NOT_ESTABLISH_CONNECTION, &["ImageURI"])
                            .resolution(e.to_string())
                    })?;
                let span = Span {
                    offset: 0,
                    len: fetched.size,
                };
                (TempFile(fetched.path), span, Some(()))
            }
        };
        let this = Arc::clone(self);
        let tasks = Arc::clone(&self.tasks);
        let joined = tokio::task::spawn_blocking(move || {
            let f = File::open(&file.0).map_err(|e| failure(&PackageError::Io(e.to_string())))?;
            let verified = package::verify(&f, span, &this.keys, &this.compatible, &|done, total| {
                if let Some(share) = (done * 30).checked_div(total) {
                    tasks.progress(task, (30 + share) as u8);
                }
            })
            .map_err(|e| {
                tracing::warn!(error = %e, "firmware package refused");
                failure(&e)
            })?;
            let version = verified.manifest.version.clone();
            tracing::info!(version = %version, bank = bank.letter(), "firmware package verified; writing the bank");
            this.update_record(|r| {
                r.set(bank, BankRecord { version: version.clone(), state: BankState::Updating });
                r.pending = None;
            });
            let total = verified.rootfs.len.max(1);
            let written = control.write_bank(bank, &f, verified.rootfs, &|done| {
                tasks.progress(task, (60 + done * 35 / total) as u8);
            });
            if let Err(e) = written {
                this.update_record(|r| r.set(bank, BankRecord { version: version.clone(), state: BankState::Failed }));
                return Err(Message::new(&base::OPERATION_FAILED, &[])
                    .resolution(format!("Writing bank {} failed: {e}", bank.letter().to_uppercase())));
            }
            control.set_try_once(bank).map_err(|e| {
                Message::new(&base::OPERATION_FAILED, &[])
                    .resolution(format!("Setting the boot loader to try bank {} failed: {e}", bank.letter()))
            })?;
            this.update_record(|r| {
                r.set(bank, BankRecord { version: version.clone(), state: BankState::Staged });
                r.pending = Some(bank);
            });
            drop(file);
            tracing::info!(version = %version, bank = bank.letter(), "firmware written; the bank is tried at the next boot");
            Ok(version)
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => {
                Err(Message::new(&base::INTERNAL_ERROR, &[]).resolution(format!("The update stopped: {e}")))
            }
        }
    }
}

pub fn inventory_uri(bank: Bank) -> String {
    format!(
        "/redfish/v1/UpdateService/FirmwareInventory/{}",
        bank.inventory_id()
    )
}

pub fn not_configured() -> RedfishError {
    RedfishError::new(
        hyper::StatusCode::SERVICE_UNAVAILABLE,
        Message::new(&base::SERVICE_TEMPORARILY_UNAVAILABLE, &["0"]).resolution(
            "Firmware update is not configured on this BMC ([firmware] in bmcd's configuration).",
        ),
    )
}

/// `GET /redfish/v1` on our own listener answers 200.
async fn health_check(https: SocketAddr) -> bool {
    let addr = if https.ip().is_unspecified() {
        SocketAddr::new(
            match https {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            },
            https.port(),
        )
    } else {
        https
    };
    let probe = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let connector = outbound::insecure_tls_connector().ok()?;
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let tls = connector.connect(name, tcp).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::builder()
            .uri("/redfish/v1")
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        Some(resp.status() == hyper::StatusCode::OK)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), probe).await,
        Ok(Some(true))
    )
}
