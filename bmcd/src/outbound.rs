//! Outbound HTTP(S): virtual-media image downloads into a content-addressed
//! cache, and event deliveries. Both refuse link-local and other unroutable
//! addresses (checked before and after name resolution).
//!
//! `VirtualMedia.InsertMedia` hands the BMC a URL chosen by a (possibly less trusted) client, so
//! the download is defensive:
//!
//! - only `http://` and `https://` URLs, without credentials in the URL;
//! - every resolved address, on every redirect hop, is checked: link-local (cloud metadata
//!   services live there), multicast, unspecified and broadcast addresses are refused, and the
//!   connection goes to an address that was checked (no second resolution);
//! - at most [`MAX_REDIRECTS`] redirects, and credentials only go to the original origin;
//! - the size is capped (`Content-Length` up front and a running count), the whole transfer is
//!   bounded in time, and nothing half-written is left in the cache on failure.
//!
//! Images land in `cache_dir` as `<sha256>.img`; identical content is stored once.

use std::fmt;
use std::future::Future;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, BufWriter};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Time allowed for each TCP connection attempt (and for the TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Trusted when `verify_certificate` is set and no CA certificates are given.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const USER_AGENT: &str = "Redfin-bmcd";
/// Minimum time between two progress reports while data flows.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Write buffer in front of the cache file: fewer, larger blocking writes.
const WRITE_BUFFER: usize = 1 << 20;

/// What to download and how.
#[derive(Clone)]
pub struct FetchRequest {
    /// `http://` or `https://` URL of the image.
    pub url: String,
    /// HTTP Basic user name; credentials are sent only when this is `Some`.
    pub user_name: Option<String>,
    pub password: Option<String>,
    /// For `https` only; `false` accepts any server certificate.
    pub verify_certificate: bool,
    /// PEM certificates to trust. When empty (and verification is on), the system bundle
    /// `/etc/ssl/certs/ca-certificates.crt` is trusted; if it is missing, nothing is.
    pub ca_certificates: Vec<String>,
    /// Larger images are refused.
    pub max_bytes: u64,
    /// Bound on the whole transfer, redirects included.
    pub timeout: Duration,
}

impl fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchRequest")
            .field("url", &self.url)
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("verify_certificate", &self.verify_certificate)
            .field("ca_certificates", &self.ca_certificates.len())
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// An image in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `<cache_dir>/<sha256>.img`
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Unparsable URL, unsupported scheme, credentials in the URL, empty host.
    BadUrl(String),
    /// The URL (or a redirect) leads to a link-local, multicast, unspecified or broadcast address.
    Forbidden(String),
    /// Name resolution, connection or transport failure.
    Connect(String),
    /// TLS handshake or certificate verification failure.
    Tls(String),
    /// HTTP 401 or 403.
    Unauthorized,
    /// HTTP 404 or 410.
    NotFound,
    /// Any other final status that is not 2xx (also a redirect beyond the limit).
    Http(u16),
    TooLarge {
        limit: u64,
    },
    Timeout,
    /// Writing the cache failed (the message says when the disk is full).
    Io(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::BadUrl(m) => write!(f, "The image URL is not valid: {m}."),
            FetchError::Forbidden(m) => write!(f, "The image URL leads to a forbidden address: {m}."),
            FetchError::Connect(m) => write!(f, "Could not reach the image server: {m}."),
            FetchError::Tls(m) => write!(f, "Secure connection to the image server failed: {m}."),
            FetchError::Unauthorized => write!(
                f,
                "The image server refused access; check the user name and password."
            ),
            FetchError::NotFound => write!(f, "The image was not found on the server."),
            FetchError::Http(code) => write!(f, "The image server answered with HTTP status {code}."),
            FetchError::TooLarge { limit } => {
                write!(f, "The image is larger than the limit of {limit} bytes.")
            }
            FetchError::Timeout => write!(f, "The image download took too long and was stopped."),
            FetchError::Io(m) => write!(f, "Could not store the image: {m}."),
        }
    }
}

impl std::error::Error for FetchError {}

/// Downloads `req.url` into `cache_dir` (created if missing) and returns the cached file, named
/// `<sha256>.img`.
///
/// `progress(bytes_so_far, total_if_known)` is called as data arrives, at most about ten times a
/// second, and once more when the body is complete.
///
/// Follows up to 5 redirects (301/302/303/307/308), re-checking the scheme and the address rule each
/// hop; credentials are only sent to the original origin (same scheme, host and port).
///
/// Streams to a temporary file in `cache_dir` while hashing (SHA-256), fsyncs, then renames to the
/// final name; if that content already exists the temporary file is removed and the existing path
/// returned. On any error the temporary file is removed.
pub async fn fetch(
    req: &FetchRequest,
    cache_dir: &Path,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<Fetched, FetchError> {
    let url = Url::parse(&req.url)?;
    tracing::info!(host = %url.host, port = url.port, https = url.https, "fetching virtual media image");

    create_cache_dir(cache_dir).await?;
    let (tmp, file) = create_temp(cache_dir).await?;
    let downloaded = match tokio::time::timeout(req.timeout, download(req, url, file, progress)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout),
    };
    let result = match downloaded {
        Ok((sha256, size)) => finish(cache_dir, &tmp, sha256, size).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(f) => tracing::info!(sha256 = %f.sha256, size = f.size, "virtual media image cached"),
        Err(e) => {
            remove_temp(&tmp).await;
            tracing::warn!(error = %e, "virtual media image download failed");
        }
    }
    result
}

/// An event delivery: a JSON body POSTed to a subscriber.
pub struct Delivery<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Bytes,
    pub verify_certificate: bool,
    pub timeout: Duration,
}

/// POSTs `d.body` as JSON to `d.url` (no redirects followed: a subscriber that
/// moved must be subscribed again). Returns the HTTP status the subscriber
/// answered. The address rule of [`fetch`] applies.
pub async fn post_json(d: &Delivery<'_>) -> Result<u16, FetchError> {
    let url = Url::parse(d.url)?;
    let attempt = async {
        let addrs = resolve(&url).await?;
        let tcp = connect(&url, &addrs).await?;
        let req = FetchRequest {
            url: d.url.to_owned(),
            user_name: None,
            password: None,
            verify_certificate: d.verify_certificate,
            ca_certificates: Vec::new(),
            max_bytes: 0,
            timeout: d.timeout,
        };
        if url.https {
            let connector = tls_connector(&req).await?;
            let stream = tls_handshake(&connector, &url, tcp).await?;
            send_json(stream, &url, d).await
        } else {
            send_json(tcp, &url, d).await
        }
    };
    match tokio::time::timeout(d.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout),
    }
}

async fn send_json<T>(io: T, url: &Url, d: &Delivery<'_>) -> Result<u16, FetchError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn): (SendRequest<http_body_util::Full<Bytes>>, _) =
        hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| FetchError::Connect(format!("HTTP connection failed: {e}")))?;
    let _task = ConnectionTask(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let bad = |_| FetchError::BadUrl("the URL cannot be used in an HTTP request".into());
    let mut request = Request::post(url.target.as_str())
        .header(
            header::HOST,
            HeaderValue::from_str(&url.authority()).map_err(bad)?,
        )
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(d.body.clone()))
        .map_err(|_| FetchError::BadUrl("the URL cannot be used in an HTTP request".into()))?;
    for (k, v) in d.headers {
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            continue;
        };
        request.headers_mut().insert(name, value);
    }
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Connect(format!("the subscriber did not answer properly: {e}")))?;
    Ok(resp.status().as_u16())
}

/// Checks a URL without any network access: it must parse (http/https, no credentials, a host),
/// and a host given as an IP address must pass the address rule. Host names are only checked
/// when [`fetch`] resolves them.
pub fn check_url(url: &str) -> Result<(), FetchError> {
    let url = Url::parse(url)?;
    match url.ip.and_then(|ip| forbidden_reason(ip).map(|why| (ip, why))) {
        Some((ip, why)) => Err(FetchError::Forbidden(format!("{ip} is {why} address"))),
        None => Ok(()),
    }
}

/// True when the file is an ISO 9660 image ("CD001" at byte offset 0x8001).
///
/// This reads five bytes with blocking I/O; call it from a blocking context.
pub fn looks_like_iso9660(path: &Path) -> bool {
    use std::os::unix::fs::FileExt as _;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 5];
    file.read_exact_at(&mut magic, 0x8001).is_ok() && &magic == b"CD001"
}

// ---------------------------------------------------------------------------------------------
// Cache files

async fn create_cache_dir(dir: &Path) -> Result<(), FetchError> {
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(|e| io_error(&e, "cannot create the image cache directory"))
}

/// Creates a new, empty temporary file in `dir`; its name starts with a dot so that it is never
/// mistaken for a cached image.
async fn create_temp(dir: &Path) -> Result<(PathBuf, tokio::fs::File), FetchError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut attempt = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".fetch-{}-{nanos:08x}-{n}.part", std::process::id()));
        let opened = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await;
        match opened {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(io_error(&e, "cannot create a file in the image cache")),
        }
    }
}

async fn remove_temp(tmp: &Path) {
    match tokio::fs::remove_file(tmp).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %tmp.display(), error = %e, "cannot remove temporary image file"),
    }
}

/// Moves the completed temporary file to its content address (or drops it when the content is
/// already cached).
async fn finish(cache_dir: &Path, tmp: &Path, sha256: String, size: u64) -> Result<Fetched, FetchError> {
    let path = cache_dir.join(format!("{sha256}.img"));
    if let Ok(meta) = tokio::fs::metadata(&path).await {
        if meta.is_file() && meta.len() == size {
            remove_temp(tmp).await;
            return Ok(Fetched { path, sha256, size });
        }
    }
    tokio::fs::rename(tmp, &path)
        .await
        .map_err(|e| io_error(&e, "cannot move the image into the cache"))?;
    // Make the new directory entry durable too; failure here does not lose the image.
    if let Ok(dir) = tokio::fs::File::open(cache_dir).await {
        if let Err(e) = dir.sync_all().await {
            tracing::debug!(error = %e, "cannot sync the image cache directory");
        }
    }
    Ok(Fetched { path, sha256, size })
}

fn io_error(e: &std::io::Error, what: &str) -> FetchError {
    match e.kind() {
        ErrorKind::StorageFull => FetchError::Io(format!("{what}: no space left on the device (disk full)")),
        ErrorKind::FileTooLarge => FetchError::Io(format!(
            "{what}: the file system does not allow a file this large"
        )),
        _ => FetchError::Io(format!("{what}: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Transfer

/// Follows redirects to the final response and streams its body into `file`.
/// Returns the SHA-256 (lowercase hex) and the size.
async fn download(
    req: &FetchRequest,
    origin: Url,
    file: tokio::fs::File,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<(String, u64), FetchError> {
    let authorization = basic_authorization(req)?;
    let mut tls: Option<TlsConnector> = None;
    let mut url = origin.clone();
    let mut redirects = 0;
    loop {
        let addrs = resolve(&url).await?;
        let tcp = connect(&url, &addrs).await?;
        let credentials = if url.same_origin(&origin) {
            authorization.as_ref()
        } else {
            None
        };
        let (resp, _conn) = if url.https {
            let connector = match &tls {
                Some(c) => c.clone(),
                None => tls.insert(tls_connector(req).await?).clone(),
            };
            let stream = tls_handshake(&connector, &url, tcp).await?;
            send(stream, &url, credentials).await?
        } else {
            send(tcp, &url, credentials).await?
        };

        let status = resp.status().as_u16();
        match status {
            301 | 302 | 303 | 307 | 308 => {
                if redirects == MAX_REDIRECTS {
                    tracing::debug!(status, "too many redirects");
                    return Err(FetchError::Http(status));
                }
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                    .ok_or(FetchError::Http(status))?;
                url = url.join(location)?;
                redirects += 1;
                tracing::debug!(status, host = %url.host, port = url.port, "following redirect");
            }
            200..=299 => return receive(resp.into_body(), req.max_bytes, file, progress).await,
            401 | 403 => return Err(FetchError::Unauthorized),
            404 | 410 => return Err(FetchError::NotFound),
            _ => return Err(FetchError::Http(status)),
        }
    }
}

fn basic_authorization(req: &FetchRequest) -> Result<Option<HeaderValue>, FetchError> {
    let Some(user) = &req.user_name else {
        return Ok(None);
    };
    let pass = req.password.as_deref().unwrap_or("");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut value = HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| FetchError::BadUrl("the credentials cannot be encoded".into()))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Resolves the host and applies the address rule to every address.
async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, FetchError> {
    if let Some(ip) = url.ip {
        if let Some(why) = blocked(ip) {
            return Err(FetchError::Forbidden(format!("{ip} is {why} address")));
        }
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| FetchError::Connect(format!("cannot resolve {}: {e}", url.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::Connect(format!("{} has no address", url.host)));
    }
    for addr in &addrs {
        if let Some(why) = blocked(addr.ip()) {
            return Err(FetchError::Forbidden(format!(
                "{} resolves to {}, {why} address",
                url.host,
                addr.ip()
            )));
        }
    }
    Ok(addrs)
}

/// Why an address may not be contacted, or `None` when it may. Loopback and private ranges are
/// allowed: labs serve images from them.
/// An address range, `a.b.c.d/n` or `x::y/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() { max } else { p.parse().ok()? };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Where bmcd may connect to at all (configuration `outbound-allow`); empty:
/// anywhere the address rule allows. Set once at start.
static ALLOWED: std::sync::OnceLock<Vec<Cidr>> = std::sync::OnceLock::new();

/// Restricts outbound connections to these ranges (first call wins).
pub fn allow_only(ranges: Vec<Cidr>) {
    let _ = ALLOWED.set(ranges);
}

/// The address rule at connection time: the operator's allow-list, then the
/// fixed rule.
fn blocked(ip: IpAddr) -> Option<&'static str> {
    if let Some(allowed) = ALLOWED.get() {
        if !allowed.is_empty() && !allowed.iter().any(|c| c.contains(ip)) {
            return Some("an unlisted (see outbound-allow)");
        }
    }
    forbidden_reason(ip)
}

/// The fixed rule: addresses no image or subscriber can be at.
fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 destination.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                return forbidden_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            if v6.is_unspecified() {
                Some("an unspecified")
            } else if v6.is_multicast() {
                Some("a multicast")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    if v4.is_link_local() {
        Some("a link-local")
    } else if v4.is_multicast() {
        Some("a multicast")
    } else if v4.is_broadcast() {
        Some("a broadcast")
    } else if v4.octets()[0] == 0 {
        // 0.0.0.0/8, "this host on this network": 0.0.0.0 reaches the local host on Linux.
        Some("an unspecified")
    } else {
        None
    }
}

/// Connects to the first reachable of the (already checked) addresses.
async fn connect(url: &Url, addrs: &[SocketAddr]) -> Result<TcpStream, FetchError> {
    let mut failures = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => failures.push((addr, e.to_string())),
            Err(_) => failures.push((addr, "connection timed out".to_string())),
        }
    }
    let why = match failures.as_slice() {
        [(_, e)] => e.clone(),
        _ => failures
            .iter()
            .map(|(a, e)| format!("{a}: {e}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Err(FetchError::Connect(format!(
        "cannot connect to {}: {why}",
        url.authority()
    )))
}

async fn tls_connector(req: &FetchRequest) -> Result<TlsConnector, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls(e.to_string()))?;
    let mut config = if !req.verify_certificate {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(trust_anchors(&req.ca_certificates).await?)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A TLS connector that accepts any server certificate (bmcd's own health check
/// on loopback).
pub fn insecure_tls_connector() -> Result<TlsConnector, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn trust_anchors(ca_certificates: &[String]) -> Result<RootCertStore, FetchError> {
    let mut roots = RootCertStore::empty();
    if ca_certificates.is_empty() {
        match tokio::fs::read(SYSTEM_CA_BUNDLE).await {
            Ok(pem) => {
                let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
                let (added, ignored) = roots.add_parsable_certificates(certs);
                tracing::debug!(added, ignored, "loaded the system CA bundle");
            }
            Err(e) => {
                tracing::warn!(error = %e, "no system CA bundle at {SYSTEM_CA_BUNDLE}; trusting no one")
            }
        }
        return Ok(roots);
    }
    for pem in ca_certificates {
        let mut found = false;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert =
                cert.map_err(|e| FetchError::Tls(format!("a CA certificate is not valid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| FetchError::Tls(format!("a CA certificate cannot be used: {e}")))?;
            found = true;
        }
        if !found {
            return Err(FetchError::Tls(
                "a CA certificate entry contains no PEM certificate".into(),
            ));
        }
    }
    Ok(roots)
}

async fn tls_handshake(
    connector: &TlsConnector,
    url: &Url,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, FetchError> {
    let name = match url.ip {
        Some(ip) => ServerName::IpAddress(ip.into()),
        None => ServerName::try_from(url.host.clone())
            .map_err(|_| FetchError::BadUrl(format!("\"{}\" is not a valid host name", url.host)))?,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(FetchError::Tls(e.to_string())),
        Err(_) => Err(FetchError::Tls("the TLS handshake timed out".into())),
    }
}

/// Aborts the HTTP connection task when the transfer ends or is abandoned.
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the GET request over a fresh HTTP/1.1 connection.
async fn send<T>(
    io: T,
    url: &Url,
    authorization: Option<&HeaderValue>,
) -> Result<(Response<Incoming>, ConnectionTask), FetchError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn): (SendRequest<Empty<Bytes>>, _) =
        hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| FetchError::Connect(format!("HTTP connection failed: {e}")))?;
    let task = ConnectionTask(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "image server connection ended with an error");
        }
    }));

    let bad = |_| FetchError::BadUrl("the URL cannot be used in an HTTP request".into());
    let mut request = Request::get(url.target.as_str())
        .header(
            header::HOST,
            HeaderValue::from_str(&url.authority()).map_err(bad)?,
        )
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|_| FetchError::BadUrl("the URL cannot be used in an HTTP request".into()))?;
    if let Some(auth) = authorization {
        request.headers_mut().insert(header::AUTHORIZATION, auth.clone());
    }
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Connect(format!("the image server did not answer properly: {e}")))?;
    Ok((resp, task))
}

/// Streams the body into `file` while hashing it, enforcing the size limit; fsyncs at the end.
async fn receive(
    mut body: Incoming,
    max_bytes: u64,
    file: tokio::fs::File,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<(String, u64), FetchError> {
    let total = body.size_hint().exact();
    if total.is_some_and(|n| n > max_bytes) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let write_error = |e: std::io::Error| io_error(&e, "cannot write the image to the cache");
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut size: u64 = 0;
    let mut last_report = Instant::now();
    progress(0, total);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Connect(format!("the transfer was interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        size = size.saturating_add(data.len() as u64);
        if size > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        hash.update(&data);
        out.write_all(&data).await.map_err(write_error)?;
        if last_report.elapsed() >= PROGRESS_INTERVAL {
            progress(size, total);
            last_report = Instant::now();
        }
    }
    out.flush().await.map_err(write_error)?;
    out.get_mut().sync_all().await.map_err(write_error)?;
    progress(size, total);
    let sha256 = hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((sha256, size))
}

/// Certificate "verifier" for `verify_certificate = false`: any certificate is accepted, but the
/// handshake signatures are still checked so the session itself is sound.
/// Also what `bmcctl --insecure` uses.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The parts of an `http(s)` URL needed to make a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    /// Lowercase host name, or the IP address without brackets.
    pub(crate) host: String,
    /// Set when the host is an IP literal.
    pub(crate) ip: Option<IpAddr>,
    pub(crate) port: u16,
    /// Origin-form request target: path and query, percent-encoded, never empty.
    pub(crate) target: String,
}

fn bad_url(msg: impl Into<String>) -> FetchError {
    FetchError::BadUrl(msg.into())
}

impl Url {
    pub(crate) fn parse(input: &str) -> Result<Url, FetchError> {
        let input = input.trim();
        let (scheme, rest) =
            split_scheme(input).ok_or_else(|| bad_url("it must start with http:// or https://"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(bad_url("only http:// and https:// URLs are supported")),
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| bad_url("it must start with http:// or https://"))?;
        let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad_url(
                "user names and passwords go in UserName and Password, not in the URL",
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, ip, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inside, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad_url("the IPv6 address is not closed with ']'"))?;
            let v6: Ipv6Addr = inside
                .parse()
                .map_err(|_| bad_url("the IPv6 address is not valid"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad_url("unexpected text after the address"))?,
                ),
            };
            (v6.to_string(), Some(IpAddr::V6(v6)), port)
        } else {
            let (name, port) = match authority.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (authority, None),
            };
            if name.is_empty() {
                return Err(bad_url("the host is empty"));
            }
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            {
                return Err(bad_url("the host name contains characters that are not allowed"));
            }
            let name = name.to_ascii_lowercase();
            let ip = name.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
            (name, ip, port)
        };
        let port = match port {
            None | Some("") => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad_url("the port is not valid")),
            },
        };
        let target = request_target(tail);
        Ok(Url {
            https,
            host,
            ip,
            port,
            target,
        })
    }

    /// `host[:port]` as for the Host header (port only when not the default).
    pub(crate) fn authority(&self) -> String {
        let host = match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// Resolves a `Location` header against this URL.
    pub(crate) fn join(&self, location: &str) -> Result<Url, FetchError> {
        let location = location.trim();
        if split_scheme(location).is_some() {
            return Url::parse(location);
        }
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme()));
        }
        let target = if location.starts_with('/') {
            location.to_string()
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            if location.is_empty() || location.starts_with('#') {
                self.target.clone()
            } else if location.starts_with('?') {
                format!("{path}{location}")
            } else {
                let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
                format!("{dir}{location}")
            }
        };
        Ok(Url {
            target: request_target(&target),
            ..self.clone()
        })
    }
}

/// Splits `scheme:rest` when the text starts with a syntactically valid scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some((scheme, rest))
}

/// Path and query from the text after the authority: drops the fragment, makes sure the target
/// starts with '/', and percent-encodes bytes that may not appear in a request line.
fn request_target(tail: &str) -> String {
    let tail = tail.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(tail.len() + 1);
    if !tail.starts_with('/') {
        out.push('/');
    }
    for b in tail.bytes() {
        let encode = b <= b' '
            || b >= 0x7f
            || matches!(b, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}');
        if encode {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

// Keeps `fetch` usable from spawned tasks: fails to compile if its future stops being `Send`.
#[allow(dead_code)]
fn fetch_future_is_send<'a>(
    req: &'a FetchRequest,
    dir: &'a Path,
    progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
) -> impl Future<Output = Result<Fetched, FetchError>> + Send + 'a {
    fetch(req, dir, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use http_body_util::combinators::BoxBody;
    use http_body_util::Full;
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use hyper::StatusCode;
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    type Body = BoxBody<Bytes, Infallible>;
    type Handler = Arc<dyn Fn(&Request<Incoming>) -> Response<Body> + Send + Sync>;

    const LIMIT: Duration = Duration::from_secs(20);

    async fn bounded<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(LIMIT, f).await.expect("test timed out")
    }

    /// A fresh, empty directory removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("redfin-fetch-{}-{name}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }

        fn entries(&self) -> Vec<String> {
            match std::fs::read_dir(&self.0) {
                Ok(rd) => {
                    let mut v: Vec<String> = rd
                        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
                        .collect();
                    v.sort();
                    v
                }
                Err(_) => Vec::new(),
            }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Server {
        addr: SocketAddr,
        task: JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve(tls: Option<TlsAcceptor>, handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handler = handler.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let resp = handler(&req);
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                    }
                });
            }
        });
        Server { addr, task }
    }

    fn full(data: impl Into<Bytes>) -> Body {
        Full::new(data.into()).boxed()
    }

    fn status(code: u16) -> Response<Body> {
        let mut resp = Response::new(full(Bytes::new()));
        *resp.status_mut() = StatusCode::from_u16(code).expect("status");
        resp
    }

    fn redirect(code: u16, location: &str) -> Response<Body> {
        let mut resp = status(code);
        resp.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(location).expect("location"),
        );
        resp
    }

    /// A body of unknown length (sent chunked).
    struct Chunked {
        left: usize,
        chunk: Bytes,
    }

    impl hyper::body::Body for Chunked {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
        }
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn sha256_hex(data: &[u8]) -> String {
        digest::digest(&digest::SHA256, data)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn request(url: impl Into<String>) -> FetchRequest {
        FetchRequest {
            url: url.into(),
            user_name: None,
            password: None,
            verify_certificate: true,
            ca_certificates: Vec::new(),
            max_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
        }
    }

    fn no_progress(_: u64, _: Option<u64>) {}

    async fn fetch_into(req: &FetchRequest, dir: &TempDir) -> Result<Fetched, FetchError> {
        bounded(fetch(req, &dir.0, &no_progress)).await
    }

    fn serve_bytes(data: Vec<u8>) -> Handler {
        let data = Bytes::from(data);
        Arc::new(move |req| {
            if req.uri().path() == "/image.iso" {
                Response::new(full(data.clone()))
            } else {
                status(404)
            }
        })
    }

    fn self_signed() -> (TlsAcceptor, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![ck.cert.der().clone()], key)
                .expect("server config");
        (TlsAcceptor::from(Arc::new(config)), ck.cert.pem())
    }

    #[tokio::test]
    async fn downloads_over_http_with_hash_size_and_progress() {
        let data = image(3 << 20);
        let server = serve(None, serve_bytes(data.clone())).await;
        let dir = TempDir::new("http");
        let calls = Mutex::new(Vec::new());
        let progress = |n: u64, total: Option<u64>| calls.lock().expect("lock").push((n, total));
        let req = request(format!("http://{}/image.iso", server.addr));
        let got = bounded(fetch(&req, &dir.0.join("cache"), &progress))
            .await
            .expect("fetch");

        assert_eq!(got.size, data.len() as u64);
        assert_eq!(got.sha256, sha256_hex(&data));
        assert_eq!(got.path, dir.0.join("cache").join(format!("{}.img", got.sha256)));
        assert_eq!(std::fs::read(&got.path).expect("read"), data);
        let calls = calls.into_inner().expect("lock");
        assert!(!calls.is_empty());
        assert_eq!(calls.last(), Some(&(data.len() as u64, Some(data.len() as u64))));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
        let names: Vec<String> = std::fs::read_dir(dir.0.join("cache"))
            .expect("cache dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{}.img", got.sha256)]);
    }

    #[tokio::test]
    async fn same_content_is_stored_once() {
        let data = image(100_000);
        let bytes = Bytes::from(data.clone());
        let handler: Handler = Arc::new(move |req| match req.uri().path() {
            "/a.iso" | "/b.iso" => Response::new(full(bytes.clone())),
            _ => status(404),
        });
        let server = serve(None, handler).await;
        let dir = TempDir::new("dedup");
        let a = fetch_into(&request(format!("http://{}/a.iso", server.addr)), &dir)
            .await
            .expect("a");
        let b = fetch_into(&request(format!("http://{}/b.iso", server.addr)), &dir)
            .await
            .expect("b");
        assert_eq!(a, b);
        assert_eq!(dir.entries(), vec![format!("{}.img", sha256_hex(&data))]);
    }

    #[tokio::test]
    async fn missing_image_is_not_found() {
        let server = serve(None, serve_bytes(image(10))).await;
        let dir = TempDir::new("404");
        let err = fetch_into(&request(format!("http://{}/nope.iso", server.addr)), &dir).await;
        assert_eq!(err, Err(FetchError::NotFound));
        assert!(dir.entries().is_empty());
    }

    #[tokio::test]
    async fn other_statuses() {
        let handler: Handler = Arc::new(|req| match req.uri().path() {
            "/gone" => status(410),
            "/forbidden" => status(403),
            "/broken" => status(500),
            "/loop" => redirect(302, "/loop"),
            "/noloc" => status(301),
            _ => status(404),
        });
        let server = serve(None, handler).await;
        let dir = TempDir::new("statuses");
        let url = |p: &str| request(format!("http://{}{p}", server.addr));
        assert_eq!(fetch_into(&url("/gone"), &dir).await, Err(FetchError::NotFound));
        assert_eq!(
            fetch_into(&url("/forbidden"), &dir).await,
            Err(FetchError::Unauthorized)
        );
        assert_eq!(
            fetch_into(&url("/broken"), &dir).await,
            Err(FetchError::Http(500))
        );
        assert_eq!(fetch_into(&url("/loop"), &dir).await, Err(FetchError::Http(302)));
        assert_eq!(fetch_into(&url("/noloc"), &dir).await, Err(FetchError::Http(301)));
        assert!(dir.entries().is_empty());
    }

    fn basic_auth_handler(data: Vec<u8>) -> Handler {
        let data = Bytes::from(data);
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:s3cret")
        );
        Arc::new(move |req| {
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if auth == Some(expected.as_str()) {
                Response::new(full(data.clone()))
            } else {
                let mut resp = status(401);
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"images\""),
                );
                resp
            }
        })
    }

    #[tokio::test]
    async fn basic_auth() {
        let data = image(5000);
        let server = serve(None, basic_auth_handler(data.clone())).await;
        let dir = TempDir::new("auth");
        let mut req = request(format!("http://{}/image.iso", server.addr));

        assert_eq!(fetch_into(&req, &dir).await, Err(FetchError::Unauthorized));
        req.user_name = Some("admin".into());
        req.password = Some("wrong".into());
        let err = fetch_into(&req, &dir).await.expect_err("wrong password");
        assert_eq!(err, FetchError::Unauthorized);
        assert!(!err.to_string().contains("wrong"));
        assert!(!format!("{req:?}").contains("wrong"));

        req.password = Some("s3cret".into());
        let got = fetch_into(&req, &dir).await.expect("right password");
        assert_eq!(got.sha256, sha256_hex(&data));
        assert_eq!(dir.entries().len(), 1);
    }

    #[tokio::test]
    async fn credentials_follow_same_origin_redirects_only() {
        let data = image(777);
        let other = serve(None, basic_auth_handler(data.clone())).await;
        let target = format!("http://{}/image.iso", other.addr);
        let auth = basic_auth_handler(data.clone());
        let handler: Handler = Arc::new(move |req| match req.uri().path() {
            "/same" => redirect(307, "sub/../image.iso"),
            "/sub/../image.iso" | "/image.iso" => auth(req),
            "/elsewhere" => redirect(302, &target),
            _ => status(404),
        });
        let origin = serve(None, handler).await;
        let dir = TempDir::new("redirect-auth");
        let mut req = request(format!("http://{}/same", origin.addr));
        req.user_name = Some("admin".into());
        req.password = Some("s3cret".into());
        let got = fetch_into(&req, &dir)
            .await
            .expect("same-origin redirect keeps credentials");
        assert_eq!(got.size, 777);

        req.url = format!("http://{}/elsewhere", origin.addr);
        assert_eq!(fetch_into(&req, &dir).await, Err(FetchError::Unauthorized));
    }

    #[tokio::test]
    async fn content_length_over_limit_is_too_large() {
        let server = serve(None, serve_bytes(image(10_000))).await;
        let dir = TempDir::new("too-large");
        let mut req = request(format!("http://{}/image.iso", server.addr));
        req.max_bytes = 9_999;
        assert_eq!(
            fetch_into(&req, &dir).await,
            Err(FetchError::TooLarge { limit: 9_999 })
        );
        assert!(dir.entries().is_empty());
        req.max_bytes = 10_000;
        assert!(fetch_into(&req, &dir).await.is_ok());
    }

    #[tokio::test]
    async fn chunked_body_over_limit_is_too_large_and_leaves_nothing() {
        let handler: Handler = Arc::new(|_| {
            Response::new(
                Chunked {
                    left: 64,
                    chunk: Bytes::from(vec![0x55; 64 * 1024]),
                }
                .boxed(),
            )
        });
        let server = serve(None, handler).await;
        let dir = TempDir::new("chunked");
        let mut req = request(format!("http://{}/image.iso", server.addr));
        req.max_bytes = 1 << 20;
        assert_eq!(
            fetch_into(&req, &dir).await,
            Err(FetchError::TooLarge { limit: 1 << 20 })
        );
        assert!(dir.0.is_dir());
        assert_eq!(dir.entries(), Vec::<String>::new());

        req.max_bytes = 4 << 20;
        let got = fetch_into(&req, &dir).await.expect("within limit");
        assert_eq!(got.size, 4 << 20);
    }

    #[tokio::test]
    async fn https_without_verification() {
        let (acceptor, _pem) = self_signed();
        let data = image(200_000);
        let server = serve(Some(acceptor), serve_bytes(data.clone())).await;
        let dir = TempDir::new("https-noverify");
        let mut req = request(format!("https://{}/image.iso", server.addr));
        req.verify_certificate = false;
        let got = fetch_into(&req, &dir).await.expect("fetch");
        assert_eq!(got.sha256, sha256_hex(&data));
    }

    #[tokio::test]
    async fn https_with_unknown_issuer_is_tls_error() {
        let (acceptor, _pem) = self_signed();
        let (_, unrelated_pem) = self_signed();
        let server = serve(Some(acceptor), serve_bytes(image(10))).await;
        let dir = TempDir::new("https-unknown");
        let mut req = request(format!("https://{}/image.iso", server.addr));
        // System bundle (or no roots at all): a self-signed certificate is not trusted.
        assert!(matches!(fetch_into(&req, &dir).await, Err(FetchError::Tls(_))));
        req.ca_certificates = vec![unrelated_pem];
        assert!(matches!(fetch_into(&req, &dir).await, Err(FetchError::Tls(_))));
        req.ca_certificates = vec!["not a certificate".into()];
        assert!(matches!(fetch_into(&req, &dir).await, Err(FetchError::Tls(_))));
        assert!(dir.entries().is_empty());
    }

    #[tokio::test]
    async fn https_with_given_ca() {
        let (acceptor, pem) = self_signed();
        let (_, unrelated_pem) = self_signed();
        let data = image(12_345);
        let server = serve(Some(acceptor), serve_bytes(data.clone())).await;
        let dir = TempDir::new("https-ca");
        let mut req = request(format!("https://{}/image.iso", server.addr));
        req.ca_certificates = vec![unrelated_pem, pem];
        let got = fetch_into(&req, &dir).await.expect("fetch");
        assert_eq!(got.sha256, sha256_hex(&data));
        assert_eq!(got.size, 12_345);
    }

    #[tokio::test]
    async fn bad_urls() {
        let dir = TempDir::new("bad-url");
        for url in [
            "file:///etc/passwd",
            "ftp://127.0.0.1/image.iso",
            "127.0.0.1/image.iso",
            "http://",
            "http:///image.iso",
            "http://:8080/x",
            "http://admin:pw@127.0.0.1/image.iso",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:0/",
            "http://exa mple.com/",
            "http://[::1/",
            "http://[fe80::1%25eth0]/",
        ] {
            let err = fetch_into(&request(url), &dir).await.expect_err(url);
            assert!(matches!(err, FetchError::BadUrl(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        assert!(!dir.0.exists());
    }

    #[tokio::test]
    async fn forbidden_addresses() {
        let dir = TempDir::new("forbidden");
        for url in [
            "http://169.254.169.254/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/latest",
            "http://0.0.0.0:8080/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "https://[ff02::1]/",
        ] {
            let err = fetch_into(&request(url), &dir).await.expect_err(url);
            assert!(matches!(err, FetchError::Forbidden(_)), "{url}: {err:?}");
        }
        assert!(dir.entries().is_empty());
    }

    #[tokio::test]
    async fn redirect_to_forbidden_address() {
        let handler: Handler = Arc::new(|_| redirect(302, "http://169.254.169.254/x"));
        let server = serve(None, handler).await;
        let dir = TempDir::new("redirect-forbidden");
        let err = fetch_into(&request(format!("http://{}/image.iso", server.addr)), &dir).await;
        assert!(matches!(err, Err(FetchError::Forbidden(_))), "{err:?}");

        let handler: Handler = Arc::new(|_| redirect(301, "file:///etc/passwd"));
        let server = serve(None, handler).await;
        let err = fetch_into(&request(format!("http://{}/image.iso", server.addr)), &dir).await;
        assert!(matches!(err, Err(FetchError::BadUrl(_))), "{err:?}");
        assert!(dir.entries().is_empty());
    }

    #[tokio::test]
    async fn connection_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let dir = TempDir::new("refused");
        let err = fetch_into(&request(format!("http://{addr}/image.iso")), &dir).await;
        assert!(matches!(err, Err(FetchError::Connect(_))), "{err:?}");
        assert!(dir.entries().is_empty());
    }

    #[tokio::test]
    async fn stalled_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                open.push(tcp);
            }
        });
        let dir = TempDir::new("timeout");
        let mut req = request(format!("http://{addr}/image.iso"));
        req.timeout = Duration::from_millis(300);
        assert_eq!(fetch_into(&req, &dir).await, Err(FetchError::Timeout));
        assert!(dir.entries().is_empty());
        hold.abort();
    }

    #[tokio::test]
    async fn iso9660_detection() {
        let dir = TempDir::new("iso");
        std::fs::create_dir_all(&dir.0).expect("mkdir");
        let mut iso = vec![0u8; 0x8800];
        iso[0x8000] = 1;
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        let iso_path = dir.0.join("a.iso");
        std::fs::write(&iso_path, &iso).expect("write");
        assert!(looks_like_iso9660(&iso_path));

        let raw_path = dir.0.join("b.img");
        std::fs::write(&raw_path, vec![0u8; 0x8800]).expect("write");
        assert!(!looks_like_iso9660(&raw_path));
        let short_path = dir.0.join("c.img");
        std::fs::write(&short_path, &iso[..0x8003]).expect("write");
        assert!(!looks_like_iso9660(&short_path));
        assert!(!looks_like_iso9660(&dir.0.join("missing")));
    }

    #[test]
    fn url_parsing() {
        let u = Url::parse("HTTPS://Images.Example.com:8443/a b/c.iso?x=1#frag").expect("url");
        assert!(u.https);
        assert_eq!(u.host, "images.example.com");
        assert_eq!(u.ip, None);
        assert_eq!(u.port, 8443);
        assert_eq!(u.target, "/a%20b/c.iso?x=1");
        assert_eq!(u.authority(), "images.example.com:8443");

        let u = Url::parse("http://10.0.0.1").expect("url");
        assert_eq!(
            (u.port, u.target.as_str(), u.authority()),
            (80, "/", "10.0.0.1".to_string())
        );
        assert_eq!(u.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));

        let u = Url::parse("https://[2001:db8::1]:443?q").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("2001:db8::1", 443, "/?q")
        );
        assert_eq!(u.authority(), "[2001:db8::1]");
        let u = Url::parse("http://[::1]:8080/x").expect("url");
        assert_eq!(u.authority(), "[::1]:8080");

        let base = Url::parse("http://h:81/dir/file.iso?q=1").expect("url");
        assert_eq!(base.join("other.iso").expect("join").target, "/dir/other.iso");
        assert_eq!(base.join("/root.iso").expect("join").target, "/root.iso");
        assert_eq!(base.join("?q=2").expect("join").target, "/dir/file.iso?q=2");
        let j = base.join("//other:82/x").expect("join");
        assert_eq!((j.host.as_str(), j.port, j.https), ("other", 82, false));
        let j = base.join("https://h/y").expect("join");
        assert!(j.https && !j.same_origin(&base));
        assert!(base.join("/z").expect("join").same_origin(&base));
        assert!(matches!(base.join("gopher://h/"), Err(FetchError::BadUrl(_))));
    }

    #[test]
    fn check_url_without_network() {
        assert_eq!(check_url("http://10.0.0.5/a.iso"), Ok(()));
        assert_eq!(check_url("https://images.example.com/a.iso"), Ok(()));
        assert!(matches!(
            check_url("http://169.254.169.254/"),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url("http://[fe80::1]/"),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url("file:///etc/passwd"),
            Err(FetchError::BadUrl(_))
        ));
        assert!(matches!(check_url("http://u:p@h/"), Err(FetchError::BadUrl(_))));
    }

    #[test]
    fn address_rule() {
        for ip in [
            "169.254.1.1",
            "fe80::1",
            "febf::1",
            "224.0.0.1",
            "ff02::1",
            "0.0.0.0",
            "::",
            "255.255.255.255",
        ] {
            assert!(forbidden_reason(ip.parse().expect("ip")).is_some(), "{ip}");
        }
        for ip in ["::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"] {
            assert!(forbidden_reason(ip.parse().expect("ip")).is_some(), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "fd00::1",
            "8.8.8.8",
            "fec0::1",
        ] {
            assert!(forbidden_reason(ip.parse().expect("ip")).is_none(), "{ip}");
        }
    }

    #[test]
    fn disk_full_is_reported() {
        let err = io_error(&std::io::Error::from_raw_os_error(28), "cannot write");
        assert!(
            matches!(&err, FetchError::Io(m) if m.contains("disk full")),
            "{err:?}"
        );
    }

    #[test]
    fn cidr_ranges_contain_their_addresses() {
        let lo = Cidr::parse("127.0.0.0/8").expect("v4");
        assert!(lo.contains("127.1.2.3".parse().expect("ip")));
        assert!(!lo.contains("128.0.0.1".parse().expect("ip")));
        assert!(!lo.contains("::1".parse().expect("ip")));
        let one = Cidr::parse("::1").expect("v6 host");
        assert!(one.contains("::1".parse().expect("ip")));
        assert!(!one.contains("::2".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0")
            .expect("all")
            .contains("8.8.8.8".parse().expect("ip")));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }
}
