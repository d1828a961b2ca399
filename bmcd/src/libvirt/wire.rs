//! libvirt's RPC protocol, spoken over a daemon's UNIX socket without
//! libvirt.so.
//!
//! Every libvirt URI that names a daemon (`qemu:///system`,
//! `test+unix:///default?socket=…`) reaches it through the same wire protocol
//! libvirt's own remote driver speaks: XDR-encoded messages, each a 4-byte
//! length, a 24-byte header (program, version, procedure, type, serial,
//! status) and a body. Speaking it here keeps libvirt.so and its fifty
//! dependent libraries (GnuTLS, OpenSSL, libxml2, GLib, ICU, …) out of bmcd's
//! address space; see docs/performance.md for what that saves.
//!
//! One connection carries every call: callers write a call under a lock and
//! wait (bounded) for the reply with their serial; one reader thread per
//! connection hands replies to their callers, answers the daemon's keepalive
//! pings and passes domain events on. Calls block, so they run on the worker
//! threads of [`super::LibvirtHypervisor`], never on the async runtime.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

const REMOTE_PROGRAM: u32 = 0x2000_8086;
const REMOTE_VERSION: u32 = 1;
const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
const KEEPALIVE_PING: i32 = 1;
const KEEPALIVE_PONG: i32 = 2;

const TYPE_CALL: i32 = 0;
const TYPE_REPLY: i32 = 1;
const TYPE_MESSAGE: i32 = 2;
const STATUS_OK: i32 = 0;
const STATUS_ERROR: i32 = 1;

const HEADER_LEN: usize = 24;
/// libvirt's own limit on one message (`VIR_NET_MESSAGE_MAX`, 32 MiB).
const MESSAGE_MAX: usize = 32 << 20;
/// Longest string or list accepted from the daemon (libvirt's `REMOTE_STRING_MAX`).
const STRING_MAX: usize = 4 << 20;
const LIST_MAX: usize = 65_536;

/// Procedure numbers (remote_protocol.x); fixed for good, as the protocol is.
mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const NODE_GET_INFO: i32 = 6;
    pub const DOMAIN_CREATE_WITH_FLAGS: i32 = 196;
    pub const DOMAIN_DEFINE_XML: i32 = 11;
    pub const DOMAIN_DESTROY: i32 = 12;
    pub const DOMAIN_GET_XML_DESC: i32 = 14;
    pub const DOMAIN_GET_INFO: i32 = 16;
    pub const DOMAIN_LOOKUP_BY_NAME: i32 = 23;
    pub const DOMAIN_LOOKUP_BY_UUID: i32 = 24;
    pub const DOMAIN_REBOOT: i32 = 27;
    pub const DOMAIN_RESUME: i32 = 28;
    pub const DOMAIN_SHUTDOWN: i32 = 33;
    pub const DOMAIN_UNDEFINE: i32 = 35;
    pub const DOMAIN_BLOCK_STATS: i32 = 64;
    pub const DOMAIN_INTERFACE_STATS: i32 = 65;
    pub const AUTH_LIST: i32 = 66;
    pub const AUTH_POLKIT: i32 = 70;
    pub const STORAGE_POOL_REFRESH: i32 = 83;
    pub const STORAGE_POOL_LOOKUP_BY_NAME: i32 = 84;
    pub const STORAGE_POOL_GET_INFO: i32 = 87;
    pub const STORAGE_POOL_GET_XML_DESC: i32 = 88;
    pub const STORAGE_VOL_CREATE_XML: i32 = 93;
    pub const STORAGE_VOL_DELETE: i32 = 94;
    pub const STORAGE_VOL_LOOKUP_BY_NAME: i32 = 95;
    pub const STORAGE_VOL_GET_INFO: i32 = 98;
    pub const STORAGE_VOL_GET_XML_DESC: i32 = 99;
    pub const STORAGE_VOL_GET_PATH: i32 = 100;
    pub const DOMAIN_IS_ACTIVE: i32 = 150;
    pub const DOMAIN_IS_PERSISTENT: i32 = 151;
    pub const STORAGE_POOL_IS_ACTIVE: i32 = 154;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    pub const DOMAIN_ATTACH_DEVICE_FLAGS: i32 = 160;
    pub const DOMAIN_DETACH_DEVICE_FLAGS: i32 = 161;
    pub const DOMAIN_UPDATE_DEVICE_FLAGS: i32 = 174;
    pub const DOMAIN_GET_BLOCK_INFO: i32 = 194;
    pub const DOMAIN_INJECT_NMI: i32 = 210;
    pub const DOMAIN_GET_STATE: i32 = 212;
    pub const DOMAIN_UNDEFINE_FLAGS: i32 = 231;
    pub const DOMAIN_RESET: i32 = 245;
    pub const DOMAIN_BLOCK_RESIZE: i32 = 251;
    pub const STORAGE_VOL_RESIZE: i32 = 260;
    pub const DOMAIN_PM_WAKEUP: i32 = 267;
    pub const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
    pub const CONNECT_LIST_ALL_STORAGE_POOLS: i32 = 281;
    pub const STORAGE_POOL_LIST_ALL_VOLUMES: i32 = 282;
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: i32 = 316;
    pub const DOMAIN_EVENT_CALLBACK_LIFECYCLE: i32 = 318;
    pub const DOMAIN_EVENT_CALLBACK_TRAY_CHANGE: i32 = 328;
    pub const DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED: i32 = 333;
    pub const DOMAIN_INTERFACE_ADDRESSES: i32 = 353;
    pub const DOMAIN_EVENT_CALLBACK_DEVICE_ADDED: i32 = 354;
}

/// libvirt's error numbers and domains this client produces itself.
const ERR_RPC: i32 = 39;
const ERR_NO_SUPPORT: i32 = 3;
const ERR_OPERATION_TIMEOUT: i32 = 68;
const ERR_AUTH_FAILED: i32 = 45;
const ERR_NO_CONNECT: i32 = 5;
const FROM_RPC: i32 = 7;
const FROM_REMOTE: i32 = 13;

/// An error as libvirt reports it: its number, the part of libvirt it comes
/// from, and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub domain: i32,
    pub message: String,
}

impl Error {
    fn rpc(message: impl Into<String>) -> Error {
        Error {
            code: ERR_RPC,
            domain: FROM_RPC,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

// ---------------------------------------------------------------------------
// XDR (RFC 4506), the subset libvirt's protocol uses.

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn padded(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        let pad = (4 - bytes.len() % 4) % 4;
        self.0.extend_from_slice(&[0u8; 3][..pad]);
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32).padded(s.as_bytes())
    }
    fn opt_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.u32(1).string(s),
            None => self.u32(0),
        }
    }
    fn domain(&mut self, d: &DomainRef) -> &mut Self {
        self.string(&d.name).padded(&d.uuid).i32(d.id)
    }
    fn pool(&mut self, p: &PoolRef) -> &mut Self {
        self.string(&p.name).padded(&p.uuid)
    }
    fn vol(&mut self, v: &VolRef) -> &mut Self {
        self.string(&v.pool).string(&v.name).string(&v.key)
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Dec { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| Error::rpc("libvirt sent a truncated message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, Error> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, Error> {
        Ok(self.u64()? as i64)
    }
    fn padded(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let s = self.take(n)?;
        self.take((4 - n % 4) % 4)?;
        Ok(s)
    }
    fn len(&mut self, max: usize) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::rpc(format!(
                "libvirt sent a list or string of {n} items, over the limit"
            )));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, Error> {
        let n = self.len(STRING_MAX)?;
        let b = self.padded(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| Error::rpc("libvirt sent a string that is not UTF-8"))
    }
    fn opt_string(&mut self) -> Result<Option<String>, Error> {
        match self.u32()? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }
    fn uuid(&mut self) -> Result<[u8; 16], Error> {
        let mut u = [0u8; 16];
        u.copy_from_slice(self.take(16)?);
        Ok(u)
    }
    fn domain(&mut self) -> Result<DomainRef, Error> {
        Ok(DomainRef {
            name: self.string()?,
            uuid: self.uuid()?,
            id: self.i32()?,
        })
    }
    fn pool(&mut self) -> Result<PoolRef, Error> {
        Ok(PoolRef {
            name: self.string()?,
            uuid: self.uuid()?,
        })
    }
    fn vol(&mut self) -> Result<VolRef, Error> {
        Ok(VolRef {
            pool: self.string()?,
            name: self.string()?,
            key: self.string()?,
        })
    }
    fn list<T>(&mut self, item: impl Fn(&mut Self) -> Result<T, Error>) -> Result<Vec<T>, Error> {
        let n = self.len(LIST_MAX)?;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }
}

/// The body of a reply with status ERROR (`remote_error`): only the number,
/// the domain and the message matter here.
fn decode_error(body: &[u8]) -> Error {
    let mut d = Dec::new(body);
    let parsed = (|| -> Result<Error, Error> {
        let code = d.i32()?;
        let domain = d.i32()?;
        let message = d
            .opt_string()?
            .unwrap_or_else(|| "libvirt reported an error without a message".into());
        Ok(Error {
            code,
            domain,
            message,
        })
    })();
    parsed.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------
// Handles.

/// A domain as the protocol names it (`remote_nonnull_domain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRef {
    pub name: String,
    pub uuid: [u8; 16],
    pub id: i32,
}

impl DomainRef {
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}

/// A guest interface's MAC and addresses (`virDomainInterface`).
pub struct Interface {
    pub hwaddr: Option<String>,
    pub addrs: Vec<IpAddress>,
}

/// One address of a guest interface (`virDomainIPAddress`).
pub struct IpAddress {
    pub addr: String,
    pub prefix: u32,
}

/// A storage pool (`remote_nonnull_storage_pool`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolRef {
    pub name: String,
    pub uuid: [u8; 16],
}

/// A storage volume (`remote_nonnull_storage_vol`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolRef {
    pub pool: String,
    pub name: String,
    pub key: String,
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let dashes_in_place = s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == b'-'));
    if !dashes_in_place {
        return None;
    }
    let hex: Vec<u8> = s.bytes().filter(|&c| c != b'-').collect();
    let mut u = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        u[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(u)
}

// ---------------------------------------------------------------------------
// URIs.

/// Where a daemon URI leads: the socket, and the URI the daemon opens.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub socket: PathBuf,
    pub name: String,
}

/// `driver[+unix]:///path[?socket=…]` → the socket and the name the daemon
/// opens (`driver:///path`), as libvirt's remote driver does for UNIX sockets.
pub fn target(uri: &str) -> Result<Target, Error> {
    let unsupported = |why: String| Error {
        code: ERR_NO_SUPPORT,
        domain: FROM_REMOTE,
        message: why,
    };
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| unsupported(format!("{uri:?} is not a libvirt URI")))?;
    let (driver, transport) = match scheme.split_once('+') {
        Some((d, t)) => (d, Some(t)),
        None => (scheme, None),
    };
    if !matches!(transport, None | Some("unix")) {
        return Err(unsupported(format!(
            "{uri}: bmcd speaks libvirt's protocol over UNIX sockets only; the {} transport needs bmcd built \
             with the libvirt-library feature",
            transport.unwrap_or_default()
        )));
    }
    let (authority_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (host, path) = match authority_path.find('/') {
        Some(i) => (&authority_path[..i], &authority_path[i..]),
        None => (authority_path, ""),
    };
    if !host.is_empty() {
        return Err(unsupported(format!(
            "{uri}: a remote host needs a network transport; bmcd speaks libvirt's protocol over local UNIX sockets only"
        )));
    }
    let mut socket = None;
    for param in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("socket", v)) if !v.is_empty() => socket = Some(PathBuf::from(v)),
            _ => {
                return Err(unsupported(format!(
                    "{uri}: unsupported URI parameter {param:?} (only socket=PATH)"
                )))
            }
        }
    }
    let name = format!("{driver}://{path}");
    let socket = match socket {
        Some(s) => s,
        None => default_socket(driver, path),
    };
    Ok(Target { socket, name })
}

/// The daemon's socket as libvirt finds it: the driver's own daemon
/// (`virtqemud`) where it runs, else libvirtd or virtproxyd.
fn default_socket(driver: &str, path: &str) -> PathBuf {
    let dir = if path == "/session" {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(|d| Path::new(&d).join("libvirt"))
            .unwrap_or_else(|| PathBuf::from("/run/libvirt"))
    } else {
        PathBuf::from("/run/libvirt")
    };
    let modular = dir.join(format!("virt{driver}d-sock"));
    if modular.exists() {
        modular
    } else {
        dir.join("libvirt-sock")
    }
}

// ---------------------------------------------------------------------------
// The connection.

/// A domain event, as far as bmcd looks at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// `VIR_DOMAIN_EVENT_ID_LIFECYCLE`: event and detail numbers.
    Lifecycle { uuid: String, event: i32, detail: i32 },
    /// A device was added or removed, or a tray opened or closed.
    Devices { uuid: String },
}

type EventSink = Box<dyn Fn(DomainEvent) + Send + Sync>;
type Reply = Result<Vec<u8>, Error>;

/// What the reader thread shares with callers.
struct Shared {
    /// Whose turn it is to write a message (calls and keepalive answers).
    write_turn: Mutex<()>,
    pending: Mutex<HashMap<u32, mpsc::Sender<Reply>>>,
    alive: AtomicBool,
    events: Mutex<Option<EventSink>>,
}

struct Inner {
    stream: UnixStream,
    serial: AtomicU32,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The reader sees end of file and ends; the daemon drops the client.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// One connection to a libvirt daemon; clones share it.
#[derive(Clone)]
pub struct Connection(Arc<Inner>);

impl Connection {
    /// Connects to the daemon behind `uri`, authenticates (none, or polkit for
    /// root) and opens the URI there. Every later call waits at most
    /// `timeout` for its reply.
    pub fn open(uri: &str, timeout: Duration) -> Result<Connection, Error> {
        let target = target(uri)?;
        let stream = UnixStream::connect(&target.socket).map_err(|e| Error {
            code: ERR_NO_CONNECT,
            domain: FROM_REMOTE,
            message: format!("cannot connect to libvirt at {}: {e}", target.socket.display()),
        })?;
        let _ = stream.set_write_timeout(Some(timeout));
        let reader = stream
            .try_clone()
            .map_err(|e| Error::rpc(format!("cannot share the libvirt socket: {e}")))?;
        let shared = Arc::new(Shared {
            write_turn: Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            events: Mutex::new(None),
        });
        let conn = Connection(Arc::new(Inner {
            stream,
            serial: AtomicU32::new(1),
            shared: Arc::clone(&shared),
            timeout,
        }));
        let writer = conn
            .0
            .stream
            .try_clone()
            .map_err(|e| Error::rpc(format!("cannot share the libvirt socket: {e}")))?;
        std::thread::Builder::new()
            .name("libvirt-wire".into())
            .spawn(move || read_loop(reader, writer, &shared))
            .map_err(|e| Error::rpc(format!("cannot start the libvirt reader thread: {e}")))?;

        let auth = conn.call(proc::AUTH_LIST, &Enc::default())?;
        let types = Dec::new(&auth).list(|d| d.i32())?;
        if !(types.is_empty() || types.contains(&0)) {
            if types.contains(&2) {
                let body = conn.call(proc::AUTH_POLKIT, &Enc::default())?;
                if Dec::new(&body).i32()? == 0 {
                    return Err(Error {
                        code: ERR_AUTH_FAILED,
                        domain: FROM_REMOTE,
                        message: format!("polkit refused access to {uri}"),
                    });
                }
            } else {
                return Err(Error {
                    code: ERR_AUTH_FAILED,
                    domain: FROM_REMOTE,
                    message: format!(
                        "{uri} asks for SASL authentication, which bmcd's libvirt client does not speak"
                    ),
                });
            }
        }
        let mut args = Enc::default();
        args.opt_string(Some(&target.name)).u32(0);
        conn.call(proc::CONNECT_OPEN, &args)?;
        Ok(conn)
    }

    pub fn is_alive(&self) -> bool {
        self.0.shared.alive.load(Ordering::Acquire)
    }

    fn call(&self, procedure: i32, args: &Enc) -> Result<Vec<u8>, Error> {
        if !self.is_alive() {
            return Err(Error::rpc("the connection to libvirt is closed"));
        }
        let serial = self.0.serial.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        self.0
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(serial, tx);
        let message = frame(REMOTE_PROGRAM, procedure, TYPE_CALL, serial, &args.0);
        let written = {
            let _turn = self
                .0
                .shared
                .write_turn
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (&self.0.stream).write_all(&message)
        };
        let forget = || {
            self.0
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&serial);
        };
        if let Err(e) = written {
            forget();
            self.0.shared.alive.store(false, Ordering::Release);
            let _ = self.0.stream.shutdown(std::net::Shutdown::Both);
            return Err(Error::rpc(format!("cannot send to libvirt: {e}")));
        }
        match rx.recv_timeout(self.0.timeout) {
            Ok(reply) => reply,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                forget();
                Err(Error {
                    code: ERR_OPERATION_TIMEOUT,
                    domain: FROM_RPC,
                    message: format!("libvirt did not answer within {} s", self.0.timeout.as_secs()),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::rpc("the connection to libvirt closed")),
        }
    }

    /// Where domain events go; set before registering for them.
    pub fn set_event_sink(&self, sink: EventSink) {
        *self
            .0
            .shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// `virConnectDomainEventRegisterAny` for every domain.
    pub fn register_domain_event(&self, event_id: i32) -> Result<i32, Error> {
        let mut a = Enc::default();
        a.i32(event_id).u32(0);
        let body = self.call(proc::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, &a)?;
        Dec::new(&body).i32()
    }

    fn void(&self, procedure: i32, args: &Enc) -> Result<(), Error> {
        self.call(procedure, args).map(|_| ())
    }

    fn dom_args(dom: &DomainRef) -> Enc {
        let mut a = Enc::default();
        a.domain(dom);
        a
    }

    pub fn lib_version(&self) -> Result<u64, Error> {
        Dec::new(&self.call(proc::CONNECT_GET_LIB_VERSION, &Enc::default())?).u64()
    }

    pub fn driver_type(&self) -> Result<String, Error> {
        Dec::new(&self.call(proc::CONNECT_GET_TYPE, &Enc::default())?).string()
    }

    /// (memory KiB, CPUs) of the host.
    pub fn node_info(&self) -> Result<(u64, u32), Error> {
        let body = self.call(proc::NODE_GET_INFO, &Enc::default())?;
        let mut d = Dec::new(&body);
        d.take(32 * 4)?; // char model[32]: each char an XDR int
        let memory = d.u64()?;
        let cpus = d.i32()?;
        Ok((memory, cpus.max(0) as u32))
    }

    pub fn list_all_domains(&self, flags: u32) -> Result<Vec<DomainRef>, Error> {
        let mut a = Enc::default();
        a.i32(1).u32(flags);
        let body = self.call(proc::CONNECT_LIST_ALL_DOMAINS, &a)?;
        Dec::new(&body).list(|d| d.domain())
    }

    pub fn lookup_domain_by_uuid(&self, uuid: &[u8; 16]) -> Result<DomainRef, Error> {
        let mut a = Enc::default();
        a.padded(uuid);
        Dec::new(&self.call(proc::DOMAIN_LOOKUP_BY_UUID, &a)?).domain()
    }

    pub fn lookup_domain_by_name(&self, name: &str) -> Result<DomainRef, Error> {
        let mut a = Enc::default();
        a.string(name);
        Dec::new(&self.call(proc::DOMAIN_LOOKUP_BY_NAME, &a)?).domain()
    }

    pub fn define_domain_xml(&self, xml: &str) -> Result<DomainRef, Error> {
        let mut a = Enc::default();
        a.string(xml);
        Dec::new(&self.call(proc::DOMAIN_DEFINE_XML, &a)?).domain()
    }

    pub fn domain_xml_desc(&self, dom: &DomainRef, flags: u32) -> Result<String, Error> {
        let mut a = Self::dom_args(dom);
        a.u32(flags);
        Dec::new(&self.call(proc::DOMAIN_GET_XML_DESC, &a)?).string()
    }

    /// (state, max memory KiB, memory KiB, vCPUs, CPU time ns).
    pub fn domain_info(&self, dom: &DomainRef) -> Result<(i32, u64, u64, u32, u64), Error> {
        let body = self.call(proc::DOMAIN_GET_INFO, &Self::dom_args(dom))?;
        let mut d = Dec::new(&body);
        Ok((d.i32()?, d.u64()?, d.u64()?, d.u32()?, d.u64()?))
    }

    /// (state, reason).
    pub fn domain_state(&self, dom: &DomainRef) -> Result<(i32, i32), Error> {
        let mut a = Self::dom_args(dom);
        a.u32(0);
        let body = self.call(proc::DOMAIN_GET_STATE, &a)?;
        let mut d = Dec::new(&body);
        Ok((d.i32()?, d.i32()?))
    }

    fn domain_flag(&self, procedure: i32, dom: &DomainRef) -> Result<bool, Error> {
        Ok(Dec::new(&self.call(procedure, &Self::dom_args(dom))?).i32()? != 0)
    }

    pub fn domain_is_active(&self, dom: &DomainRef) -> Result<bool, Error> {
        self.domain_flag(proc::DOMAIN_IS_ACTIVE, dom)
    }

    pub fn domain_is_persistent(&self, dom: &DomainRef) -> Result<bool, Error> {
        self.domain_flag(proc::DOMAIN_IS_PERSISTENT, dom)
    }

    /// (capacity, allocation, physical) in bytes; the reply carries
    /// allocation first.
    pub fn domain_block_info(
        &self,
        dom: &DomainRef,
        disk: &str,
        flags: u32,
    ) -> Result<(u64, u64, u64), Error> {
        let mut a = Self::dom_args(dom);
        a.string(disk).u32(flags);
        let body = self.call(proc::DOMAIN_GET_BLOCK_INFO, &a)?;
        let mut d = Dec::new(&body);
        let allocation = d.u64()?;
        let capacity = d.u64()?;
        let physical = d.u64()?;
        Ok((capacity, allocation, physical))
    }

    /// (read bytes, written bytes).
    pub fn domain_block_stats(&self, dom: &DomainRef, disk: &str) -> Result<(i64, i64), Error> {
        let mut a = Self::dom_args(dom);
        a.string(disk);
        let body = self.call(proc::DOMAIN_BLOCK_STATS, &a)?;
        let mut d = Dec::new(&body);
        let _rd_req = d.i64()?;
        let rd_bytes = d.i64()?;
        let _wr_req = d.i64()?;
        let wr_bytes = d.i64()?;
        Ok((rd_bytes, wr_bytes))
    }

    /// (received bytes, sent bytes).
    pub fn domain_interface_stats(&self, dom: &DomainRef, device: &str) -> Result<(i64, i64), Error> {
        let mut a = Self::dom_args(dom);
        a.string(device);
        let body = self.call(proc::DOMAIN_INTERFACE_STATS, &a)?;
        let mut d = Dec::new(&body);
        let rx_bytes = d.i64()?;
        d.take(3 * 8)?;
        let tx_bytes = d.i64()?;
        Ok((rx_bytes, tx_bytes))
    }

    /// Each interface's MAC and addresses (`virDomainInterfaceAddresses`).
    pub fn domain_interface_addresses(
        &self,
        dom: &DomainRef,
        source: u32,
        flags: u32,
    ) -> Result<Vec<Interface>, Error> {
        let mut a = Self::dom_args(dom);
        a.u32(source).u32(flags);
        let body = self.call(proc::DOMAIN_INTERFACE_ADDRESSES, &a)?;
        Dec::new(&body).list(|d| {
            let _name = d.string()?;
            let hwaddr = d.opt_string()?;
            let addrs = d.list(|d| {
                let _family = d.i32()?;
                Ok(IpAddress {
                    addr: d.string()?,
                    prefix: d.u32()?,
                })
            })?;
            Ok(Interface { hwaddr, addrs })
        })
    }

    fn domain_xml_call(&self, procedure: i32, dom: &DomainRef, xml: &str, flags: u32) -> Result<(), Error> {
        let mut a = Self::dom_args(dom);
        a.string(xml).u32(flags);
        self.void(procedure, &a)
    }

    pub fn domain_attach_device(&self, dom: &DomainRef, xml: &str, flags: u32) -> Result<(), Error> {
        self.domain_xml_call(proc::DOMAIN_ATTACH_DEVICE_FLAGS, dom, xml, flags)
    }

    pub fn domain_detach_device(&self, dom: &DomainRef, xml: &str, flags: u32) -> Result<(), Error> {
        self.domain_xml_call(proc::DOMAIN_DETACH_DEVICE_FLAGS, dom, xml, flags)
    }

    pub fn domain_update_device(&self, dom: &DomainRef, xml: &str, flags: u32) -> Result<(), Error> {
        self.domain_xml_call(proc::DOMAIN_UPDATE_DEVICE_FLAGS, dom, xml, flags)
    }

    /// Calls taking a domain only.
    pub fn domain_undefine(&self, dom: &DomainRef) -> Result<(), Error> {
        self.void(proc::DOMAIN_UNDEFINE, &Self::dom_args(dom))
    }

    pub fn domain_destroy(&self, dom: &DomainRef) -> Result<(), Error> {
        self.void(proc::DOMAIN_DESTROY, &Self::dom_args(dom))
    }

    pub fn domain_shutdown(&self, dom: &DomainRef) -> Result<(), Error> {
        self.void(proc::DOMAIN_SHUTDOWN, &Self::dom_args(dom))
    }

    pub fn domain_resume(&self, dom: &DomainRef) -> Result<(), Error> {
        self.void(proc::DOMAIN_RESUME, &Self::dom_args(dom))
    }

    /// Calls taking a domain and flags.
    fn domain_with_flags(&self, procedure: i32, dom: &DomainRef, flags: u32) -> Result<Vec<u8>, Error> {
        let mut a = Self::dom_args(dom);
        a.u32(flags);
        self.call(procedure, &a)
    }

    pub fn domain_create(&self, dom: &DomainRef, flags: u32) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_CREATE_WITH_FLAGS, dom, flags)
            .map(|_| ())
    }

    pub fn domain_undefine_flags(&self, dom: &DomainRef, flags: u32) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_UNDEFINE_FLAGS, dom, flags)
            .map(|_| ())
    }

    pub fn domain_reboot(&self, dom: &DomainRef, flags: u32) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_REBOOT, dom, flags)
            .map(|_| ())
    }

    pub fn domain_reset(&self, dom: &DomainRef) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_RESET, dom, 0).map(|_| ())
    }

    pub fn domain_pm_wakeup(&self, dom: &DomainRef, flags: u32) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_PM_WAKEUP, dom, flags)
            .map(|_| ())
    }

    pub fn domain_inject_nmi(&self, dom: &DomainRef) -> Result<(), Error> {
        self.domain_with_flags(proc::DOMAIN_INJECT_NMI, dom, 0)
            .map(|_| ())
    }

    pub fn domain_block_resize(
        &self,
        dom: &DomainRef,
        disk: &str,
        size: u64,
        flags: u32,
    ) -> Result<(), Error> {
        let mut a = Self::dom_args(dom);
        a.string(disk).u64(size).u32(flags);
        self.void(proc::DOMAIN_BLOCK_RESIZE, &a)
    }

    pub fn list_all_storage_pools(&self, flags: u32) -> Result<Vec<PoolRef>, Error> {
        let mut a = Enc::default();
        a.i32(1).u32(flags);
        let body = self.call(proc::CONNECT_LIST_ALL_STORAGE_POOLS, &a)?;
        Dec::new(&body).list(|d| d.pool())
    }

    pub fn lookup_storage_pool_by_name(&self, name: &str) -> Result<PoolRef, Error> {
        let mut a = Enc::default();
        a.string(name);
        Dec::new(&self.call(proc::STORAGE_POOL_LOOKUP_BY_NAME, &a)?).pool()
    }

    /// (state, capacity, allocation, available).
    pub fn pool_info(&self, pool: &PoolRef) -> Result<(u32, u64, u64, u64), Error> {
        let mut a = Enc::default();
        a.pool(pool);
        let body = self.call(proc::STORAGE_POOL_GET_INFO, &a)?;
        let mut d = Dec::new(&body);
        Ok((d.u32()?, d.u64()?, d.u64()?, d.u64()?))
    }

    pub fn pool_xml_desc(&self, pool: &PoolRef, flags: u32) -> Result<String, Error> {
        let mut a = Enc::default();
        a.pool(pool).u32(flags);
        Dec::new(&self.call(proc::STORAGE_POOL_GET_XML_DESC, &a)?).string()
    }

    pub fn pool_is_active(&self, pool: &PoolRef) -> Result<bool, Error> {
        let mut a = Enc::default();
        a.pool(pool);
        Ok(Dec::new(&self.call(proc::STORAGE_POOL_IS_ACTIVE, &a)?).i32()? != 0)
    }

    pub fn pool_refresh(&self, pool: &PoolRef, flags: u32) -> Result<(), Error> {
        let mut a = Enc::default();
        a.pool(pool).u32(flags);
        self.void(proc::STORAGE_POOL_REFRESH, &a)
    }

    pub fn pool_list_all_volumes(&self, pool: &PoolRef, flags: u32) -> Result<Vec<VolRef>, Error> {
        let mut a = Enc::default();
        a.pool(pool).i32(1).u32(flags);
        let body = self.call(proc::STORAGE_POOL_LIST_ALL_VOLUMES, &a)?;
        Dec::new(&body).list(|d| d.vol())
    }

    pub fn lookup_storage_vol_by_name(&self, pool: &PoolRef, name: &str) -> Result<VolRef, Error> {
        let mut a = Enc::default();
        a.pool(pool).string(name);
        Dec::new(&self.call(proc::STORAGE_VOL_LOOKUP_BY_NAME, &a)?).vol()
    }

    pub fn create_storage_vol(&self, pool: &PoolRef, xml: &str, flags: u32) -> Result<VolRef, Error> {
        let mut a = Enc::default();
        a.pool(pool).string(xml).u32(flags);
        Dec::new(&self.call(proc::STORAGE_VOL_CREATE_XML, &a)?).vol()
    }

    /// (type, capacity, allocation).
    pub fn vol_info(&self, vol: &VolRef) -> Result<(i32, u64, u64), Error> {
        let mut a = Enc::default();
        a.vol(vol);
        let body = self.call(proc::STORAGE_VOL_GET_INFO, &a)?;
        let mut d = Dec::new(&body);
        Ok((d.i32()?, d.u64()?, d.u64()?))
    }

    pub fn vol_xml_desc(&self, vol: &VolRef, flags: u32) -> Result<String, Error> {
        let mut a = Enc::default();
        a.vol(vol).u32(flags);
        Dec::new(&self.call(proc::STORAGE_VOL_GET_XML_DESC, &a)?).string()
    }

    pub fn vol_path(&self, vol: &VolRef) -> Result<String, Error> {
        let mut a = Enc::default();
        a.vol(vol);
        Dec::new(&self.call(proc::STORAGE_VOL_GET_PATH, &a)?).string()
    }

    pub fn vol_delete(&self, vol: &VolRef, flags: u32) -> Result<(), Error> {
        let mut a = Enc::default();
        a.vol(vol).u32(flags);
        self.void(proc::STORAGE_VOL_DELETE, &a)
    }

    pub fn vol_resize(&self, vol: &VolRef, capacity: u64, flags: u32) -> Result<(), Error> {
        let mut a = Enc::default();
        a.vol(vol).u64(capacity).u32(flags);
        self.void(proc::STORAGE_VOL_RESIZE, &a)
    }

    /// Says goodbye to the daemon (`virConnectClose`); the socket closes when
    /// the last clone goes.
    pub fn close(&self) {
        let _ = self.call(proc::CONNECT_CLOSE, &Enc::default());
    }
}

fn frame(program: u32, procedure: i32, kind: i32, serial: u32, body: &[u8]) -> Vec<u8> {
    let len = 4 + HEADER_LEN + body.len();
    let mut m = Enc(Vec::with_capacity(len));
    m.u32(len as u32)
        .u32(program)
        .u32(REMOTE_VERSION)
        .i32(procedure)
        .i32(kind)
        .u32(serial)
        .i32(STATUS_OK);
    m.0.extend_from_slice(body);
    m.0
}

/// Reads messages until the socket closes, then fails every waiting call.
fn read_loop(mut reader: UnixStream, mut writer: UnixStream, shared: &Shared) {
    let result = (|| -> Result<(), Error> {
        loop {
            let mut len = [0u8; 4];
            reader
                .read_exact(&mut len)
                .map_err(|e| Error::rpc(format!("libvirt closed the connection: {e}")))?;
            let len = u32::from_be_bytes(len) as usize;
            if !(4 + HEADER_LEN..=MESSAGE_MAX).contains(&len) {
                return Err(Error::rpc(format!("libvirt sent a message of {len} bytes")));
            }
            let mut message = vec![0u8; len - 4];
            reader
                .read_exact(&mut message)
                .map_err(|e| Error::rpc(format!("libvirt closed the connection: {e}")))?;
            let mut d = Dec::new(&message);
            let program = d.u32()?;
            let _version = d.u32()?;
            let procedure = d.i32()?;
            let kind = d.i32()?;
            let serial = d.u32()?;
            let status = d.i32()?;
            let body = &message[HEADER_LEN..];
            match (program, kind) {
                (KEEPALIVE_PROGRAM, TYPE_MESSAGE) if procedure == KEEPALIVE_PING => {
                    let pong = frame(KEEPALIVE_PROGRAM, KEEPALIVE_PONG, TYPE_MESSAGE, 0, &[]);
                    let _turn = shared.write_turn.lock().unwrap_or_else(PoisonError::into_inner);
                    writer
                        .write_all(&pong)
                        .map_err(|e| Error::rpc(format!("cannot answer libvirt's keepalive: {e}")))?;
                }
                (REMOTE_PROGRAM, TYPE_REPLY) => {
                    let waiting = shared
                        .pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&serial);
                    if let Some(tx) = waiting {
                        let reply = match status {
                            STATUS_OK => Ok(body.to_vec()),
                            STATUS_ERROR => Err(decode_error(body)),
                            other => Err(Error::rpc(format!("libvirt replied with status {other}"))),
                        };
                        let _ = tx.send(reply);
                    }
                }
                (REMOTE_PROGRAM, TYPE_MESSAGE) => {
                    if let Some(event) = decode_event(procedure, body) {
                        if let Some(sink) = shared
                            .events
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .as_ref()
                        {
                            sink(event);
                        }
                    }
                }
                _ => {} // streams and other programs: bmcd opens none
            }
        }
    })();
    shared.alive.store(false, Ordering::Release);
    let _ = reader.shutdown(std::net::Shutdown::Both);
    let err = result
        .err()
        .unwrap_or_else(|| Error::rpc("libvirt closed the connection"));
    for (_, tx) in shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain()
    {
        let _ = tx.send(Err(err.clone()));
    }
}

/// The domain events bmcd registers for; every callback message starts with
/// the callback id and the domain.
fn decode_event(procedure: i32, body: &[u8]) -> Option<DomainEvent> {
    let mut d = Dec::new(body);
    match procedure {
        proc::DOMAIN_EVENT_CALLBACK_LIFECYCLE => {
            let _callback = d.i32().ok()?;
            let dom = d.domain().ok()?;
            let event = d.i32().ok()?;
            let detail = d.i32().ok()?;
            Some(DomainEvent::Lifecycle {
                uuid: dom.uuid_string(),
                event,
                detail,
            })
        }
        proc::DOMAIN_EVENT_CALLBACK_TRAY_CHANGE
        | proc::DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED
        | proc::DOMAIN_EVENT_CALLBACK_DEVICE_ADDED => {
            let _callback = d.i32().ok()?;
            let dom = d.domain().ok()?;
            Some(DomainEvent::Devices {
                uuid: dom.uuid_string(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdr_strings_are_padded_to_four_bytes() {
        let mut e = Enc::default();
        e.string("abcde").opt_string(None).opt_string(Some("x"));
        assert_eq!(
            e.0,
            [
                0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, b'x',
                0, 0, 0
            ]
        );
        let mut d = Dec::new(&e.0);
        assert_eq!(d.string().expect("test value"), "abcde");
        assert_eq!(d.opt_string().expect("test value"), None);
        assert_eq!(d.opt_string().expect("test value").as_deref(), Some("x"));
        assert!(d.u32().is_err(), "nothing is left");
    }

    #[test]
    fn domains_round_trip_and_uuids_print_as_libvirt_does() {
        let uuid = parse_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f").expect("test value");
        let dom = DomainRef {
            name: "test".into(),
            uuid,
            id: 1,
        };
        let mut e = Enc::default();
        e.domain(&dom);
        assert_eq!(e.0.len(), 4 + 4 + 16 + 4);
        assert_eq!(Dec::new(&e.0).domain().expect("test value"), dom);
        assert_eq!(dom.uuid_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
        assert_eq!(parse_uuid("6695eb01f6a4830479aa97f2502e193f----"), None);
        assert_eq!(parse_uuid("6695eb01-f6a4-8304-79aa-97f2502e193"), None);
    }

    #[test]
    fn hostile_lengths_are_refused_not_allocated() {
        let mut e = Enc::default();
        e.u32(u32::MAX);
        assert!(Dec::new(&e.0).string().is_err());
        assert!(Dec::new(&e.0).list(|d| d.u32()).is_err());
        let mut e = Enc::default();
        e.u32(8).padded(b"abc");
        assert!(Dec::new(&e.0).string().is_err(), "truncated");
    }

    #[test]
    fn errors_carry_number_domain_and_message() {
        let mut e = Enc::default();
        e.i32(42)
            .i32(10)
            .opt_string(Some("Domain not found: no domain with matching uuid"));
        e.i32(2).u32(0).u32(0).u32(0).u32(0).i32(0).i32(0).u32(0);
        let err = decode_error(&e.0);
        assert_eq!(err.code, 42);
        assert_eq!(err.domain, 10);
        assert!(err.message.starts_with("Domain not found"));
    }

    #[test]
    fn uris_name_the_socket_and_what_the_daemon_opens() {
        let t = target("test+unix:///default?socket=/tmp/x/libvirt-sock").expect("test value");
        assert_eq!(t.socket, PathBuf::from("/tmp/x/libvirt-sock"));
        assert_eq!(t.name, "test:///default");
        let t = target("qemu:///system?socket=/run/s").expect("test value");
        assert_eq!(t.name, "qemu:///system");
        let t = target("test+unix:///srv/node-10.xml?socket=/s").expect("test value");
        assert_eq!(t.name, "test:///srv/node-10.xml");
        assert!(target("qemu+tcp://host/system").is_err());
        assert!(target("qemu+unix://host/system").is_err());
        assert!(target("qemu:///system?no_verify=1").is_err());
        assert!(target("not a uri").is_err());
    }

    #[test]
    fn events_name_their_domain() {
        let dom = DomainRef {
            name: "vm".into(),
            uuid: [1; 16],
            id: 3,
        };
        let mut e = Enc::default();
        e.i32(7).domain(&dom).i32(5).i32(2);
        assert_eq!(
            decode_event(proc::DOMAIN_EVENT_CALLBACK_LIFECYCLE, &e.0),
            Some(DomainEvent::Lifecycle {
                uuid: dom.uuid_string(),
                event: 5,
                detail: 2
            })
        );
        let mut e = Enc::default();
        e.i32(7).domain(&dom).string("ua-cd0");
        assert_eq!(
            decode_event(proc::DOMAIN_EVENT_CALLBACK_DEVICE_ADDED, &e.0),
            Some(DomainEvent::Devices {
                uuid: dom.uuid_string()
            })
        );
        assert_eq!(decode_event(999, &e.0), None);
    }
}
