//! The certificates behind CertificateService: the HTTPS server certificate
//! (replaced in place, kept in the state directory), the key of a pending
//! certificate signing request, and the CA certificates that sign client
//! certificates (mTLS, read-only, from the configuration).
//!
//! The aggregate BMC keeps them in files in `STATE_DIR/tls/`: `https.crt` and
//! `https.key` (the certificate installed with ReplaceCertificate; it wins over
//! `cert`/`key` of the configuration and over the self-signed
//! `server.crt`/`server.key`), and `csr.key` (the key of the last GenerateCSR,
//! until a certificate for it is installed). Keys are mode 0600.
//!
//! Each per-VM BMC endpoint is a BMC of its own with a certificate of its own:
//! self-signed when the endpoint first starts, kept with its key (and the key
//! of its pending GenerateCSR) in the state database, replaced the same way.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ClientAuth, TlsConfig};
use crate::error::{Message, RedfishError};
use crate::http::der::CertificateInfo;
use crate::http::tls::{self, CertificateSlot, TlsError};
use crate::http::x509::{self, CsrSubject};
use crate::registries::base;
use crate::store::Store;

/// The action whose parameters the errors below are about.
pub const REPLACE_CERTIFICATE: &str = "CertificateService.ReplaceCertificate";

/// A certificate as bmcd shows it: the chain and what its first member says.
#[derive(Debug, Clone)]
pub struct Shown {
    pub chain: Vec<CertificateDer<'static>>,
    pub info: CertificateInfo,
}

impl Shown {
    fn new(chain: Vec<CertificateDer<'static>>) -> Result<Shown, CertificateError> {
        let first = chain.first().ok_or(CertificateError::NotACertificate)?;
        let info = CertificateInfo::parse(first).map_err(|e| CertificateError::Malformed(e.to_string()))?;
        Ok(Shown { chain, info })
    }

    /// A certificate from the configuration or the state directory that
    /// rustls accepted but this reader cannot: served all the same, shown
    /// without its details.
    fn lenient(chain: Vec<CertificateDer<'static>>, source: &str) -> Shown {
        match Shown::new(chain.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(source, error = %e, "certificate details cannot be shown");
                Shown {
                    chain,
                    info: CertificateInfo::default(),
                }
            }
        }
    }

    /// The chain in PEM (never a key).
    pub fn pem(&self) -> String {
        self.chain.iter().map(|c| x509::pem("CERTIFICATE", c)).collect()
    }

    /// SHA-256 of the first certificate's DER.
    pub fn fingerprint(&self) -> Vec<u8> {
        let der: &[u8] = self.chain.first().map(|c| c.as_ref()).unwrap_or(&[]);
        ring::digest::digest(&ring::digest::SHA256, der).as_ref().to_vec()
    }
}

/// Why a certificate was not installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// No PEM `CERTIFICATE` block.
    NotACertificate,
    /// A certificate block that is not an X.509 certificate bmcd can read.
    Malformed(String),
    /// A private key block that cannot be read.
    BadKey,
    /// No key given, and no GenerateCSR key pending.
    NoKey,
    /// The key is not the certificate's.
    KeyMismatch,
    /// Not valid now.
    OutsideValidity,
    Internal(String),
}

impl std::fmt::Display for CertificateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateError::NotACertificate => f.write_str("no PEM certificate"),
            CertificateError::Malformed(e) => f.write_str(e),
            CertificateError::BadKey => f.write_str("the private key cannot be read"),
            CertificateError::NoKey => f.write_str("no private key"),
            CertificateError::KeyMismatch => f.write_str("the private key is not the certificate's"),
            CertificateError::OutsideValidity => f.write_str("the certificate is not valid now"),
            CertificateError::Internal(e) => f.write_str(e),
        }
    }
}

impl From<CertificateError> for RedfishError {
    fn from(e: CertificateError) -> RedfishError {
        let format = |why: &str| {
            RedfishError::bad_request(
                Message::new(
                    &base::ACTION_PARAMETER_VALUE_FORMAT_ERROR,
                    &["(certificate)", "CertificateString", REPLACE_CERTIFICATE],
                )
                .related("#/CertificateString")
                .resolution(why),
            )
        };
        let value = |why: &str| {
            RedfishError::bad_request(
                Message::new(
                    &base::ACTION_PARAMETER_VALUE_ERROR,
                    &["CertificateString", REPLACE_CERTIFICATE],
                )
                .related("#/CertificateString")
                .resolution(why),
            )
        };
        match e {
            CertificateError::NotACertificate => format(
                "Give an X.509 certificate in PEM form (-----BEGIN CERTIFICATE-----), followed by its \
                 private key unless the key was made by GenerateCSR.",
            ),
            CertificateError::Malformed(why) => format(&format!("The certificate cannot be read: {why}.")),
            CertificateError::BadKey => {
                format("Give the private key in PEM form: PKCS#8, SEC1 (EC) or PKCS#1 (RSA).")
            }
            CertificateError::NoKey => value(
                "Include the certificate's private key in CertificateString, or call GenerateCSR and \
                 install the certificate signed for that request.",
            ),
            CertificateError::KeyMismatch => value(
                "The private key does not belong to the certificate (for a certificate without a \
                 key: it was not signed for the last GenerateCSR request).",
            ),
            CertificateError::OutsideValidity => value(
                "The certificate is expired or not valid yet (see its ValidNotBefore and ValidNotAfter).",
            ),
            CertificateError::Internal(why) => {
                tracing::error!(error = %why, "certificate change failed");
                RedfishError::internal()
            }
        }
    }
}

/// The trusted CAs of client certificates, and whether clients must present one.
#[derive(Debug, Clone)]
pub struct ClientCas {
    pub mode: ClientAuth,
    pub certificates: Vec<Shown>,
}

/// Where a BMC's certificate, its key and the key of a pending signing
/// request are kept.
enum Keeping {
    /// The aggregate BMC: files in `STATE_DIR/tls/`.
    Files(PathBuf),
    /// A per-VM endpoint: its row in the state database.
    Store { store: Store, endpoint: String },
}

/// A certificate checked for installation: what to serve, what to show and
/// the key to keep.
struct Checked {
    certified: rustls::sign::CertifiedKey,
    shown: Shown,
    key_pem: String,
    from_csr: bool,
}

/// The certificates of one BMC: the aggregate BMC's, or a per-VM endpoint's.
pub struct Certificates {
    keeping: Keeping,
    slot: Arc<CertificateSlot>,
    https: RwLock<Arc<Shown>>,
    client: Option<ClientCas>,
    /// One change (replace, CSR) at a time.
    changes: tokio::sync::Mutex<()>,
}

fn installed_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("https.crt"), dir.join("https.key"))
}

fn pending_key_path(dir: &Path) -> PathBuf {
    dir.join("csr.key")
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

impl Certificates {
    /// Loads the HTTPS certificate (installed, configured, or self-signed,
    /// made on the first start) and the client CAs. Blocking.
    pub fn open(
        state_dir: &Path,
        configured: Option<(PathBuf, PathBuf)>,
        host_names: &[String],
        tls_config: &TlsConfig,
    ) -> Result<Certificates, TlsError> {
        let dir = state_dir.join("tls");
        let (crt, key) = installed_paths(&dir);
        let mut loaded = None;
        if crt.exists() && key.exists() {
            match tls::read_pair(&crt, &key).and_then(|(c, k)| {
                tls::certified_key(c.clone(), k)
                    .map(|ck| (c, ck))
                    .map_err(|e| TlsError(e.to_string()))
            }) {
                Ok(pair) => loaded = Some(pair),
                Err(e) => {
                    tracing::error!(error = %e, "the installed HTTPS certificate does not load; not using it")
                }
            }
        }
        let (chain, certified, source) = match loaded {
            Some((chain, certified)) => (chain, certified, crt),
            None => {
                let (crt, key) = match configured {
                    Some(pair) => pair,
                    None => tls::ensure_self_signed(state_dir, host_names)?,
                };
                let (chain, key) = tls::read_pair(&crt, &key)?;
                let certified = tls::certified_key(chain.clone(), key)
                    .map_err(|e| TlsError(format!("{}: {e}", crt.display())))?;
                (chain, certified, crt)
            }
        };
        let shown = Shown::lenient(chain, &source.display().to_string());
        let client = match &tls_config.client_ca {
            None => None,
            Some(path) => {
                let certs = read_pem_certificates(path).map_err(TlsError)?;
                let source = path.display().to_string();
                let certificates = certs
                    .into_iter()
                    .map(|c| Shown::lenient(vec![c], &source))
                    .collect();
                Some(ClientCas {
                    mode: tls_config.client_auth,
                    certificates,
                })
            }
        };
        Ok(Certificates {
            keeping: Keeping::Files(dir),
            slot: Arc::new(CertificateSlot::new(certified)),
            https: RwLock::new(Arc::new(shown)),
            client,
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The certificates of a per-VM endpoint: its own HTTPS certificate from
    /// the state database, self-signed for `common_name` and `host_names` and
    /// stored on its first start (or when the stored one no longer loads);
    /// the client CAs are the BMC's (`client`).
    pub async fn for_endpoint(
        store: Store,
        endpoint: &str,
        common_name: &str,
        host_names: &[String],
        client: Option<ClientCas>,
    ) -> Result<Certificates, TlsError> {
        let stored = store
            .endpoint_certificate(endpoint.to_owned())
            .await
            .map_err(|e| TlsError(e.to_string()))?;
        let source = format!("endpoint {endpoint}");
        let loaded = match stored {
            Some(row) => match blocking(move || parse_pair(&row.certificate, &row.private_key))
                .await
                .map_err(|e| TlsError(e.to_string()))
                .and_then(|r| r)
            {
                Ok(pair) => Some(pair),
                Err(e) => {
                    tracing::error!(endpoint, error = %e, "the endpoint's stored certificate does not load; making a new one");
                    None
                }
            },
            None => None,
        };
        let (chain, certified) = match loaded {
            Some(pair) => pair,
            None => {
                let (cn, names) = (common_name.to_owned(), host_names.to_vec());
                let (cert, key) = blocking(move || x509::self_signed_as(&cn, &names).map_err(TlsError))
                    .await
                    .map_err(|e| TlsError(e.to_string()))??;
                store
                    .set_endpoint_certificate(endpoint.to_owned(), cert.clone(), key.clone(), false)
                    .await
                    .map_err(|e| TlsError(e.to_string()))?;
                blocking(move || parse_pair(&cert, &key))
                    .await
                    .map_err(|e| TlsError(e.to_string()))??
            }
        };
        Ok(Certificates {
            keeping: Keeping::Store {
                store,
                endpoint: endpoint.to_owned(),
            },
            slot: Arc::new(CertificateSlot::new(certified)),
            https: RwLock::new(Arc::new(Shown::lenient(chain, &source))),
            client,
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The rustls configuration for every HTTPS listener: serves the current
    /// certificate, asks for client certificates when CAs are configured.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let cas: Vec<CertificateDer<'static>> = self
            .client
            .iter()
            .flat_map(|c| c.certificates.iter().flat_map(|s| s.chain.iter().cloned()))
            .collect();
        let client = self.client.as_ref().map(|c| (cas.as_slice(), c.mode));
        tls::server_config(Arc::clone(&self.slot), client)
    }

    /// The HTTPS certificate served now.
    pub fn https(&self) -> Arc<Shown> {
        Arc::clone(&self.https.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn client_cas(&self) -> Option<&ClientCas> {
        self.client.as_ref()
    }

    /// Installs a new HTTPS certificate: `pem` holds the chain and, unless it
    /// was requested with GenerateCSR, the private key. New handshakes present
    /// it at once; it is kept across restarts.
    pub async fn replace_https(&self, pem: String) -> Result<Arc<Shown>, CertificateError> {
        let _one = self.changes.lock().await;
        let pending = self.pending_key().await?;
        let checked = blocking(move || check(&pem, pending)).await??;
        self.keep(&checked).await?;
        let shown = Arc::new(checked.shown);
        self.slot.set(checked.certified);
        *self.https.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&shown);
        tracing::info!(
            subject = %shown.info.subject.display(),
            issuer = %shown.info.issuer.display(),
            "HTTPS certificate replaced"
        );
        Ok(shown)
    }

    /// Makes a new key and a signing request for it; the key waits (in the
    /// state directory or database) for the signed certificate. Returns the
    /// CSR (PEM).
    pub async fn generate_csr(&self, subject: CsrSubject) -> Result<String, CertificateError> {
        let _one = self.changes.lock().await;
        let (csr, key) = blocking(move || x509::csr(&subject).map_err(CertificateError::Internal)).await??;
        match &self.keeping {
            Keeping::Files(dir) => {
                let dir = dir.clone();
                blocking(move || {
                    make_dir(&dir)?;
                    tls::write_private(&pending_key_path(&dir), key.as_bytes(), 0o600)
                        .map_err(|e| CertificateError::Internal(e.to_string()))
                })
                .await??;
            }
            Keeping::Store { store, endpoint } => store
                .set_endpoint_csr_key(endpoint.clone(), key)
                .await
                .map_err(|e| CertificateError::Internal(e.to_string()))?,
        }
        Ok(csr)
    }

    /// The key of the pending signing request, if any (PEM).
    async fn pending_key(&self) -> Result<Option<Vec<u8>>, CertificateError> {
        match &self.keeping {
            Keeping::Files(dir) => {
                let pending = pending_key_path(dir);
                blocking(move || match std::fs::read(&pending) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(CertificateError::Internal(format!("{}: {e}", pending.display()))),
                })
                .await?
            }
            Keeping::Store { store, endpoint } => Ok(store
                .endpoint_certificate(endpoint.clone())
                .await
                .map_err(|e| CertificateError::Internal(e.to_string()))?
                .and_then(|row| row.csr_key)
                .map(String::into_bytes)),
        }
    }

    /// Keeps a checked certificate and its key where this BMC keeps them.
    async fn keep(&self, checked: &Checked) -> Result<(), CertificateError> {
        let (cert_pem, key_pem, from_csr) = (checked.shown.pem(), checked.key_pem.clone(), checked.from_csr);
        match &self.keeping {
            Keeping::Files(dir) => {
                let dir = dir.clone();
                blocking(move || write_files(&dir, &cert_pem, &key_pem, from_csr)).await?
            }
            Keeping::Store { store, endpoint } => store
                .set_endpoint_certificate(endpoint.clone(), cert_pem, key_pem, from_csr)
                .await
                .map_err(|e| CertificateError::Internal(e.to_string())),
        }
    }
}

/// Runs blocking work (files, key generation, signatures) off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, CertificateError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CertificateError::Internal(e.to_string()))
}

/// A PEM certificate chain and key, ready to serve. Blocking (key loading).
fn parse_pair(
    cert: &str,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, rustls::sign::CertifiedKey), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError(e.to_string()))?;
    let certified = tls::certified_key(chain.clone(), key).map_err(|e| TlsError(e.to_string()))?;
    Ok((chain, certified))
}

fn make_dir(dir: &Path) -> Result<(), CertificateError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CertificateError::Internal(format!("{}: {e}", dir.display())))
}

/// Checks a new HTTPS certificate: `pending` is the key of the last
/// GenerateCSR, for a `pem` without a key. Blocking.
fn check(pem: &str, pending: Option<Vec<u8>>) -> Result<Checked, CertificateError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| CertificateError::NotACertificate)?;
    let shown = Shown::new(chain)?;
    let now = crate::time::now_unix();
    // A few minutes of clock difference with the CA do not make a new
    // certificate "not yet valid".
    if now + 300 < shown.info.not_before || now > shown.info.not_after {
        return Err(CertificateError::OutsideValidity);
    }
    let (key, from_csr) = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(k) => (k, false),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => match pending {
            Some(bytes) => (
                PrivateKeyDer::from_pem_slice(&bytes)
                    .map_err(|e| CertificateError::Internal(e.to_string()))?,
                true,
            ),
            None => return Err(CertificateError::NoKey),
        },
        Err(_) => return Err(CertificateError::BadKey),
    };
    let key_pem = match &key {
        PrivateKeyDer::Pkcs8(k) => x509::pem("PRIVATE KEY", k.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(k) => x509::pem("EC PRIVATE KEY", k.secret_sec1_der()),
        PrivateKeyDer::Pkcs1(k) => x509::pem("RSA PRIVATE KEY", k.secret_pkcs1_der()),
        _ => return Err(CertificateError::BadKey),
    };
    let certified = tls::certified_key(shown.chain.clone(), key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => CertificateError::KeyMismatch,
        rustls::Error::InvalidCertificate(_) => {
            CertificateError::Malformed("not an X.509 certificate".into())
        }
        _ => CertificateError::BadKey,
    })?;
    Ok(Checked {
        certified,
        shown,
        key_pem,
        from_csr,
    })
}

/// Writes an installed certificate and its key to the state directory.
/// Blocking.
fn write_files(dir: &Path, cert_pem: &str, key_pem: &str, from_csr: bool) -> Result<(), CertificateError> {
    make_dir(dir)?;
    let (crt_path, key_path) = installed_paths(dir);
    // The key first: a crash between the two writes leaves a pair that does
    // not load, and bmcd then starts with the previous certificate source.
    tls::write_private(&key_path, key_pem.as_bytes(), 0o600)
        .map_err(|e| CertificateError::Internal(e.to_string()))?;
    tls::write_private(&crt_path, cert_pem.as_bytes(), 0o644)
        .map_err(|e| CertificateError::Internal(e.to_string()))?;
    if from_csr {
        let _ = std::fs::remove_file(pending_key_path(dir));
    }
    Ok(())
}

/// The account name a verified client certificate stands for: its subject's
/// common name.
pub fn client_user_name(cert: &CertificateDer<'_>) -> Option<String> {
    CertificateInfo::parse(cert)
        .ok()?
        .subject
        .get("CN")
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bmcd-certs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_replaced_certificate_is_served_and_kept() {
        let state = dir("replace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let certs = Certificates::open(&state, None, &[], &TlsConfig::default()).expect("opens");
        let first = certs.https().fingerprint();
        let (cert, key) = x509::self_signed(&["new.example".into()]).expect("made");
        let shown = rt
            .block_on(certs.replace_https(format!("{cert}{key}")))
            .expect("replaced");
        assert_ne!(shown.fingerprint(), first);
        assert_eq!(certs.https().fingerprint(), shown.fingerprint());
        assert!(!certs.https().pem().contains("PRIVATE KEY"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("tls/https.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        let again = Certificates::open(&state, None, &[], &TlsConfig::default()).expect("reopens");
        assert_eq!(again.https().fingerprint(), shown.fingerprint());
        let _ = std::fs::remove_dir_all(&state);
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        let state = dir("bad");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let certs = Certificates::open(&state, None, &[], &TlsConfig::default()).expect("opens");
        let (cert, _) = x509::self_signed(&[]).expect("one");
        let (_, other_key) = x509::self_signed(&[]).expect("two");
        let replace = |pem: String| rt.block_on(certs.replace_https(pem)).map(|_| ());
        assert_eq!(replace("garbage".into()), Err(CertificateError::NotACertificate));
        assert!(matches!(
            replace("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
            Err(CertificateError::Malformed(_))
        ));
        assert_eq!(replace(cert.clone()), Err(CertificateError::NoKey));
        assert_eq!(
            replace(format!("{cert}{other_key}")),
            Err(CertificateError::KeyMismatch)
        );
        let e = RedfishError::from(CertificateError::KeyMismatch);
        assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
        let _ = std::fs::remove_dir_all(&state);
    }
}
