//! The libvirt backend: implements [`Hypervisor`] over [`client`] (libvirt's
//! RPC protocol spoken by bmcd, or libvirt.so through the `virt` crate).
//!
//! libvirt calls block, so they never run on the async runtime: a small pool of
//! worker threads shares one connection (both clients are thread-safe) and
//! takes jobs from a bounded queue; each job answers on its own oneshot
//! channel, and every wait is bounded by a timeout. libvirt types never leave
//! this module.

pub mod client;
pub mod domain_xml;
pub mod events;
pub mod hosts;
pub mod reset_plan;
pub mod storage;
pub mod wire;

use std::any::Any;
use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use client::{codes, flags, Connect, Domain, DomainState};
use tokio::sync::{broadcast, oneshot};

use crate::model::{
    BoxFuture, ComputerSystem, Drive, DriveStatistics, GuestAddresses, Health, HostCapacity, Hypervisor,
    HypervisorError, InterfaceStatistics, LifecycleEvent, NewDisk, NewSystem, NewVolume, ResetType,
    StoragePool, SystemEvent, SystemStatistics, SystemSummary, Volume,
};
use reset_plan::{cold_restart, reset_plan, Op, RunState};

/// Systems to start again once they have stopped (graceful cold restarts).
type RestartSet = Arc<Mutex<HashSet<String>>>;

type Job = Box<dyn FnOnce(&Connect) + Send>;

/// A call whose answer has its type erased (see [`LibvirtHypervisor::call`]).
type ErasedCall = Box<dyn FnOnce(&Connect) -> Result<Box<dyn Any + Send>, HypervisorError> + Send>;

/// How many jobs may wait for a worker; further callers wait for a place
/// (first come, first served) within their call timeout.
const QUEUE_DEPTH: usize = 256;

pub struct LibvirtHypervisor {
    jobs: SyncSender<Job>,
    /// One permit per queue place, held by a job until it has run.
    places: Arc<tokio::sync::Semaphore>,
    call_timeout: Duration,
    events: broadcast::Sender<SystemEvent>,
    restart_when_stopped: RestartSet,
    /// Systems whose next start must begin with fresh UEFI variables.
    reset_nvram: RestartSet,
    /// Which libvirt client serves the connection (`protocol` or `libvirt.so`).
    client: &'static str,
}

impl LibvirtHypervisor {
    /// Opens the libvirt connection (blocking: call it from a blocking context or
    /// before the runtime starts) and starts `workers` threads.
    pub fn open(uri: &str, workers: usize, call_timeout: Duration) -> Result<Self, HypervisorError> {
        let conn = Connect::open(uri, call_timeout).map_err(|e| {
            HypervisorError::Unavailable(format!("cannot open libvirt connection {uri}: {}", e.message()))
        })?;
        let (events_tx, _) = broadcast::channel(1024);
        let client = conn.client();
        tracing::info!(uri, client, "libvirt connection open");
        if !conn.subscribe(events_tx.clone()) {
            tracing::warn!(
                uri,
                "libvirt refused lifecycle events; outside changes are seen on the next read only"
            );
        }
        // Dead connections (libvirtd restarted, network gone) are noticed by
        // keepalive probes and replaced at the next call.
        conn.set_keep_alive(5, 3);
        let conn = Arc::new(Link {
            uri: uri.to_owned(),
            call_timeout,
            current: std::sync::RwLock::new(Arc::new(conn)),
            events: events_tx.clone(),
        });
        let restart_when_stopped: RestartSet = Arc::default();
        let reset_nvram: RestartSet = Arc::default();
        {
            let conn = Arc::clone(&conn);
            let pending = Arc::clone(&restart_when_stopped);
            let nvram = Arc::clone(&reset_nvram);
            let mut rx = events_tx.subscribe();
            std::thread::Builder::new()
                .name("libvirt-restart".into())
                .spawn(move || restart_after_stop(&conn, &pending, &nvram, &mut rx))
                .map_err(|e| HypervisorError::Unavailable(format!("cannot start libvirt thread: {e}")))?;
        }
        {
            // Notice a lost connection within seconds, not at the next request,
            // so that lifecycle events resume by themselves.
            let link = Arc::clone(&conn);
            std::thread::Builder::new()
                .name("libvirt-watch".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    link.get();
                })
                .map_err(|e| HypervisorError::Unavailable(format!("cannot start libvirt thread: {e}")))?;
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers.max(1) {
            let conn = Arc::clone(&conn);
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("libvirt-{n}"))
                .spawn(move || worker(&conn, &rx))
                .map_err(|e| HypervisorError::Unavailable(format!("cannot start libvirt worker: {e}")))?;
        }
        Ok(LibvirtHypervisor {
            jobs: tx,
            places: Arc::new(tokio::sync::Semaphore::new(QUEUE_DEPTH)),
            call_timeout,
            events: events_tx,
            restart_when_stopped,
            reset_nvram,
            client,
        })
    }

    /// Which libvirt client serves this connection: `protocol` (bmcd's own,
    /// for daemons over UNIX sockets) or `libvirt.so`.
    pub fn client(&self) -> &'static str {
        self.client
    }

    /// Queues a job for the workers. A burst of calls waits for a queue place
    /// (first come, first served) until `deadline` instead of failing at once.
    /// Not generic, so that the many `call` instances stay small.
    async fn submit(&self, job: Job, deadline: tokio::time::Instant) -> Result<(), HypervisorError> {
        let place = match tokio::time::timeout_at(deadline, Arc::clone(&self.places).acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(HypervisorError::Unavailable(
                    "libvirt workers have stopped".into(),
                ))
            }
            Err(_) => {
                return Err(HypervisorError::Unavailable(format!(
                    "too many libvirt calls in flight for {} s",
                    self.call_timeout.as_secs()
                )))
            }
        };
        let job: Job = Box::new(move |conn| {
            let _place = place;
            job(conn);
        });
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HypervisorError::Unavailable(
                "too many libvirt calls in flight".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(HypervisorError::Unavailable(
                "libvirt workers have stopped".into(),
            )),
        }
    }

    /// Runs `f` on a worker thread and awaits its answer; counted in the
    /// metrics under `op` (calls, errors and time, queue wait included).
    /// Only this thin wrapper is generic: the answer crosses the worker
    /// boundary as `Box<dyn Any>`, so the awaiting code exists once in the
    /// binary instead of once per call site.
    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, HypervisorError>
    where
        T: Send + 'static,
        F: FnOnce(&Connect) -> Result<T, HypervisorError> + Send + 'static,
    {
        let answer = self
            .call_erased(
                op,
                Box::new(move |conn| f(conn).map(|t| Box::new(t) as Box<dyn Any + Send>)),
            )
            .await?;
        answer
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| HypervisorError::Unavailable("libvirt worker answered with the wrong type".into()))
    }

    async fn call_erased(
        &self,
        op: &'static str,
        f: ErasedCall,
    ) -> Result<Box<dyn Any + Send>, HypervisorError> {
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.call_timeout;
        let (reply, answer) = oneshot::channel();
        let result = match self
            .submit(
                Box::new(move |conn| {
                    // The caller may have timed out and gone; nothing to do then.
                    let _ = reply.send(f(conn));
                }),
                deadline,
            )
            .await
        {
            Err(e) => Err(e),
            Ok(()) => match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(HypervisorError::Unavailable(
                    "libvirt worker dropped the call".into(),
                )),
                Err(_) => Err(HypervisorError::Unavailable(format!(
                    "libvirt did not answer within {} s",
                    self.call_timeout.as_secs()
                ))),
            },
        };
        crate::metrics::record_libvirt(op, started.elapsed(), result.is_ok());
        result
    }
}

impl LibvirtHypervisor {
    /// The host's processors and memory, and what its defined systems take.
    pub async fn capacity(&self) -> Result<HostCapacity, HypervisorError> {
        self.call("capacity", |conn| {
            let node = conn.node_info().map_err(|e| map_err(e, ""))?;
            let domains = conn.list_all_domains(0).map_err(|e| map_err(e, ""))?;
            let mut c = HostCapacity {
                cpus: node.cpus,
                memory_mib: node.memory / 1024,
                ..HostCapacity::default()
            };
            for dom in &domains {
                // A domain undefined while it is read no longer takes anything.
                if let Ok(info) = dom.info() {
                    c.allocated_vcpus += u64::from(info.nr_virt_cpu);
                    // What it holds now (its balloon), not what it may grow to.
                    c.allocated_memory_mib += info.memory / 1024;
                    c.systems += 1;
                }
            }
            Ok(c)
        })
        .await
    }
}

/// The libvirt connection, reopened when it dies.
struct Link {
    uri: String,
    call_timeout: Duration,
    current: std::sync::RwLock<Arc<Connect>>,
    events: broadcast::Sender<SystemEvent>,
}

impl Link {
    /// A live connection: the current one, or a new one when it died. A
    /// reconnect also renews the event subscription.
    fn get(&self) -> Arc<Connect> {
        let conn = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        if conn.is_alive() {
            return conn;
        }
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if !slot.is_alive() {
            match Connect::open(&self.uri, self.call_timeout) {
                Ok(fresh) => {
                    fresh.set_keep_alive(5, 3);
                    fresh.subscribe(self.events.clone());
                    tracing::info!(uri = %self.uri, "reconnected to libvirt");
                    *slot = Arc::new(fresh);
                }
                Err(e) => tracing::warn!(uri = %self.uri, error = %e.message(), "libvirt is unreachable"),
            }
        }
        Arc::clone(&slot)
    }
}

fn worker(link: &Link, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            rx.recv()
        };
        match job {
            Ok(job) => job(&link.get()),
            Err(_) => return, // every sender is gone: bmcd is shutting down
        }
    }
}

/// Completes graceful cold restarts: starts a system again once it stopped.
fn restart_after_stop(
    link: &Link,
    pending: &RestartSet,
    reset_nvram: &RestartSet,
    rx: &mut broadcast::Receiver<SystemEvent>,
) {
    loop {
        let ev = match rx.blocking_recv() {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !matches!(ev.event, LifecycleEvent::Stopped | LifecycleEvent::Crashed) {
            continue;
        }
        let due = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ev.system_id);
        if due {
            let fresh = reset_nvram
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&ev.system_id);
            let started = link
                .get()
                .lookup_domain_by_uuid_string(&ev.system_id)
                .and_then(|d| start(&d, fresh));
            match started {
                Ok(()) => {
                    tracing::info!(system_id = %ev.system_id, "restarted with the new boot configuration")
                }
                Err(e) => {
                    tracing::error!(system_id = %ev.system_id, error = %e.message(), "restart after shutdown failed")
                }
            }
        }
    }
}

/// Starts a domain, with its UEFI variables reset to the firmware's template
/// when `fresh_nvram`. Drivers without NVRAM (libvirt's test driver) refuse the
/// flag; for them a plain start is the same thing.
fn start(dom: &Domain, fresh_nvram: bool) -> Result<(), client::Error> {
    if fresh_nvram {
        match dom.create_with_flags(flags::START_RESET_NVRAM) {
            Err(e) if matches!(e.code(), codes::INVALID_ARG | codes::NO_SUPPORT) => {}
            other => return other,
        }
    }
    dom.create()
}

fn map_err(e: client::Error, id: &str) -> HypervisorError {
    // Errors of the connection itself (libvirtd gone, socket closed) mean
    // "try again later", whatever their code.
    if matches!(e.domain(), codes::FROM_RPC | codes::FROM_REMOTE) {
        return HypervisorError::Unavailable(e.message().to_owned());
    }
    match e.code() {
        codes::NO_DOMAIN => HypervisorError::SystemNotFound(id.to_owned()),
        codes::NO_SUPPORT | codes::OPERATION_UNSUPPORTED => {
            HypervisorError::Unsupported(e.message().to_owned())
        }
        codes::NO_CONNECT
        | codes::INVALID_CONN
        | codes::RPC
        | codes::OPERATION_TIMEOUT
        | codes::AUTH_FAILED => HypervisorError::Unavailable(e.message().to_owned()),
        _ => HypervisorError::Failed(e.message().to_owned()),
    }
}

fn run_state(dom: &Domain, id: &str) -> Result<RunState, HypervisorError> {
    let state = dom.state().map_err(|e| map_err(e, id))?;
    Ok(match state {
        DomainState::NoState => RunState::NoState,
        DomainState::Running => RunState::Running,
        DomainState::Blocked => RunState::Blocked,
        DomainState::Paused => RunState::Paused,
        DomainState::Shutdown => RunState::ShuttingDown,
        DomainState::Shutoff => RunState::ShutOff,
        DomainState::Crashed => RunState::Crashed,
        DomainState::PmSuspended => RunState::PmSuspended,
    })
}

/// One domain's counters: `virDomainGetInfo`, then block and interface
/// statistics of a running domain's drives (by target) and NICs (by MAC). A
/// counter libvirt cannot give (the device has no statistics, the driver does
/// not support them) is left out rather than failing the read.
fn statistics(dom: &Domain) -> Option<SystemStatistics> {
    let id = dom.uuid_string().ok()?;
    let name = dom.name().ok()?;
    let info = dom.info().ok()?;
    let power_on = dom.is_active().unwrap_or(false);
    let mut drives = Vec::new();
    let mut interfaces = Vec::new();
    if power_on {
        if let Some(desc) = dom.xml_desc(0).ok().and_then(|x| domain_xml::parse(&x).ok()) {
            for d in desc.drives.iter().filter(|d| d.source.is_some()) {
                if let Ok(b) = dom.block_stats(&d.id) {
                    drives.push(DriveStatistics {
                        id: d.id.clone(),
                        read_bytes: b.rd_bytes.max(0) as u64,
                        write_bytes: b.wr_bytes.max(0) as u64,
                    });
                }
            }
            for n in &desc.interfaces {
                if let Ok(i) = dom.interface_stats(&n.mac_address) {
                    interfaces.push(InterfaceStatistics {
                        id: n.id.clone(),
                        rx_bytes: i.rx_bytes.max(0) as u64,
                        tx_bytes: i.tx_bytes.max(0) as u64,
                    });
                }
            }
        }
    }
    Some(SystemStatistics {
        id,
        name,
        power_on,
        vcpus: info.nr_virt_cpu,
        cpu_time_ns: info.cpu_time,
        memory_kib: info.memory,
        max_memory_kib: info.max_mem,
        drives,
        interfaces,
    })
}

/// A Redfish system id is the domain UUID; anything else cannot name a system.
fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn lookup(conn: &Connect, id: &str) -> Result<Domain, HypervisorError> {
    if !is_uuid(id) {
        return Err(HypervisorError::SystemNotFound(id.to_owned()));
    }
    conn.lookup_domain_by_uuid_string(id).map_err(|e| map_err(e, id))
}

fn parse_xml(xml: &str) -> Result<domain_xml::DomainDescription, HypervisorError> {
    domain_xml::parse(xml).map_err(|e| HypervisorError::Failed(e.to_string()))
}

/// What the next start uses (the stored definition), and whether it boots
/// differently from the running instance (boot order or firmware).
fn stored_boot(
    dom: &Domain,
    id: &str,
    state: RunState,
    live: &domain_xml::DomainDescription,
) -> Result<(Vec<String>, crate::model::FirmwareSettings, bool), HypervisorError> {
    let active = !matches!(state, RunState::ShutOff | RunState::Crashed | RunState::NoState);
    if !active {
        return Ok((live.boot_order.clone(), live.firmware.clone(), false));
    }
    // No "is it persistent?" call first: a transient domain has no stored
    // definition, and libvirt then formats the running one, which compares
    // equal to `live` (nothing pending).
    let stored = parse_xml(&dom.xml_desc(flags::XML_INACTIVE).map_err(|e| map_err(e, id))?)?;
    let cd_drives = |d: &domain_xml::DomainDescription| -> Vec<String> {
        d.drives
            .iter()
            .filter(|x| x.kind == crate::model::DriveKind::Cdrom)
            .map(|x| x.id.clone())
            .collect()
    };
    // A CD drive added to the definition (add_cd_drive) appears only at a cold start.
    let pending = stored.boot_order != live.boot_order
        || stored.firmware != live.firmware
        || cd_drives(&stored) != cd_drives(live);
    Ok((stored.boot_order, stored.firmware, pending))
}

/// Whether [`read_system`] asks libvirt for each drive's capacity (one call
/// per drive with a medium).
#[derive(Clone, Copy, PartialEq, Eq)]
enum DriveCapacities {
    Skip,
    Read,
}

fn read_system(
    conn: &Connect,
    id: &str,
    capacities: DriveCapacities,
) -> Result<ComputerSystem, HypervisorError> {
    let dom = lookup(conn, id)?;
    let state = run_state(&dom, id)?;
    let xml = dom.xml_desc(0).map_err(|e| map_err(e, id))?;
    let desc = parse_xml(&xml)?;
    let (boot_order, next_firmware, boot_change_pending) = stored_boot(&dom, id, state, &desc)?;
    let mut drives = desc.drives;
    let with_medium = |d: &&mut Drive| capacities == DriveCapacities::Read && d.source.is_some();
    for drive in drives.iter_mut().filter(with_medium) {
        // Capacity is known only where libvirt can open the medium; the test
        // driver and a few storage types cannot answer, which is not an error.
        if let Ok(info) = dom.block_info(&drive.id, 0) {
            drive.capacity_bytes = Some(info.capacity);
        }
    }
    Ok(ComputerSystem {
        id: desc.uuid,
        name: desc.name,
        description: desc.description,
        power_state: state.power_state(),
        health: if state == RunState::Crashed {
            Health::Critical
        } else {
            Health::OK
        },
        processor_count: desc.vcpus,
        memory_mib: desc.memory_kib / 1024,
        architecture: desc.architecture,
        machine: desc.machine,
        boot_mode: desc.boot_mode,
        ethernet_interfaces: desc.interfaces,
        drives,
        boot_options: desc.boot_options,
        boot_order,
        boot_change_pending,
        direct_kernel_boot: desc.direct_kernel_boot,
        usb_controller: desc.usb_controller,
        firmware: desc.firmware,
        next_firmware,
        consoles: desc.consoles,
    })
}

fn set_firmware(
    conn: &Connect,
    id: &str,
    fw: &crate::model::FirmwareSettings,
    reset_nvram: &RestartSet,
) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    let flags = flags::XML_INACTIVE | flags::XML_SECURE;
    let xml = dom.xml_desc(flags).map_err(|e| map_err(e, id))?;
    let before = parse_xml(&xml)?.firmware;
    let new = domain_xml::with_firmware(&xml, fw).map_err(|e| HypervisorError::Failed(e.to_string()))?;
    if new != xml {
        conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
    }
    if before.mode != fw.mode || before.secure_boot != fw.secure_boot {
        // Variables made for other firmware (or other keys) must not carry over.
        reset_nvram
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned());
    }
    Ok(())
}

fn change_media(conn: &Connect, id: &str, drive: &str, source: Option<&str>) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    let failed = |e: domain_xml::DomainXmlError| HypervisorError::Failed(e.to_string());
    let force = flags::DEVICE_MODIFY_FORCE;
    // The running instance and the stored definition each get their own copy
    // of the drive element: their boot order (and addresses) may differ.
    let mut undo_live = None;
    if dom.is_active().map_err(|e| map_err(e, id))? {
        let live = dom.xml_desc(0).map_err(|e| map_err(e, id))?;
        let element = domain_xml::cdrom_with_source(&live, drive, source).map_err(failed)?;
        dom.update_device_flags(&element, flags::AFFECT_LIVE | force)
            .map_err(|e| map_err(e, id))?;
        undo_live = Some(live);
    }
    if dom.is_persistent().map_err(|e| map_err(e, id))? {
        let stored = dom.xml_desc(flags::XML_INACTIVE).map_err(|e| map_err(e, id))?;
        let element = domain_xml::cdrom_with_source(&stored, drive, source).map_err(failed)?;
        if let Err(e) = dom.update_device_flags(&element, flags::AFFECT_CONFIG | force) {
            // A driver without device updates (libvirt's test driver) can
            // still take the whole definition, when nothing runs to match.
            let unsupported = matches!(map_err(e.clone(), id), HypervisorError::Unsupported(_));
            if unsupported && undo_live.is_none() {
                let new = domain_xml::with_cdrom_source(&stored, drive, source).map_err(failed)?;
                conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
                return Ok(());
            }
            // Put the running instance back as it was: both change, or neither.
            if let Some(live) = undo_live {
                let before = domain_xml::parse(&live)
                    .ok()
                    .and_then(|d| d.drives.into_iter().find(|d| d.id == drive))
                    .and_then(|d| d.source);
                if let Ok(element) = domain_xml::cdrom_with_source(&live, drive, before.as_deref()) {
                    let _ = dom.update_device_flags(&element, flags::AFFECT_LIVE | force);
                }
            }
            return Err(map_err(e, id));
        }
    }
    Ok(())
}

fn plug_usb_disk(conn: &Connect, id: &str, source: &str) -> Result<String, HypervisorError> {
    let dom = lookup(conn, id)?;
    let active = dom.is_active().map_err(|e| map_err(e, id))?;
    let persistent = dom.is_persistent().map_err(|e| map_err(e, id))?;
    // A name free in both the running instance and the stored definition.
    let mut used: Vec<String> = parse_xml(&dom.xml_desc(0).map_err(|e| map_err(e, id))?)?
        .drives
        .into_iter()
        .map(|d| d.id)
        .collect();
    if persistent {
        let stored = dom.xml_desc(flags::XML_INACTIVE).map_err(|e| map_err(e, id))?;
        used.extend(parse_xml(&stored)?.drives.into_iter().map(|d| d.id));
    }
    let target = domain_xml::free_disk_target(&used)
        .ok_or_else(|| HypervisorError::Failed("no free disk name for a USB stick".into()))?;
    let element = domain_xml::usb_disk(&target, source);
    let mut flags = 0;
    if active {
        flags |= flags::AFFECT_LIVE;
    }
    if persistent {
        flags |= flags::AFFECT_CONFIG;
    }
    dom.attach_device_flags(&element, flags)
        .map_err(|e| map_err(e, id))?;
    Ok(target)
}

/// Gives a system defined without a CD drive one (in its stored definition),
/// holding `source` or empty; returns its target device. A running system
/// sees the drive from its next cold start, which its next reset becomes
/// (see `stored_boot`).
fn add_cd_drive(conn: &Connect, id: &str, source: Option<&str>) -> Result<String, HypervisorError> {
    let dom = lookup(conn, id)?;
    if !dom.is_persistent().map_err(|e| map_err(e, id))? {
        return Err(HypervisorError::Unsupported(format!(
            "{id} is a transient domain: it has no definition to add a CD drive to"
        )));
    }
    let flags = flags::XML_INACTIVE | flags::XML_SECURE;
    let stored = dom.xml_desc(flags).map_err(|e| map_err(e, id))?;
    let mut used: Vec<String> = parse_xml(&stored)?.drives.into_iter().map(|d| d.id).collect();
    if dom.is_active().map_err(|e| map_err(e, id))? {
        used.extend(
            parse_xml(&dom.xml_desc(0).map_err(|e| map_err(e, id))?)?
                .drives
                .into_iter()
                .map(|d| d.id),
        );
    }
    let target = domain_xml::free_disk_target(&used)
        .ok_or_else(|| HypervisorError::Failed("no free disk name for a CD drive".into()))?;
    let element = domain_xml::cd_drive(&target, source);
    if let Err(e) = dom.attach_device_flags(&element, flags::AFFECT_CONFIG) {
        if !matches!(map_err(e.clone(), id), HypervisorError::Unsupported(_)) {
            return Err(map_err(e, id));
        }
        let new =
            domain_xml::with_device(&stored, &element).map_err(|e| HypervisorError::Failed(e.to_string()))?;
        conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
    }
    Ok(target)
}

fn unplug_disk(conn: &Connect, id: &str, drive: &str) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    if dom.is_active().map_err(|e| map_err(e, id))? {
        let live = dom.xml_desc(0).map_err(|e| map_err(e, id))?;
        if let Some(element) = domain_xml::disk_element(&live, drive) {
            dom.detach_device_flags(&element, flags::AFFECT_LIVE)
                .map_err(|e| map_err(e, id))?;
        }
    }
    if dom.is_persistent().map_err(|e| map_err(e, id))? {
        let stored = dom
            .xml_desc(flags::XML_INACTIVE | flags::XML_SECURE)
            .map_err(|e| map_err(e, id))?;
        if let Some(element) = domain_xml::disk_element(&stored, drive) {
            if let Err(e) = dom.detach_device_flags(&element, flags::AFFECT_CONFIG) {
                // A driver without device detachment (libvirt's test driver)
                // still takes the whole definition when nothing runs.
                let unsupported = matches!(map_err(e.clone(), id), HypervisorError::Unsupported(_));
                if !unsupported || dom.is_active().unwrap_or(true) {
                    return Err(map_err(e, id));
                }
                let new = domain_xml::without_disk(&stored, drive)
                    .map_err(|e| HypervisorError::Failed(e.to_string()))?;
                conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
            }
        }
    }
    Ok(())
}

fn set_boot_order(conn: &Connect, id: &str, order: &[String]) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    let flags = flags::XML_INACTIVE | flags::XML_SECURE;
    let xml = dom.xml_desc(flags).map_err(|e| map_err(e, id))?;
    let new = domain_xml::with_boot_order(&xml, order).map_err(|e| HypervisorError::Failed(e.to_string()))?;
    if new != xml {
        conn.define_domain_xml(&new).map_err(|e| map_err(e, id))?;
    }
    Ok(())
}

fn do_reset(
    conn: &Connect,
    id: &str,
    reset_type: ResetType,
    restart_when_stopped: &RestartSet,
    reset_nvram: &RestartSet,
) -> Result<(), HypervisorError> {
    let dom = lookup(conn, id)?;
    // A newer request replaces a graceful cold restart still waiting for the
    // guest to stop.
    restart_when_stopped
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id);
    let state = run_state(&dom, id)?;
    let mut plan = reset_plan(reset_type, state).map_err(|refusal| HypervisorError::InvalidTransition {
        reset_type,
        power_state: state.power_state(),
        reason: refusal.0,
    })?;
    let live = parse_xml(&dom.xml_desc(0).map_err(|e| map_err(e, id))?)?;
    if stored_boot(&dom, id, state, &live)?.2 {
        let (cold, start_after_stop) = cold_restart(plan);
        plan = cold;
        if start_after_stop {
            restart_when_stopped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned());
        }
    }
    for op in plan {
        let result = match op {
            Op::Create => {
                let fresh = reset_nvram
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                start(&dom, fresh)
            }
            Op::Destroy => dom.destroy(),
            Op::Shutdown => dom.shutdown(),
            Op::Reboot => dom.reboot(0),
            Op::Reset => dom.reset(),
            Op::InjectNmi => dom.inject_nmi(),
            Op::Resume => dom.resume(),
            Op::Wakeup => dom.pm_wakeup(0),
        };
        result.map_err(|e| match map_err(e, id) {
            HypervisorError::Failed(msg) if msg.contains("not running") || msg.contains("is already") => {
                HypervisorError::InvalidTransition {
                    reset_type,
                    power_state: state.power_state(),
                    reason: "the system changed state while the reset ran",
                }
            }
            other => other,
        })?;
    }
    Ok(())
}

impl Hypervisor for LibvirtHypervisor {
    fn list_systems(&self) -> BoxFuture<'_, Result<Vec<SystemSummary>, HypervisorError>> {
        Box::pin(self.call("list_systems", |conn| {
            let domains = conn.list_all_domains(0).map_err(|e| map_err(e, ""))?;
            let mut systems = Vec::with_capacity(domains.len());
            for dom in domains {
                // A domain undefined between the listing and this read is skipped.
                let (Ok(id), Ok(name)) = (dom.uuid_string(), dom.name()) else {
                    continue;
                };
                systems.push(SystemSummary { id, name });
            }
            systems.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            Ok(systems)
        }))
    }

    fn system(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>> {
        Box::pin(self.call("system", move |conn| {
            read_system(conn, &id, DriveCapacities::Skip)
        }))
    }

    fn system_with_capacities(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>> {
        Box::pin(self.call("system", move |conn| {
            read_system(conn, &id, DriveCapacities::Read)
        }))
    }

    fn system_id_by_name(&self, name: String) -> BoxFuture<'_, Result<Option<String>, HypervisorError>> {
        Box::pin(self.call(
            "system_id_by_name",
            move |conn| match conn.lookup_domain_by_name(&name) {
                Ok(dom) => dom.uuid_string().map(Some).map_err(|e| map_err(e, &name)),
                Err(e) => match map_err(e, &name) {
                    HypervisorError::SystemNotFound(_) => Ok(None),
                    other => Err(other),
                },
            },
        ))
    }

    fn reset(&self, id: String, reset_type: ResetType) -> BoxFuture<'_, Result<(), HypervisorError>> {
        let pending = Arc::clone(&self.restart_when_stopped);
        let nvram = Arc::clone(&self.reset_nvram);
        Box::pin(self.call("reset", move |conn| {
            do_reset(conn, &id, reset_type, &pending, &nvram)
        }))
    }

    fn reset_firmware_variables(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        let nvram = Arc::clone(&self.reset_nvram);
        Box::pin(self.call("reset_firmware_variables", move |conn| {
            lookup(conn, &id)?;
            nvram.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
            Ok(())
        }))
    }

    fn set_firmware(
        &self,
        id: String,
        firmware: crate::model::FirmwareSettings,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        let nvram = Arc::clone(&self.reset_nvram);
        Box::pin(self.call("set_firmware", move |conn| {
            set_firmware(conn, &id, &firmware, &nvram)
        }))
    }

    fn set_boot_order(&self, id: String, order: Vec<String>) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("set_boot_order", move |conn| set_boot_order(conn, &id, &order)))
    }

    fn change_media(
        &self,
        id: String,
        drive: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("change_media", move |conn| {
            change_media(conn, &id, &drive, source.as_deref())
        }))
    }

    fn plug_usb_disk(&self, id: String, source: String) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(self.call("plug_usb_disk", move |conn| plug_usb_disk(conn, &id, &source)))
    }

    fn unplug_disk(&self, id: String, drive: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("unplug_disk", move |conn| unplug_disk(conn, &id, &drive)))
    }

    fn add_cd_drive(
        &self,
        id: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(self.call("add_cd_drive", move |conn| {
            add_cd_drive(conn, &id, source.as_deref())
        }))
    }

    fn storage_pools(&self) -> BoxFuture<'_, Result<Vec<StoragePool>, HypervisorError>> {
        Box::pin(self.call("storage_pools", storage::storage_pools))
    }

    fn volumes(&self, pool: String) -> BoxFuture<'_, Result<Vec<Volume>, HypervisorError>> {
        Box::pin(self.call("volumes", move |conn| storage::volumes(conn, &pool)))
    }

    fn volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<Volume, HypervisorError>> {
        Box::pin(self.call("volume", move |conn| storage::volume(conn, &pool, &name)))
    }

    fn create_volume(
        &self,
        pool: String,
        volume: NewVolume,
    ) -> BoxFuture<'_, Result<Volume, HypervisorError>> {
        Box::pin(self.call("create_volume", move |conn| {
            storage::create_volume(conn, &pool, &volume)
        }))
    }

    fn resize_volume(
        &self,
        pool: String,
        name: String,
        capacity_bytes: u64,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("resize_volume", move |conn| {
            storage::resize_volume(conn, &pool, &name, capacity_bytes)
        }))
    }

    fn delete_volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("delete_volume", move |conn| {
            storage::delete_volume(conn, &pool, &name)
        }))
    }

    fn attach_volume(&self, id: String, disk: NewDisk) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(self.call("attach_volume", move |conn| {
            storage::attach_volume(conn, &id, &disk)
        }))
    }

    fn define_system(&self, system: NewSystem) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("define_system", move |conn| storage::define_system(conn, &system)))
    }

    fn undefine_system(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("undefine_system", move |conn| storage::undefine_system(conn, &id)))
    }

    fn events(&self) -> broadcast::Receiver<SystemEvent> {
        self.events.subscribe()
    }

    fn supported_reset_types(&self) -> &'static [ResetType] {
        &ResetType::ALL
    }

    fn statistics(&self) -> BoxFuture<'_, Result<Vec<SystemStatistics>, HypervisorError>> {
        Box::pin(self.call("statistics", |conn| {
            let domains = conn.list_all_domains(0).map_err(|e| map_err(e, ""))?;
            // A domain undefined or stopped while it is read is shown with
            // what could be read, or skipped.
            Ok(domains.iter().filter_map(statistics).collect())
        }))
    }

    fn guest_addresses(&self, id: String) -> BoxFuture<'_, Result<Vec<GuestAddresses>, HypervisorError>> {
        Box::pin(self.call("guest_addresses", move |conn| {
            let dom = lookup(conn, &id)?;
            if !dom.is_active().unwrap_or(false) {
                return Ok(Vec::new());
            }
            // DHCP leases of libvirt's networks first, then the host's ARP
            // table (bridged NICs); a source libvirt cannot read gives nothing.
            let mut found = dom
                .interface_addresses(flags::INTERFACE_ADDRESSES_SRC_LEASE, 0)
                .unwrap_or_default();
            if found.is_empty() {
                found = dom
                    .interface_addresses(flags::INTERFACE_ADDRESSES_SRC_ARP, 0)
                    .unwrap_or_default();
            }
            Ok(found
                .into_iter()
                .filter_map(|i| {
                    let mac = i.hwaddr?.to_ascii_lowercase();
                    let ipv4 = i
                        .addrs
                        .iter()
                        .filter_map(|a| Some((a.addr.parse().ok()?, u8::try_from(a.prefix).ok()?)))
                        .collect();
                    Some(GuestAddresses {
                        mac_address: mac,
                        ipv4,
                    })
                })
                .collect())
        }))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(self.call("ping", |conn| {
            conn.lib_version()
                .map(|_| ())
                .map_err(|e| HypervisorError::Unavailable(e.message().to_owned()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_is_checked_before_libvirt_sees_it() {
        assert!(is_uuid("6f9a1b2c-0000-4000-8000-000000000001"));
        assert!(!is_uuid("6f9a1b2c-0000-4000-8000-00000000000"));
        assert!(!is_uuid("../../etc/passwd-0000-4000-8000-0000"));
        assert!(!is_uuid("test"));
    }

    #[tokio::test]
    async fn test_driver_lists_reads_and_resets() {
        let hv = LibvirtHypervisor::open("test:///default", 1, Duration::from_secs(10)).expect("opens");
        let systems = hv.list_systems().await.expect("lists");
        let test = systems.iter().find(|s| s.name == "test").expect("test domain");
        let sys = hv.system(test.id.clone()).await.expect("reads");
        assert_eq!(sys.name, "test");
        assert!(sys.memory_mib > 0);
        hv.reset(test.id.clone(), ResetType::ForceOff)
            .await
            .expect("force off");
        let sys = hv.system(test.id.clone()).await.expect("reads");
        assert_eq!(sys.power_state, crate::model::PowerState::Off);
        hv.reset(test.id.clone(), ResetType::On).await.expect("on");
        let sys = hv.system(test.id.clone()).await.expect("reads");
        assert_eq!(sys.power_state, crate::model::PowerState::On);
        let by_name = hv.system_id_by_name("test".into()).await.expect("looks up");
        assert_eq!(by_name.as_deref(), Some(test.id.as_str()));
        assert_eq!(hv.system_id_by_name("nope".into()).await.expect("looks up"), None);
        let missing = hv.system("00000000-0000-4000-8000-000000000000".into()).await;
        assert!(matches!(missing, Err(HypervisorError::SystemNotFound(_))));
    }
}
