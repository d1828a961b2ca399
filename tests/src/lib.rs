//! Test kit: runs a real bmcd in-process (TLS, SQLite, libvirt) on 127.0.0.1:0
//! and talks to it over HTTPS like any Redfish client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub mod reliability;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("redfin-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One domain of a libvirt test-driver node file.
pub struct TestDomain {
    pub name: String,
    pub uuid: String,
    pub running: bool,
}

/// Writes a libvirt test-driver node file with `n` domains (`vm-1` ...), every
/// other one shut off, each with a disk, a CD drive and a NIC. Returns the URI.
pub fn test_node(dir: &Path, n: usize) -> (String, Vec<TestDomain>) {
    let mut xml = String::from(
        "<node>\n  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>\
         <active>2</active><mhz>2000</mhz><model>x86_64</model></cpu>\n  <memory>16777216</memory>\n",
    );
    let mut domains = Vec::new();
    for i in 1..=n {
        let name = format!("vm-{i}");
        let uuid = format!("00000000-0000-4000-8000-{i:012x}");
        let running = i % 2 == 1;
        xml.push_str(&format!(
            "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n\
             <name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>512</memory><vcpu>2</vcpu>\n\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\n\
             <devices>\n\
               <disk type='file' device='disk'><source file='/var/lib/redfin/{name}.qcow2'/><target dev='vda' bus='virtio'/></disk>\n\
               <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>\n\
               <interface type='network'><mac address='52:54:00:00:{:02x}:{:02x}'/><source network='default'/><model type='virtio'/></interface>\n\
             </devices>\n\
             <test:runstate>{}</test:runstate>\n\
             </domain>\n",
            i / 256,
            i % 256,
            if running { 1 } else { 5 }
        ));
        domains.push(TestDomain { name, uuid, running });
    }
    xml.push_str("</node>\n");
    let file = dir.join("node.xml");
    std::fs::write(&file, xml).expect("write node file");
    (format!("test://{}", file.display()), domains)
}

/// A bmcd running in this process.
pub struct TestBmc {
    pub addr: SocketAddr,
    pub state_dir: PathBuf,
    pub libvirt_uri: String,
    running: Option<bmcd::Running>,
}

impl TestBmc {
    pub fn config(state_dir: &Path, libvirt_uri: &str) -> bmcd::config::Config {
        bmcd::config::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            libvirt_uri: libvirt_uri.to_owned(),
            state_dir: state_dir.to_owned(),
            admin_user: ADMIN.to_owned(),
            admin_password: Some(ADMIN_PASSWORD.to_owned()),
            log: "warn".to_owned(),
            shutdown_grace_s: 2,
            ..bmcd::config::Config::default()
        }
    }

    pub async fn start_with(config: bmcd::config::Config) -> TestBmc {
        let state_dir = config.state_dir.clone();
        let libvirt_uri = config.libvirt_uri.clone();
        let running = bmcd::start(config).await.expect("bmcd starts");
        TestBmc {
            addr: running.https,
            state_dir,
            libvirt_uri,
            running: Some(running),
        }
    }

    pub async fn start(state_dir: &Path, libvirt_uri: &str) -> TestBmc {
        TestBmc::start_with(TestBmc::config(state_dir, libvirt_uri)).await
    }

    pub fn running(&self) -> &bmcd::Running {
        self.running.as_ref().expect("running")
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    pub fn admin(&self) -> Client {
        self.client().basic(ADMIN, ADMIN_PASSWORD)
    }
}

#[derive(Debug)]
struct AcceptAnyCert;

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Records the certificate a server presents.
#[derive(Debug, Default)]
struct RecordCert(std::sync::Mutex<Option<CertificateDer<'static>>>);

impl ServerCertVerifier for RecordCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().expect("lock") = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AcceptAnyCert.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        AcceptAnyCert.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        AcceptAnyCert.supported_verify_schemes()
    }
}

/// What a new TLS handshake with `addr` shows: the server's certificate (DER),
/// the protocol version and the cipher suite. `versions` limits the client.
pub async fn handshake(
    addr: SocketAddr,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(Vec<u8>, rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let recorder = Arc::new(RecordCert::default());
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tls.get_ref().1;
    let version = conn.protocol_version().ok_or("no version")?;
    let suite = conn.negotiated_cipher_suite().ok_or("no suite")?.suite();
    let cert = recorder.0.lock().expect("lock").clone().ok_or("no certificate")?;
    Ok((cert.to_vec(), version, suite))
}

#[derive(Clone)]
pub enum Auth {
    None,
    Basic(String, String),
    Token(String),
}

/// A minimal HTTPS Redfish client (one connection per request).
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    auth: Auth,
    tls: TlsConnector,
    extra_headers: Vec<(String, String)>,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first `MessageId` of a Redfish error body.
    pub fn message_id(&self) -> String {
        self.json["error"]["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// A TLS connector that accepts bmcd's (self-signed) certificate.
pub fn tls_connector() -> TlsConnector {
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert))
            .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            auth: Auth::None,
            tls: tls_connector(),
            extra_headers: Vec::new(),
        }
    }

    pub fn basic(mut self, user: &str, pass: &str) -> Client {
        self.auth = Auth::Basic(user.to_owned(), pass.to_owned());
        self
    }

    pub fn token(mut self, token: &str) -> Client {
        self.auth = Auth::Token(token.to_owned());
        self
    }

    pub fn anonymous(mut self) -> Client {
        self.auth = Auth::None;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Client {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This client, presenting a client certificate (mTLS).
    pub fn with_client_certificate(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Client {
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert))
                .with_client_auth_cert(chain, key)
                .expect("client certificate");
        self.tls = TlsConnector::from(Arc::new(config));
        self
    }

    /// A fresh TLS connection to bmcd.
    async fn open(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        self.try_open().await.expect("TLS and HTTP handshakes")
    }

    async fn try_open(&self) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// A GET that reports a refused handshake (or a connection the server
    /// closed) as an error instead of failing the test.
    pub async fn try_get(&self, path: &str) -> Result<Resp, String> {
        let mut sender = self.try_open().await?;
        let req = self
            .request(Method::GET, path)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            body,
            json,
        })
    }

    /// A request with this client's credentials and extra headers.
    fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        match &self.auth {
            Auth::None => {}
            Auth::Basic(u, p) => {
                let cred = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                req = req.header("authorization", format!("Basic {cred}"));
            }
            Auth::Token(t) => req = req.header("x-auth-token", t.as_str()),
        }
        for (k, v) in &self.extra_headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: Option<&str>,
    ) -> Resp {
        let mut sender = self.open().await;
        let mut req = self.request(method, path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(body.unwrap_or_default())).expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.raw(Method::GET, path, None, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.raw(Method::DELETE, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.raw(
            Method::POST,
            path,
            Some(Bytes::from(body.to_string())),
            Some("application/json"),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.raw(
            Method::PATCH,
            path,
            Some(Bytes::from(body.to_string())),
            Some("application/json"),
        )
        .await
    }

    /// Opens a server-sent event stream.
    pub async fn stream(&self, path: &str) -> EventStream {
        let mut sender = self.open().await;
        let req = self.request(Method::GET, path);
        let resp = sender
            .send_request(req.body(Full::new(Bytes::new())).expect("request"))
            .await
            .expect("response");
        EventStream {
            status: resp.status(),
            body: resp.into_body(),
            buffer: String::new(),
            _sender: sender,
        }
    }

    /// Logs in; returns the token and the session URI.
    pub async fn login(&self, user: &str, pass: &str) -> (String, String) {
        let r = self
            .clone()
            .anonymous()
            .post(
                "/redfish/v1/SessionService/Sessions",
                serde_json::json!({"UserName": user, "Password": pass}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login failed: {:?}", r.json);
        let token = r.header("x-auth-token").expect("token").to_owned();
        let location = r.header("location").expect("location").to_owned();
        (token, location)
    }
}

/// The DMTF CSDL schema folder (../shared/redfish-conformance/share/SchemaFiles
/// beside the repository, or `REDFIN_SCHEMA_DIR`).
pub fn schema_dir() -> PathBuf {
    if let Ok(d) = std::env::var("REDFIN_SCHEMA_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/redfish-conformance/share/SchemaFiles")
}

/// A file an [`ImageServer`] serves.
pub struct ServedFile {
    pub path: String,
    pub body: Vec<u8>,
    /// Basic credentials the server demands, if any.
    pub credentials: Option<(String, String)>,
}

/// A file server on 127.0.0.1 (HTTP, or HTTPS with a self-signed
/// certificate), for virtual media tests.
pub struct ImageServer {
    pub addr: SocketAddr,
    /// The server's certificate (PEM), when it speaks HTTPS.
    pub certificate: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    pub async fn start(files: Vec<ServedFile>) -> ImageServer {
        ImageServer::start_with(files, false).await
    }

    pub async fn start_tls(files: Vec<ServedFile>) -> ImageServer {
        ImageServer::start_with(files, true).await
    }

    async fn start_with(files: Vec<ServedFile>, tls: bool) -> ImageServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let files = Arc::new(files);
        let (acceptor, certificate) = if tls {
            let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("certificate");
            let cert_pem = ck.cert.pem();
            let key =
                rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).expect("key");
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .expect("server config");
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
                Some(cert_pem),
            )
        } else {
            (None, None)
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let files = Arc::clone(&files);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let files = Arc::clone(&files);
                            async move {
                                let found = files.iter().find(|f| f.path == req.uri().path());
                                let resp = match found {
                                    None => hyper::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new())),
                                    Some(f) => {
                                        let authorized = match &f.credentials {
                                            None => true,
                                            Some((u, p)) => {
                                                let want = format!(
                                                    "Basic {}",
                                                    base64::engine::general_purpose::STANDARD
                                                        .encode(format!("{u}:{p}"))
                                                );
                                                req.headers()
                                                    .get("authorization")
                                                    .and_then(|v| v.to_str().ok())
                                                    == Some(want.as_str())
                                            }
                                        };
                                        if authorized {
                                            hyper::Response::builder()
                                                .status(200)
                                                .body(Full::new(Bytes::from(f.body.clone())))
                                        } else {
                                            hyper::Response::builder()
                                                .status(401)
                                                .body(Full::new(Bytes::new()))
                                        }
                                    }
                                };
                                Ok::<_, std::convert::Infallible>(resp.expect("response"))
                            }
                        });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        ImageServer {
            addr,
            certificate,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.certificate.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{path}", self.addr)
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A minimal ISO 9660 image (a primary volume descriptor, nothing else): what
/// a CD slot accepts.
pub fn tiny_iso(size: usize) -> Vec<u8> {
    let mut iso = vec![0u8; size.max(0x9000)];
    iso[0x8000] = 1;
    iso[0x8001..0x8006].copy_from_slice(b"CD001");
    iso[0x8006] = 1;
    iso
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `fail_first`
/// deliveries and 200 afterwards, and records each one.
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    /// (status answered, body) of every delivery, in arrival order.
    pub deliveries: Arc<std::sync::Mutex<Vec<(u16, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(fail_first: usize) -> WebhookReceiver {
        WebhookReceiver::start_on("127.0.0.1:0".parse().expect("addr"), fail_first).await
    }

    pub async fn start_on(addr: SocketAddr, fail_first: usize) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let deliveries: Arc<std::sync::Mutex<Vec<(u16, Value)>>> = Arc::default();
        let log = Arc::clone(&deliveries);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let log = Arc::clone(&log);
                            async move {
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                                let status = {
                                    let mut log = log.lock().expect("log");
                                    let status = if log.len() < fail_first { 500 } else { 200 };
                                    log.push((status, json));
                                    status
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::new()))
                                        .expect("response"),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        WebhookReceiver {
            addr,
            deliveries,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// The bodies that were answered 200.
    pub fn accepted(&self) -> Vec<Value> {
        self.deliveries
            .lock()
            .expect("log")
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn attempts(&self) -> usize {
        self.deliveries.lock().expect("log").len()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server-sent event stream being read.
pub struct EventStream {
    pub status: StatusCode,
    body: hyper::body::Incoming,
    buffer: String,
    _sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl EventStream {
    /// The next event's `data` (comments and keep-alives skipped); `None` when
    /// the stream ends.
    pub async fn next_event(&mut self) -> Option<Value> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect::<Vec<_>>()
                    .join("\n");
                if !data.is_empty() {
                    return serde_json::from_str(&data).ok();
                }
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
}

/// What the end-to-end tests share: the repository's paths, bounded commands,
/// and a private libvirtd (tests/e2e/libvirtd.sh) stopped with its guests when
/// dropped.
pub mod e2e {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use tokio::process::Command;

    pub fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Guest kernel, initramfs and images the tests/e2e scripts build once.
    pub fn cache() -> PathBuf {
        repo().join("target/e2e-cache")
    }

    /// Runs a command for at most 120 s; it must succeed. Returns its stdout.
    pub async fn run(cmd: &mut Command) -> String {
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("command timed out")
            .expect("command runs");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A private libvirtd, stopped (with its guests) when dropped.
    pub struct Libvirtd {
        dir: PathBuf,
        pub uri: String,
    }

    impl Libvirtd {
        pub async fn start(dir: &Path) -> Libvirtd {
            let out = run(Command::new(repo().join("tests/e2e/libvirtd.sh"))
                .arg("start")
                .arg(dir))
            .await;
            let uri = out
                .lines()
                .find_map(|l| l.strip_prefix("LIBVIRT_URI="))
                .expect("URI line")
                .to_owned();
            Libvirtd {
                dir: dir.to_owned(),
                uri,
            }
        }

        pub async fn virsh(&self, args: &[&str]) -> String {
            run(Command::new("virsh")
                .arg("-q")
                .arg("-c")
                .arg(&self.uri)
                .args(args))
            .await
        }

        /// Defines guest `name` (tests/e2e/guest-domain.sh, serial console
        /// logged to `WORK/NAME-serial.log`); returns its UUID.
        pub async fn define(&self, work: &Path, name: &str) -> String {
            let mut cmd = Command::new(repo().join("tests/e2e/guest-domain.sh"));
            cmd.arg(name)
                .arg(cache())
                .arg(work.join(format!("{name}-serial.log")));
            let xml_file = work.join(format!("{name}.xml"));
            std::fs::write(&xml_file, run(&mut cmd).await).expect("write XML");
            self.virsh(&["define", xml_file.to_str().expect("utf8")]).await;
            self.virsh(&["domuuid", name]).await.trim().to_owned()
        }

        /// Leaves the daemon running; the owner of another handle stops it.
        pub fn forget(self) {
            std::mem::forget(self);
        }
    }

    impl Drop for Libvirtd {
        fn drop(&mut self) {
            let _ = std::process::Command::new(repo().join("tests/e2e/libvirtd.sh"))
                .arg("stop")
                .arg(&self.dir)
                .status();
        }
    }
}

/// Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools
/// protocol, a WebSocket: no Node, no driver binary.
pub mod browser {
    use std::path::Path;
    use std::time::Duration;

    use base64::Engine;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use tokio::io::AsyncBufReadExt;
    use tokio::process::Command;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    use crate::TempDir;

    type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

    pub struct Chromium {
        child: tokio::process::Child,
        ws: Ws,
        next_id: u64,
        _profile: TempDir,
    }

    impl Chromium {
        pub async fn start() -> Chromium {
            Chromium::start_with(&[]).await
        }

        /// With extra command-line flags (`--ignore-certificate-errors` for
        /// bmcd's self-signed certificate, say). A fresh profile each time.
        pub async fn start_with(extra: &[&str]) -> Chromium {
            let profile = TempDir::new("chromium");
            let mut child = Command::new("/usr/bin/chromium")
                .args([
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                    "--window-size=1024,768",
                ])
                .args(extra)
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("chromium starts (install it with scripts/install-deps.sh)");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let url = tokio::time::timeout(Duration::from_secs(30), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(u) = line.strip_prefix("DevTools listening on ") {
                        return u.trim().to_owned();
                    }
                }
                panic!("chromium ended without a DevTools address");
            })
            .await
            .expect("chromium's DevTools address in time");
            // Keep draining stderr so that Chromium never blocks on it.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let (ws, _) =
                tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(url))
                    .await
                    .expect("DevTools connection in time")
                    .expect("DevTools connection");
            Chromium {
                child,
                ws,
                next_id: 1,
                _profile: profile,
            }
        }

        pub async fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
            let id = self.next_id;
            self.next_id += 1;
            let mut msg = json!({"id": id, "method": method, "params": params});
            if let Some(s) = session {
                msg["sessionId"] = json!(s);
            }
            self.ws
                .send(Message::Text(msg.to_string().into()))
                .await
                .expect("send to DevTools");
            loop {
                let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                    .await
                    .expect("DevTools answers in time")
                    .expect("open")
                    .expect("no error");
                if let Message::Text(t) = m {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                    if v["id"] == json!(id) {
                        assert!(v.get("error").is_none(), "{method}: {v}");
                        return v["result"].clone();
                    }
                }
            }
        }

        /// Opens `url` in a new tab.
        pub async fn open(&mut self, url: &str) -> Tab {
            let target = self.call("Target.createTarget", json!({"url": url}), None).await;
            let target_id = target["targetId"].as_str().expect("targetId").to_owned();
            let attached = self
                .call(
                    "Target.attachToTarget",
                    json!({"targetId": target_id, "flatten": true}),
                    None,
                )
                .await;
            Tab {
                session: attached["sessionId"].as_str().expect("sessionId").to_owned(),
            }
        }

        /// Evaluates `expr` in the tab (promises awaited); its value.
        pub async fn eval(&mut self, tab: &Tab, expr: &str) -> Value {
            let r = self
                .call(
                    "Runtime.evaluate",
                    json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
                    Some(&tab.session),
                )
                .await;
            if let Some(e) = r.get("exceptionDetails") {
                return json!({"exception": e.clone()});
            }
            r["result"]["value"].clone()
        }

        /// Polls `expr` until it is truthy (not null, false, 0 or ""); its
        /// value. Panics with `what` and the last value after `within`.
        pub async fn wait_for(&mut self, tab: &Tab, expr: &str, within: Duration, what: &str) -> Value {
            let deadline = tokio::time::Instant::now() + within;
            loop {
                let v = self.eval(tab, expr).await;
                let truthy = match &v {
                    Value::Null | Value::Bool(false) => false,
                    Value::String(s) => !s.is_empty(),
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::Object(o) => !o.contains_key("exception"),
                    _ => true,
                };
                if truthy {
                    return v;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: not within {within:?}; last value {v}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        /// Saves a PNG of the tab to `png`.
        pub async fn screenshot(&mut self, tab: &Tab, png: &Path) {
            let shot = self
                .call(
                    "Page.captureScreenshot",
                    json!({"format": "png"}),
                    Some(&tab.session),
                )
                .await;
            let data = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().expect("data"))
                .expect("base64");
            if let Some(dir) = png.parent() {
                std::fs::create_dir_all(dir).expect("artefact directory");
            }
            std::fs::write(png, data).expect("write screenshot");
        }

        pub async fn stop(mut self) {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                self.call("Browser.close", json!({}), None),
            )
            .await;
            let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
            let _ = self.child.kill().await;
        }
    }

    /// A tab (a DevTools session attached to a page target).
    pub struct Tab {
        pub session: String,
    }
}
