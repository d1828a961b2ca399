//! TLS: the server certificate (own, or self-signed on first start and kept in
//! the state directory) and a rustls configuration limited to TLS 1.2 and 1.3.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

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

fn write_private(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
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

/// Builds the rustls server configuration from PEM files. Blocking.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no certificate", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(e.to_string()))?;
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
        server_config(&c, &k).expect("loads");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_files_are_a_clear_error() {
        let e = server_config(Path::new("/nonexistent.crt"), Path::new("/nonexistent.key"));
        assert!(e.is_err());
    }
}
