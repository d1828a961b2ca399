//! The libvirt calls bmcd makes, over one of two clients:
//!
//! - **protocol** ([`super::wire`]): libvirt's RPC protocol spoken by bmcd
//!   itself over a daemon's UNIX socket. Every URI that names a daemon
//!   (`qemu:///system`, `test+unix:///default?socket=…`) goes this way, and it
//!   is the only client of a bmcd built without the `libvirt-library` feature,
//!   which then loads no libvirt library at all.
//! - **library** (feature `libvirt-library`, on by default): libvirt.so
//!   through the `virt` crate, for what only it can do: the in-process test
//!   driver (`test:///default`, bmcd's embedded default) and the network
//!   transports (`qemu+ssh://`, `qemu+tls://`).
//!
//! The types here carry libvirt's names and numbers, so the rest of the
//! module reads the same whichever client answers.

use std::time::Duration;

use tokio::sync::broadcast;

use super::wire;
use crate::model::SystemEvent;

/// libvirt flag values (libvirt-domain.h, libvirt-storage.h); part of
/// libvirt's stable ABI.
pub mod flags {
    pub const XML_SECURE: u32 = 1;
    pub const XML_INACTIVE: u32 = 2;
    pub const AFFECT_LIVE: u32 = 1;
    pub const AFFECT_CONFIG: u32 = 2;
    pub const DEVICE_MODIFY_FORCE: u32 = 4;
    pub const START_RESET_NVRAM: u32 = 32;
    pub const UNDEFINE_NVRAM: u32 = 4;
    pub const BLOCK_RESIZE_BYTES: u32 = 1;
    pub const LIST_DOMAINS_ACTIVE: u32 = 1;
    pub const INTERFACE_ADDRESSES_SRC_LEASE: u32 = 0;
    pub const INTERFACE_ADDRESSES_SRC_ARP: u32 = 2;
}

/// libvirt error numbers (`virErrorNumber`) and domains (`virErrorDomain`).
pub mod codes {
    pub const INTERNAL_ERROR: i32 = 1;
    pub const NO_SUPPORT: i32 = 3;
    pub const NO_CONNECT: i32 = 5;
    pub const INVALID_CONN: i32 = 6;
    pub const INVALID_ARG: i32 = 8;
    pub const RPC: i32 = 39;
    pub const NO_DOMAIN: i32 = 42;
    pub const AUTH_FAILED: i32 = 45;
    pub const NO_STORAGE_POOL: i32 = 49;
    pub const NO_STORAGE_VOL: i32 = 50;
    pub const OPERATION_TIMEOUT: i32 = 68;
    pub const OPERATION_UNSUPPORTED: i32 = 84;
    pub const STORAGE_VOL_EXIST: i32 = 90;
    pub const FROM_RPC: i32 = 7;
    pub const FROM_REMOTE: i32 = 13;
}

/// `VIR_DOMAIN_EVENT_ID_*`.
pub mod event_ids {
    pub const LIFECYCLE: i32 = 0;
    pub const TRAY_CHANGE: i32 = 10;
    pub const DEVICE_REMOVED: i32 = 15;
    pub const DEVICE_ADDED: i32 = 19;
}

pub type Error = wire::Error;

impl Error {
    pub fn code(&self) -> i32 {
        self.code
    }
    pub fn domain(&self) -> i32 {
        self.domain
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(feature = "libvirt-library")]
impl From<virt::error::Error> for Error {
    fn from(e: virt::error::Error) -> Error {
        Error {
            code: e.code().to_raw() as i32,
            domain: e.domain().to_raw() as i32,
            message: e.message().to_owned(),
        }
    }
}

#[cfg(feature = "libvirt-library")]
fn lib<T>(r: Result<T, virt::error::Error>) -> Result<T, Error> {
    r.map_err(Error::from)
}

/// `virDomainState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    PmSuspended,
}

impl DomainState {
    fn from_raw(n: i64) -> DomainState {
        match n {
            1 => DomainState::Running,
            2 => DomainState::Blocked,
            3 => DomainState::Paused,
            4 => DomainState::Shutdown,
            5 => DomainState::Shutoff,
            6 => DomainState::Crashed,
            7 => DomainState::PmSuspended,
            _ => DomainState::NoState,
        }
    }
}

pub struct NodeInfo {
    /// KiB.
    pub memory: u64,
    pub cpus: u32,
}

pub struct DomainInfo {
    pub max_mem: u64,
    pub memory: u64,
    pub nr_virt_cpu: u32,
    pub cpu_time: u64,
}

pub struct BlockInfo {
    pub capacity: u64,
}

pub struct BlockStats {
    pub rd_bytes: i64,
    pub wr_bytes: i64,
}

pub struct InterfaceStats {
    pub rx_bytes: i64,
    pub tx_bytes: i64,
}

pub use wire::{Interface, IpAddress};

pub struct StoragePoolInfo {
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

pub struct StorageVolInfo {
    pub capacity: u64,
    pub allocation: u64,
}

/// Whether `uri` needs libvirt.so: an in-process driver (no daemon) or a
/// network transport.
pub fn needs_library(uri: &str) -> bool {
    let scheme = uri.split_once("://").map(|(s, _)| s).unwrap_or(uri);
    match scheme.split_once('+') {
        Some((_, transport)) => transport != "unix",
        None => scheme == "test",
    }
}

/// A connection to libvirt.
pub enum Connect {
    #[cfg(feature = "libvirt-library")]
    Library(virt::connect::Connect),
    Protocol(wire::Connection),
}

impl Connect {
    /// Opens `uri` with the client it needs; `timeout` bounds each call of the
    /// protocol client (libvirt.so has its own keepalive).
    pub fn open(uri: &str, timeout: Duration) -> Result<Connect, Error> {
        if needs_library(uri) {
            #[cfg(feature = "libvirt-library")]
            {
                // Errors come back as values; libvirt's default handler would also
                // print each one (even an expected "domain not found") to stderr.
                virt::error::clear_error_callback();
                super::events::start_event_loop();
                return lib(virt::connect::Connect::open(Some(uri))).map(Connect::Library);
            }
            #[cfg(not(feature = "libvirt-library"))]
            {
                return Err(Error {
                    code: codes::NO_SUPPORT,
                    domain: codes::FROM_REMOTE,
                    message: format!(
                        "{uri} needs libvirt.so (an in-process driver or a network transport), and this bmcd is \
                         built without the libvirt-library feature; reach a daemon over its UNIX socket instead, \
                         e.g. test+unix:///default?socket=/run/libvirt/libvirt-sock"
                    ),
                });
            }
        }
        let _ = timeout;
        wire::Connection::open(uri, timeout.max(Duration::from_secs(30))).map(Connect::Protocol)
    }

    /// Which client this is, for logs and docs.
    pub fn client(&self) -> &'static str {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(_) => "libvirt.so",
            Connect::Protocol(_) => "protocol",
        }
    }

    pub fn is_alive(&self) -> bool {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => c.is_alive().unwrap_or(false),
            Connect::Protocol(c) => c.is_alive(),
        }
    }

    /// libvirt.so's keepalive; the protocol client sees a daemon go when its
    /// socket closes, and a hung one when a call times out.
    pub fn set_keep_alive(&self, interval: i32, count: u32) {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => {
                let _ = c.set_keep_alive(interval, count);
            }
            Connect::Protocol(_) => {
                let _ = (interval, count);
            }
        }
    }

    /// Sends every domain event to `tx`; false when libvirt refuses the
    /// lifecycle events.
    pub fn subscribe(&self, tx: broadcast::Sender<SystemEvent>) -> bool {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => super::events::subscribe_library(c, tx),
            Connect::Protocol(c) => super::events::subscribe_protocol(c, tx),
        }
    }

    pub fn lib_version(&self) -> Result<u64, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.lib_version()).map(u64::from),
            Connect::Protocol(c) => c.lib_version(),
        }
    }

    pub fn driver_type(&self) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.driver_type()),
            Connect::Protocol(c) => c.driver_type(),
        }
    }

    pub fn node_info(&self) -> Result<NodeInfo, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.node_info()).map(|n| NodeInfo {
                memory: n.memory,
                cpus: n.cpus,
            }),
            Connect::Protocol(c) => c.node_info().map(|(memory, cpus)| NodeInfo { memory, cpus }),
        }
    }

    pub fn list_all_domains(&self, flags: u32) -> Result<Vec<Domain>, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => {
                lib(c.list_all_domains(flags)).map(|v| v.into_iter().map(Domain::Library).collect())
            }
            Connect::Protocol(c) => c
                .list_all_domains(flags)
                .map(|v| v.into_iter().map(|d| Domain::protocol(c, d)).collect()),
        }
    }

    pub fn lookup_domain_by_uuid_string(&self, uuid: &str) -> Result<Domain, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.lookup_domain_by_uuid_string(uuid)).map(Domain::Library),
            Connect::Protocol(c) => {
                let raw = wire::parse_uuid(uuid).ok_or_else(|| Error {
                    code: codes::INVALID_ARG,
                    domain: codes::FROM_REMOTE,
                    message: format!("{uuid} is not a UUID"),
                })?;
                c.lookup_domain_by_uuid(&raw).map(|d| Domain::protocol(c, d))
            }
        }
    }

    pub fn lookup_domain_by_name(&self, name: &str) -> Result<Domain, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.lookup_domain_by_name(name)).map(Domain::Library),
            Connect::Protocol(c) => c.lookup_domain_by_name(name).map(|d| Domain::protocol(c, d)),
        }
    }

    pub fn define_domain_xml(&self, xml: &str) -> Result<Domain, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.define_domain_xml(xml)).map(Domain::Library),
            Connect::Protocol(c) => c.define_domain_xml(xml).map(|d| Domain::protocol(c, d)),
        }
    }

    pub fn list_all_storage_pools(&self, flags: u32) -> Result<Vec<StoragePool>, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.list_all_storage_pools(flags))
                .map(|v| v.into_iter().map(StoragePool::Library).collect()),
            Connect::Protocol(c) => c.list_all_storage_pools(flags).map(|v| {
                v.into_iter()
                    .map(|p| StoragePool::Protocol(c.clone(), p))
                    .collect()
            }),
        }
    }

    pub fn lookup_storage_pool_by_name(&self, name: &str) -> Result<StoragePool, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Connect::Library(c) => lib(c.lookup_storage_pool_by_name(name)).map(StoragePool::Library),
            Connect::Protocol(c) => c
                .lookup_storage_pool_by_name(name)
                .map(|p| StoragePool::Protocol(c.clone(), p)),
        }
    }
}

impl Drop for Connect {
    #[allow(irrefutable_let_patterns)] // one client only without libvirt-library
    fn drop(&mut self) {
        if let Connect::Protocol(c) = self {
            if c.is_alive() {
                c.close();
            }
        }
    }
}

/// A domain.
pub enum Domain {
    #[cfg(feature = "libvirt-library")]
    Library(virt::domain::Domain),
    Protocol(wire::Connection, wire::DomainRef),
}

macro_rules! on_domain {
    ($self:ident, $lib:ident => $l:expr, $conn:ident, $dom:ident => $p:expr) => {
        match $self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library($lib) => lib($l),
            Domain::Protocol($conn, $dom) => $p,
        }
    };
}

impl Domain {
    fn protocol(c: &wire::Connection, d: wire::DomainRef) -> Domain {
        Domain::Protocol(c.clone(), d)
    }

    pub fn uuid_string(&self) -> Result<String, Error> {
        on_domain!(self, d => d.uuid_string(), _c, d => Ok(d.uuid_string()))
    }

    pub fn name(&self) -> Result<String, Error> {
        on_domain!(self, d => d.name(), _c, d => Ok(d.name.clone()))
    }

    pub fn info(&self) -> Result<DomainInfo, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.info()).map(|i| DomainInfo {
                max_mem: i.max_mem,
                memory: i.memory,
                nr_virt_cpu: i.nr_virt_cpu,
                cpu_time: i.cpu_time,
            }),
            Domain::Protocol(c, d) => c
                .domain_info(d)
                .map(|(_, max_mem, memory, nr_virt_cpu, cpu_time)| DomainInfo {
                    max_mem,
                    memory,
                    nr_virt_cpu,
                    cpu_time,
                }),
        }
    }

    pub fn state(&self) -> Result<DomainState, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.state()).map(|(s, _)| DomainState::from_raw(s.to_raw() as i64)),
            Domain::Protocol(c, d) => c.domain_state(d).map(|(s, _)| DomainState::from_raw(s.into())),
        }
    }

    pub fn is_active(&self) -> Result<bool, Error> {
        on_domain!(self, d => d.is_active(), c, d => c.domain_is_active(d))
    }

    pub fn is_persistent(&self) -> Result<bool, Error> {
        on_domain!(self, d => d.is_persistent(), c, d => c.domain_is_persistent(d))
    }

    pub fn xml_desc(&self, flags: u32) -> Result<String, Error> {
        on_domain!(self, d => d.xml_desc(flags), c, d => c.domain_xml_desc(d, flags))
    }

    pub fn block_info(&self, disk: &str, flags: u32) -> Result<BlockInfo, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.block_info(disk, flags)).map(|b| BlockInfo { capacity: b.capacity }),
            Domain::Protocol(c, d) => c
                .domain_block_info(d, disk, flags)
                .map(|(capacity, _, _)| BlockInfo { capacity }),
        }
    }

    pub fn block_stats(&self, disk: &str) -> Result<BlockStats, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.block_stats(disk)).map(|b| BlockStats {
                rd_bytes: b.rd_bytes,
                wr_bytes: b.wr_bytes,
            }),
            Domain::Protocol(c, d) => c
                .domain_block_stats(d, disk)
                .map(|(rd_bytes, wr_bytes)| BlockStats { rd_bytes, wr_bytes }),
        }
    }

    pub fn interface_stats(&self, device: &str) -> Result<InterfaceStats, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.interface_stats(device)).map(|i| InterfaceStats {
                rx_bytes: i.rx_bytes,
                tx_bytes: i.tx_bytes,
            }),
            Domain::Protocol(c, d) => c
                .domain_interface_stats(d, device)
                .map(|(rx_bytes, tx_bytes)| InterfaceStats { rx_bytes, tx_bytes }),
        }
    }

    pub fn interface_addresses(&self, source: u32, flags: u32) -> Result<Vec<Interface>, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => lib(d.interface_addresses(source, flags)).map(|v| {
                v.into_iter()
                    .map(|i| Interface {
                        hwaddr: i.hwaddr,
                        addrs: i
                            .addrs
                            .into_iter()
                            .map(|a| IpAddress {
                                addr: a.addr,
                                prefix: a.prefix as u32,
                            })
                            .collect(),
                    })
                    .collect()
            }),
            Domain::Protocol(c, d) => c.domain_interface_addresses(d, source, flags),
        }
    }

    pub fn update_device_flags(&self, xml: &str, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.update_device_flags(xml, flags).map(|_| ()), c, d => c.domain_update_device(d, xml, flags))
    }

    pub fn attach_device_flags(&self, xml: &str, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.attach_device_flags(xml, flags).map(|_| ()), c, d => c.domain_attach_device(d, xml, flags))
    }

    pub fn detach_device_flags(&self, xml: &str, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.detach_device_flags(xml, flags).map(|_| ()), c, d => c.domain_detach_device(d, xml, flags))
    }

    pub fn undefine(&self) -> Result<(), Error> {
        on_domain!(self, d => d.undefine(), c, d => c.domain_undefine(d))
    }

    pub fn undefine_flags(&self, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.undefine_flags(flags), c, d => c.domain_undefine_flags(d, flags))
    }

    pub fn create(&self) -> Result<(), Error> {
        on_domain!(self, d => d.create().map(|_| ()), c, d => c.domain_create(d, 0))
    }

    pub fn create_with_flags(&self, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.create_with_flags(flags).map(|_| ()), c, d => c.domain_create(d, flags))
    }

    pub fn destroy(&self) -> Result<(), Error> {
        on_domain!(self, d => d.destroy(), c, d => c.domain_destroy(d))
    }

    pub fn shutdown(&self) -> Result<(), Error> {
        on_domain!(self, d => d.shutdown().map(|_| ()), c, d => c.domain_shutdown(d))
    }

    pub fn reboot(&self, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.reboot(flags), c, d => c.domain_reboot(d, flags))
    }

    pub fn reset(&self) -> Result<(), Error> {
        on_domain!(self, d => d.reset().map(|_| ()), c, d => c.domain_reset(d))
    }

    pub fn resume(&self) -> Result<(), Error> {
        on_domain!(self, d => d.resume().map(|_| ()), c, d => c.domain_resume(d))
    }

    pub fn pm_wakeup(&self, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.pm_wakeup(flags).map(|_| ()), c, d => c.domain_pm_wakeup(d, flags))
    }

    pub fn inject_nmi(&self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            Domain::Library(d) => {
                // SAFETY: `d` holds a valid virDomainPtr for the duration of the
                // call, and virDomainInjectNMI neither keeps nor frees it.
                let rc = unsafe { virt::sys::virDomainInjectNMI(d.as_ptr(), 0) };
                if rc < 0 {
                    Err(Error::from(virt::error::Error::last_error()))
                } else {
                    Ok(())
                }
            }
            Domain::Protocol(c, d) => c.domain_inject_nmi(d),
        }
    }

    pub fn block_resize(&self, disk: &str, size: u64, flags: u32) -> Result<(), Error> {
        on_domain!(self, d => d.block_resize(disk, size, flags).map(|_| ()), c, d => c.domain_block_resize(d, disk, size, flags))
    }
}

/// A storage pool.
pub enum StoragePool {
    #[cfg(feature = "libvirt-library")]
    Library(virt::storage_pool::StoragePool),
    Protocol(wire::Connection, wire::PoolRef),
}

impl StoragePool {
    pub fn name(&self) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.name()),
            StoragePool::Protocol(_, p) => Ok(p.name.clone()),
        }
    }

    pub fn info(&self) -> Result<StoragePoolInfo, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.info()).map(|i| StoragePoolInfo {
                capacity: i.capacity,
                allocation: i.allocation,
                available: i.available,
            }),
            StoragePool::Protocol(c, p) => {
                c.pool_info(p)
                    .map(|(_, capacity, allocation, available)| StoragePoolInfo {
                        capacity,
                        allocation,
                        available,
                    })
            }
        }
    }

    pub fn xml_desc(&self, flags: u32) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.xml_desc(flags)),
            StoragePool::Protocol(c, p) => c.pool_xml_desc(p, flags),
        }
    }

    pub fn is_active(&self) -> Result<bool, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.is_active()),
            StoragePool::Protocol(c, p) => c.pool_is_active(p),
        }
    }

    pub fn refresh(&self, flags: u32) -> Result<(), Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.refresh(flags).map(|_| ())),
            StoragePool::Protocol(c, p) => c.pool_refresh(p, flags),
        }
    }

    pub fn list_all_volumes(&self, flags: u32) -> Result<Vec<StorageVol>, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => {
                lib(p.list_all_volumes(flags)).map(|v| v.into_iter().map(StorageVol::Library).collect())
            }
            StoragePool::Protocol(c, p) => c.pool_list_all_volumes(p, flags).map(|v| {
                v.into_iter()
                    .map(|v| StorageVol::Protocol(c.clone(), v))
                    .collect()
            }),
        }
    }

    pub fn lookup_storage_vol_by_name(&self, name: &str) -> Result<StorageVol, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => lib(p.lookup_storage_vol_by_name(name)).map(StorageVol::Library),
            StoragePool::Protocol(c, p) => c
                .lookup_storage_vol_by_name(p, name)
                .map(|v| StorageVol::Protocol(c.clone(), v)),
        }
    }

    pub fn create_volume(&self, xml: &str, flags: u32) -> Result<StorageVol, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StoragePool::Library(p) => {
                lib(virt::storage_vol::StorageVol::create_xml(p, xml, flags)).map(StorageVol::Library)
            }
            StoragePool::Protocol(c, p) => c
                .create_storage_vol(p, xml, flags)
                .map(|v| StorageVol::Protocol(c.clone(), v)),
        }
    }
}

/// A storage volume.
pub enum StorageVol {
    #[cfg(feature = "libvirt-library")]
    Library(virt::storage_vol::StorageVol),
    Protocol(wire::Connection, wire::VolRef),
}

impl StorageVol {
    pub fn name(&self) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.name()),
            StorageVol::Protocol(_, v) => Ok(v.name.clone()),
        }
    }

    pub fn info(&self) -> Result<StorageVolInfo, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.info()).map(|i| StorageVolInfo {
                capacity: i.capacity,
                allocation: i.allocation,
            }),
            StorageVol::Protocol(c, v) => c
                .vol_info(v)
                .map(|(_, capacity, allocation)| StorageVolInfo { capacity, allocation }),
        }
    }

    pub fn xml_desc(&self, flags: u32) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.xml_desc(flags)),
            StorageVol::Protocol(c, v) => c.vol_xml_desc(v, flags),
        }
    }

    pub fn path(&self) -> Result<String, Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.path()),
            StorageVol::Protocol(c, v) => c.vol_path(v),
        }
    }

    pub fn delete(&self, flags: u32) -> Result<(), Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.delete(flags)),
            StorageVol::Protocol(c, v) => c.vol_delete(v, flags),
        }
    }

    pub fn resize(&self, capacity: u64, flags: u32) -> Result<(), Error> {
        match self {
            #[cfg(feature = "libvirt-library")]
            StorageVol::Library(v) => lib(v.resize(capacity, flags)),
            StorageVol::Protocol(c, v) => c.vol_resize(v, capacity, flags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_in_process_drivers_and_network_transports_need_the_library() {
        assert!(needs_library("test:///default"));
        assert!(needs_library("qemu+ssh://root@host/system"));
        assert!(needs_library("qemu+tls://host/system"));
        assert!(!needs_library("qemu:///system"));
        assert!(!needs_library("qemu:///system?socket=/tmp/s"));
        assert!(!needs_library("test+unix:///default?socket=/tmp/s"));
    }

    #[cfg(feature = "libvirt-library")]
    #[test]
    fn numbers_match_libvirt_headers() {
        use virt::sys;
        assert_eq!(flags::XML_SECURE, sys::VIR_DOMAIN_XML_SECURE);
        assert_eq!(flags::XML_INACTIVE, sys::VIR_DOMAIN_XML_INACTIVE);
        assert_eq!(flags::AFFECT_LIVE, sys::VIR_DOMAIN_AFFECT_LIVE);
        assert_eq!(flags::AFFECT_CONFIG, sys::VIR_DOMAIN_AFFECT_CONFIG);
        assert_eq!(flags::DEVICE_MODIFY_FORCE, sys::VIR_DOMAIN_DEVICE_MODIFY_FORCE);
        assert_eq!(flags::START_RESET_NVRAM, sys::VIR_DOMAIN_START_RESET_NVRAM);
        assert_eq!(flags::UNDEFINE_NVRAM, sys::VIR_DOMAIN_UNDEFINE_NVRAM);
        assert_eq!(flags::BLOCK_RESIZE_BYTES, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES);
        assert_eq!(flags::LIST_DOMAINS_ACTIVE, sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE);
        assert_eq!(
            flags::INTERFACE_ADDRESSES_SRC_LEASE,
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE
        );
        assert_eq!(
            flags::INTERFACE_ADDRESSES_SRC_ARP,
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP
        );
        assert_eq!(codes::NO_DOMAIN as u32, sys::VIR_ERR_NO_DOMAIN);
        assert_eq!(codes::NO_SUPPORT as u32, sys::VIR_ERR_NO_SUPPORT);
        assert_eq!(
            codes::OPERATION_UNSUPPORTED as u32,
            sys::VIR_ERR_OPERATION_UNSUPPORTED
        );
        assert_eq!(codes::NO_CONNECT as u32, sys::VIR_ERR_NO_CONNECT);
        assert_eq!(codes::INVALID_CONN as u32, sys::VIR_ERR_INVALID_CONN);
        assert_eq!(codes::INVALID_ARG as u32, sys::VIR_ERR_INVALID_ARG);
        assert_eq!(codes::RPC as u32, sys::VIR_ERR_RPC);
        assert_eq!(codes::AUTH_FAILED as u32, sys::VIR_ERR_AUTH_FAILED);
        assert_eq!(codes::OPERATION_TIMEOUT as u32, sys::VIR_ERR_OPERATION_TIMEOUT);
        assert_eq!(codes::NO_STORAGE_POOL as u32, sys::VIR_ERR_NO_STORAGE_POOL);
        assert_eq!(codes::NO_STORAGE_VOL as u32, sys::VIR_ERR_NO_STORAGE_VOL);
        assert_eq!(codes::STORAGE_VOL_EXIST as u32, sys::VIR_ERR_STORAGE_VOL_EXIST);
        assert_eq!(codes::FROM_RPC as u32, sys::VIR_FROM_RPC);
        assert_eq!(codes::FROM_REMOTE as u32, sys::VIR_FROM_REMOTE);
        assert_eq!(event_ids::LIFECYCLE as u32, sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE);
        assert_eq!(
            event_ids::TRAY_CHANGE as u32,
            sys::VIR_DOMAIN_EVENT_ID_TRAY_CHANGE
        );
        assert_eq!(
            event_ids::DEVICE_REMOVED as u32,
            sys::VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED
        );
        assert_eq!(
            event_ids::DEVICE_ADDED as u32,
            sys::VIR_DOMAIN_EVENT_ID_DEVICE_ADDED
        );
    }
}
