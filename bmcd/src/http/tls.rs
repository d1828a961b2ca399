//! TLS: the server certificate (own, or self-signed on first start and kept in
//! the state directory), a rustls configuration limited to TLS 1.2 and 1.3
//! with rustls's default suites (AEAD only, forward secrecy only), the slot
//! that lets CertificateService replace the certificate without a restart,
//! and the optional verification of client certificates.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use crate::config::ClientAuth;

#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS setup: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

/// Where the generated certificate lives in the state directory.
pub fn generated_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("tls");
    (dir.join("server.crt"), dir.join("server.key"))
}

/// Writes a file whole (a temporary file renamed over it) with `mode`. Blocking.
pub fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| TlsError(format!("{}: {e}", tmp.display())))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| TlsError(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError(format!("{}: {e}", path.display())))
}

/// Makes a self-signed certificate for this host unless one is already stored.
/// Returns the certificate and key paths. Blocking.
pub fn ensure_self_signed(state_dir: &Path, host_names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert_path, key_path) = generated_paths(state_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let dir = state_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| TlsError(format!("{}: {e}", dir.display())))?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in host_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let (cert, key) = super::x509::self_signed(&names).map_err(TlsError)?;
    write_private(&key_path, key.as_bytes(), 0o600)?;
    write_private(&cert_path, cert.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Reads a PEM certificate chain and key from files. Blocking.
pub fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError(format!("{}: {e}", key.display())))?;
    Ok((certs, key))
}

/// The crypto bmcd's TLS uses: ring, with rustls's default (AEAD-only) suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, ready to serve, after checking
/// that the key is the one the first certificate certifies.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, rustls::Error> {
    let signing = provider().key_provider.load_private_key(key)?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map(|()| certified)
}

/// The server certificate every new handshake presents. Replacing it affects
/// only handshakes that start afterwards.
#[derive(Debug)]
pub struct CertificateSlot(RwLock<Arc<CertifiedKey>>);

impl CertificateSlot {
    pub fn new(key: CertifiedKey) -> CertificateSlot {
        CertificateSlot(RwLock::new(Arc::new(key)))
    }

    pub fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The rustls server configuration: TLS 1.3 and 1.2 only, the certificate
/// from `slot`, and client certificates signed by `client_cas` when given
/// (optional or required). Blocking only in that it parses the CA certificates.
pub fn server_config(
    slot: Arc<CertificateSlot>,
    client_cas: Option<(&[CertificateDer<'static>], ClientAuth)>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match client_cas {
        None => builder.with_no_client_auth(),
        Some((cas, mode)) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| TlsError(format!("client CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match mode {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError(e.to_string()))?)
        }
    };
    let mut config = builder.with_cert_resolver(slot);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_and_loads() {
        let dir = std::env::temp_dir().join(format!("bmcd-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (c, k) = ensure_self_signed(&dir, &["bmc.example".into()]).expect("generates");
        let first = std::fs::read(&c).expect("cert");
        let (c2, _) = ensure_self_signed(&dir, &[]).expect("reuses");
        assert_eq!(first, std::fs::read(&c2).expect("cert"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&k).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "key must not be readable by others");
        let (chain, key) = read_pair(&c, &k).expect("loads");
        let slot = Arc::new(CertificateSlot::new(certified_key(chain, key).expect("matches")));
        server_config(slot, None).expect("config");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_are_a_clear_error() {
        let e = read_pair(Path::new("/nonexistent.crt"), Path::new("/nonexistent.key"));
        assert!(e.is_err());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        use rustls::pki_types::pem::PemObject;
        let (cert, _) = crate::http::x509::self_signed(&[]).expect("one");
        let (_, other_key) = crate::http::x509::self_signed(&[]).expect("two");
        let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(other_key.as_bytes()).expect("key");
        assert!(certified_key(chain, key).is_err());
    }
}
