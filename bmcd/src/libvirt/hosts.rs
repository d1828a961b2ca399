//! Several libvirt hosts behind one [`Hypervisor`]: the host of `libvirt-uri`
//! (named `local`) and the `[[host]]`s of the configuration.
//!
//! Systems keep their ids (domain UUIDs); each call on a system goes to the
//! host that holds it. Storage pools of the local host keep their names, those
//! of another host are `POOL@HOST`. A host that cannot be reached is
//! reported, not hidden: its state (and why) is shown as an aggregation
//! source, its systems stay listed with their last known names, and a call on
//! one of them answers that its host is down. A watcher pings every host every
//! few seconds and opens those that were never reached.
//!
//! With one host, every call goes straight to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;

use super::LibvirtHypervisor;
use crate::config::{Placement, LOCAL_HOST};
use crate::model::{
    BoxFuture, ComputerSystem, FirmwareSettings, GuestAddresses, HostCapacity, Hypervisor, HypervisorError,
    NewDisk, NewSystem, NewVolume, ResetType, StoragePool, SystemEvent, SystemStatistics, SystemSummary,
    Volume,
};

/// How often every host is pinged (and unopened ones tried again).
const WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long a ping may take before its host counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A host as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub uri: String,
    pub labels: Vec<String>,
}

/// What is known about a host now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    pub spec: HostSpec,
    pub up: bool,
    /// Why it is down (the last error).
    pub error: Option<String>,
    /// Unix time of its last change between up and down.
    pub since: i64,
    /// Its systems (the last known ones while it is down).
    pub systems: Vec<SystemSummary>,
}

/// Where a new system may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementRequest {
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Labels the host must carry, all of them.
    pub labels: Vec<String>,
    /// Only this host (named by the client, or holding the image).
    pub host: Option<String>,
    /// Memory a host may hand out, in percent of its own.
    pub overcommit_percent: u32,
}

/// Why no host can take a new system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// The named host is not configured.
    UnknownHost(String),
    /// No host fits; the reason of each candidate.
    NoRoom(Vec<String>),
}

struct Host {
    spec: HostSpec,
    backend: RwLock<Option<Arc<LibvirtHypervisor>>>,
    state: Mutex<(bool, Option<String>, i64)>,
    known: Mutex<Vec<SystemSummary>>,
    /// An open of this host is under way (it can take long on a remote host).
    opening: AtomicBool,
}

impl Host {
    fn backend(&self) -> Option<Arc<LibvirtHypervisor>> {
        self.backend
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_state(&self, up: bool, error: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.0 != up {
            if up {
                tracing::info!(host = %self.spec.name, uri = %self.spec.uri, "libvirt host is up");
            } else {
                tracing::warn!(host = %self.spec.name, uri = %self.spec.uri, error = error.as_deref().unwrap_or(""), "libvirt host is down");
            }
            s.2 = crate::time::now_unix();
        }
        s.0 = up;
        s.1 = error;
    }

    fn is_up(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    fn down_error(&self) -> HypervisorError {
        let why = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone();
        HypervisorError::Unavailable(format!(
            "its host '{}' ({}) cannot be reached{}",
            self.spec.name,
            self.spec.uri,
            why.map(|w| format!(": {w}")).unwrap_or_default()
        ))
    }

    /// The backend when the host is up; the reason otherwise.
    fn live(&self) -> Result<Arc<LibvirtHypervisor>, HypervisorError> {
        match self.backend() {
            Some(b) if self.is_up() => Ok(b),
            _ => Err(self.down_error()),
        }
    }
}

pub struct HostPool {
    hosts: Vec<Arc<Host>>,
    /// Which host holds each system (by index), learnt from listings and events.
    owners: Arc<RwLock<HashMap<String, usize>>>,
    events: broadcast::Sender<SystemEvent>,
    workers: usize,
    call_timeout: Duration,
}

/// Splits `POOL@HOST` into the pool and the host's index.
fn split_pool<'a>(hosts: &[Arc<Host>], pool: &'a str) -> Result<(&'a str, usize), HypervisorError> {
    match pool.rsplit_once('@') {
        None => Ok((pool, 0)),
        Some((name, host)) => hosts
            .iter()
            .position(|h| h.spec.name == host)
            .filter(|&i| i > 0)
            .map(|i| (name, i))
            .ok_or_else(|| HypervisorError::NotFound("StoragePool", pool.to_owned())),
    }
}

fn qualify(pool: &str, host: &HostSpec, index: usize) -> String {
    if index == 0 {
        pool.to_owned()
    } else {
        format!("{pool}@{}", host.name)
    }
}

impl HostPool {
    /// Opens the local host (which must answer: blocking, call it from a
    /// blocking context) and tries each further host once; those that do not
    /// answer are reported down and tried again by [`HostPool::watch`].
    pub fn open(
        local: HostSpec,
        others: Vec<HostSpec>,
        workers: usize,
        call_timeout: Duration,
    ) -> Result<HostPool, HypervisorError> {
        let first = Arc::new(LibvirtHypervisor::open(&local.uri, workers, call_timeout)?);
        let (events, _) = broadcast::channel(1024);
        let pool = HostPool {
            hosts: Vec::new(),
            owners: Arc::default(),
            events,
            workers,
            call_timeout,
        };
        let mut hosts = vec![pool.new_host(local, Some(first))];
        for spec in others {
            let opened = match LibvirtHypervisor::open(&spec.uri, workers, call_timeout) {
                Ok(b) => Some(Arc::new(b)),
                Err(e) => {
                    tracing::warn!(host = %spec.name, uri = %spec.uri, error = %e, "libvirt host cannot be reached; retrying");
                    let h = pool.new_host(spec, None);
                    h.set_state(false, Some(e.to_string()));
                    hosts.push(h);
                    continue;
                }
            };
            hosts.push(pool.new_host(spec, opened));
        }
        let pool = HostPool { hosts, ..pool };
        for (i, h) in pool.hosts.iter().enumerate() {
            if let Some(b) = h.backend() {
                pool.forward_events(i, &b);
            }
        }
        Ok(pool)
    }

    fn new_host(&self, spec: HostSpec, backend: Option<Arc<LibvirtHypervisor>>) -> Arc<Host> {
        let up = backend.is_some();
        Arc::new(Host {
            spec,
            backend: RwLock::new(backend),
            state: Mutex::new((up, None, crate::time::now_unix())),
            known: Mutex::default(),
            opening: AtomicBool::new(false),
        })
    }

    /// Passes a host's lifecycle events on, learning where systems are.
    fn forward_events(&self, index: usize, backend: &LibvirtHypervisor) {
        let mut rx = backend.events();
        let tx = self.events.clone();
        let owners = Arc::clone(&self.owners);
        let single = self.hosts.len() == 1;
        let spawned = std::thread::Builder::new()
            .name(format!("libvirt-events-{index}"))
            .spawn(move || loop {
                match rx.blocking_recv() {
                    Ok(ev) => {
                        if !single {
                            owners
                                .write()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(ev.system_id.clone(), index);
                        }
                        let _ = tx.send(ev);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the libvirt event thread; events of this host are lost");
        }
    }

    /// Pings every host every few seconds (up or down follows) and opens the
    /// hosts that were never reached. Only useful with several hosts.
    pub fn watch(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.hosts.len() < 2 {
            return None;
        }
        let pool = Arc::clone(self);
        Some(tokio::spawn(async move {
            loop {
                for (i, h) in pool.hosts.iter().enumerate() {
                    pool.check(i, h).await;
                }
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
        }))
    }

    async fn check(self: &Arc<Self>, index: usize, host: &Arc<Host>) {
        match host.backend() {
            Some(b) => match tokio::time::timeout(PING_TIMEOUT, b.ping()).await {
                Ok(Ok(())) => host.set_state(true, None),
                Ok(Err(e)) => host.set_state(false, Some(e.to_string())),
                Err(_) => host.set_state(
                    false,
                    Some(format!("no answer within {} s", PING_TIMEOUT.as_secs())),
                ),
            },
            None => {
                if host.opening.swap(true, Ordering::SeqCst) {
                    return; // an earlier attempt is still waiting for the host
                }
                let pool = Arc::clone(self);
                let host = Arc::clone(host);
                let (workers, timeout) = (self.workers, self.call_timeout);
                tokio::task::spawn_blocking(move || {
                    match LibvirtHypervisor::open(&host.spec.uri, workers, timeout) {
                        Ok(b) => {
                            let b = Arc::new(b);
                            pool.forward_events(index, &b);
                            *host.backend.write().unwrap_or_else(PoisonError::into_inner) = Some(b);
                            host.set_state(true, None);
                        }
                        Err(e) => host.set_state(false, Some(e.to_string())),
                    }
                    host.opening.store(false, Ordering::SeqCst);
                });
            }
        }
    }

    /// Every host, with its state and systems.
    pub async fn hosts(&self) -> Vec<HostStatus> {
        let _ = self.list_systems().await; // refreshes what each host holds
        self.hosts
            .iter()
            .map(|h| {
                let (up, error, since) = h.state.lock().unwrap_or_else(PoisonError::into_inner).clone();
                HostStatus {
                    spec: h.spec.clone(),
                    up,
                    error,
                    since,
                    systems: h.known.lock().unwrap_or_else(PoisonError::into_inner).clone(),
                }
            })
            .collect()
    }

    /// The URI of the host holding system `id` (as last seen), and whether
    /// that is the local host.
    pub fn uri_of(&self, id: &str) -> (String, bool) {
        let index = if self.hosts.len() == 1 {
            0
        } else {
            self.owners
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .copied()
                .unwrap_or(0)
        };
        (self.hosts[index].spec.uri.clone(), index == 0)
    }

    /// A host's capacity, if it is up.
    pub async fn capacity(&self, name: &str) -> Option<HostCapacity> {
        let h = self.hosts.iter().find(|h| h.spec.name == name)?;
        h.live().ok()?.capacity().await.ok()
    }

    /// The host of a storage pool id (`POOL` or `POOL@HOST`).
    pub fn host_of_pool(&self, pool: &str) -> Option<String> {
        split_pool(&self.hosts, pool)
            .ok()
            .map(|(_, i)| self.hosts[i].spec.name.clone())
    }

    /// A pool id on a given host.
    pub fn pool_on(&self, pool: &str, host: &str) -> String {
        match self.hosts.iter().position(|h| h.spec.name == host) {
            Some(i) => qualify(pool, &self.hosts[i].spec, i),
            None => pool.to_owned(),
        }
    }

    /// The host a new system goes to: among the hosts that are up, carry
    /// every label asked for and have the memory free, the one with the most
    /// free memory (spread) or the least that still fits (binpack).
    pub async fn place(&self, req: &PlacementRequest, policy: Placement) -> Result<String, PlacementError> {
        if let Some(name) = &req.host {
            if !self.hosts.iter().any(|h| &h.spec.name == name) {
                return Err(PlacementError::UnknownHost(name.clone()));
            }
        }
        let mut fits: Vec<(u64, u32, usize)> = Vec::new();
        let mut refused = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let name = &h.spec.name;
            if req.host.as_ref().is_some_and(|only| only != name) {
                continue;
            }
            if let Some(missing) = req.labels.iter().find(|l| !h.spec.labels.contains(l)) {
                refused.push(format!("host '{name}' has no label '{missing}'"));
                continue;
            }
            let backend = match h.live() {
                Ok(b) => b,
                Err(e) => {
                    refused.push(format!("host '{name}' is down ({e})"));
                    continue;
                }
            };
            let c = match backend.capacity().await {
                Ok(c) => c,
                Err(e) => {
                    refused.push(format!("host '{name}' did not tell its capacity ({e})"));
                    continue;
                }
            };
            let free = (c.memory_mib * u64::from(req.overcommit_percent) / 100)
                .saturating_sub(c.allocated_memory_mib);
            if free < req.memory_mib {
                refused.push(format!(
                    "host '{name}' has {free} MiB of memory free, {} MiB needed",
                    req.memory_mib
                ));
                continue;
            }
            fits.push((free, c.systems, i));
        }
        let best = match policy {
            // Most free memory; then fewer systems; then configuration order.
            Placement::Spread => fits
                .iter()
                .min_by_key(|(free, systems, i)| (std::cmp::Reverse(*free), *systems, *i)),
            // Least free memory that fits; then more systems; then order.
            Placement::Binpack => fits
                .iter()
                .min_by_key(|(free, systems, i)| (*free, std::cmp::Reverse(*systems), *i)),
        };
        match best {
            Some(&(_, _, i)) => Ok(self.hosts[i].spec.name.clone()),
            None => Err(PlacementError::NoRoom(refused)),
        }
    }

    /// The host holding system `id`: from what is known, else after a fresh listing.
    async fn owner(&self, id: &str) -> Result<&Arc<Host>, HypervisorError> {
        if self.hosts.len() == 1 {
            return Ok(&self.hosts[0]);
        }
        let known = self
            .owners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied();
        let index = match known {
            Some(i) => i,
            None => {
                self.list_systems().await?;
                self.owners
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(id)
                    .copied()
                    .ok_or_else(|| HypervisorError::SystemNotFound(id.to_owned()))?
            }
        };
        Ok(&self.hosts[index])
    }

    /// The live backend of system `id`'s host.
    async fn of(&self, id: &str) -> Result<Arc<LibvirtHypervisor>, HypervisorError> {
        self.owner(id).await?.live()
    }

    fn pool_backend<'a>(
        &self,
        pool: &'a str,
    ) -> Result<(&'a str, usize, Arc<LibvirtHypervisor>), HypervisorError> {
        let (name, i) = split_pool(&self.hosts, pool)?;
        Ok((name, i, self.hosts[i].live()?))
    }

    fn qualify_volume(&self, mut v: Volume, index: usize) -> Volume {
        v.pool = qualify(&v.pool, &self.hosts[index].spec, index);
        v
    }
}

impl Hypervisor for HostPool {
    fn list_systems(&self) -> BoxFuture<'_, Result<Vec<SystemSummary>, HypervisorError>> {
        Box::pin(async move {
            if self.hosts.len() == 1 {
                return self.hosts[0].live()?.list_systems().await;
            }
            let mut all = Vec::new();
            for (i, h) in self.hosts.iter().enumerate() {
                let listed = match h.live() {
                    Ok(b) => b.list_systems().await,
                    Err(e) => Err(e),
                };
                match listed {
                    Ok(systems) => {
                        h.set_state(true, None);
                        let mut owners = self.owners.write().unwrap_or_else(PoisonError::into_inner);
                        owners.retain(|_, owner| *owner != i);
                        for s in &systems {
                            owners.insert(s.id.clone(), i);
                        }
                        drop(owners);
                        *h.known.lock().unwrap_or_else(PoisonError::into_inner) = systems.clone();
                        all.extend(systems);
                    }
                    // Down: its systems stay listed (a GET tells why it fails).
                    Err(HypervisorError::Unavailable(e)) => {
                        if h.is_up() {
                            h.set_state(false, Some(e));
                        }
                        all.extend(
                            h.known
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .iter()
                                .cloned(),
                        );
                    }
                    Err(other) => return Err(other),
                }
            }
            all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            Ok(all)
        })
    }

    fn system(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.system(id).await })
    }

    fn system_with_capacities(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.system_with_capacities(id).await })
    }

    fn system_id_by_name(&self, name: String) -> BoxFuture<'_, Result<Option<String>, HypervisorError>> {
        Box::pin(async move {
            if self.hosts.len() == 1 {
                return self.hosts[0].live()?.system_id_by_name(name).await;
            }
            for h in &self.hosts {
                // A name on a host that is down is not known: names are
                // checked again when the system is defined there.
                let Ok(b) = h.live() else { continue };
                if let Some(id) = b.system_id_by_name(name.clone()).await? {
                    return Ok(Some(id));
                }
            }
            Ok(None)
        })
    }

    fn reset(&self, id: String, reset_type: ResetType) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.reset(id, reset_type).await })
    }

    fn set_boot_order(&self, id: String, order: Vec<String>) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.set_boot_order(id, order).await })
    }

    fn set_firmware(
        &self,
        id: String,
        firmware: FirmwareSettings,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.set_firmware(id, firmware).await })
    }

    fn reset_firmware_variables(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.reset_firmware_variables(id).await })
    }

    fn change_media(
        &self,
        id: String,
        drive: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.change_media(id, drive, source).await })
    }

    fn plug_usb_disk(&self, id: String, source: String) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.plug_usb_disk(id, source).await })
    }

    fn unplug_disk(&self, id: String, drive: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.unplug_disk(id, drive).await })
    }

    fn add_cd_drive(
        &self,
        id: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.add_cd_drive(id, source).await })
    }

    fn storage_pools(&self) -> BoxFuture<'_, Result<Vec<StoragePool>, HypervisorError>> {
        Box::pin(async move {
            let mut all = self.hosts[0].live()?.storage_pools().await?;
            for (i, h) in self.hosts.iter().enumerate().skip(1) {
                // The pools of a host that is down are not listed; the host
                // itself says it is down.
                let Ok(b) = h.live() else { continue };
                if let Ok(pools) = b.storage_pools().await {
                    all.extend(pools.into_iter().map(|mut p| {
                        p.id = qualify(&p.id, &h.spec, i);
                        p
                    }));
                }
            }
            Ok(all)
        })
    }

    fn volumes(&self, pool: String) -> BoxFuture<'_, Result<Vec<Volume>, HypervisorError>> {
        Box::pin(async move {
            let (name, i, b) = self.pool_backend(&pool)?;
            let vols = b.volumes(name.to_owned()).await?;
            Ok(vols.into_iter().map(|v| self.qualify_volume(v, i)).collect())
        })
    }

    fn volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<Volume, HypervisorError>> {
        Box::pin(async move {
            let (pool_name, i, b) = self.pool_backend(&pool)?;
            Ok(self.qualify_volume(b.volume(pool_name.to_owned(), name).await?, i))
        })
    }

    fn create_volume(
        &self,
        pool: String,
        volume: NewVolume,
    ) -> BoxFuture<'_, Result<Volume, HypervisorError>> {
        Box::pin(async move {
            let (name, i, b) = self.pool_backend(&pool)?;
            Ok(self.qualify_volume(b.create_volume(name.to_owned(), volume).await?, i))
        })
    }

    fn resize_volume(
        &self,
        pool: String,
        name: String,
        capacity_bytes: u64,
    ) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move {
            let (pool_name, _, b) = self.pool_backend(&pool)?;
            b.resize_volume(pool_name.to_owned(), name, capacity_bytes).await
        })
    }

    fn delete_volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move {
            let (pool_name, _, b) = self.pool_backend(&pool)?;
            b.delete_volume(pool_name.to_owned(), name).await
        })
    }

    fn attach_volume(&self, id: String, disk: NewDisk) -> BoxFuture<'_, Result<String, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.attach_volume(id, disk).await })
    }

    fn define_system(&self, system: NewSystem) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move {
            let index = match &system.host {
                None => 0,
                Some(name) => self
                    .hosts
                    .iter()
                    .position(|h| &h.spec.name == name)
                    .ok_or_else(|| HypervisorError::NotFound("Host", name.clone()))?,
            };
            let id = system.id.clone();
            self.hosts[index].live()?.define_system(system).await?;
            self.owners
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, index);
            Ok(())
        })
    }

    fn undefine_system(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move {
            self.of(&id).await?.undefine_system(id.clone()).await?;
            self.owners
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            Ok(())
        })
    }

    fn events(&self) -> broadcast::Receiver<SystemEvent> {
        self.events.subscribe()
    }

    fn supported_reset_types(&self) -> &'static [ResetType] {
        &ResetType::ALL
    }

    fn statistics(&self) -> BoxFuture<'_, Result<Vec<SystemStatistics>, HypervisorError>> {
        Box::pin(async move {
            let mut all = self.hosts[0].live()?.statistics().await?;
            for h in self.hosts.iter().skip(1) {
                let Ok(b) = h.live() else { continue };
                if let Ok(s) = b.statistics().await {
                    all.extend(s);
                }
            }
            Ok(all)
        })
    }

    fn guest_addresses(&self, id: String) -> BoxFuture<'_, Result<Vec<GuestAddresses>, HypervisorError>> {
        Box::pin(async move { self.of(&id).await?.guest_addresses(id).await })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), HypervisorError>> {
        Box::pin(async move { self.hosts[0].live()?.ping().await })
    }
}

/// The local host's spec from the configuration, then the `[[host]]`s.
pub fn specs(config: &crate::config::Config) -> (HostSpec, Vec<HostSpec>) {
    let local = HostSpec {
        name: LOCAL_HOST.to_owned(),
        uri: config.libvirt_uri.clone(),
        labels: config.libvirt_labels.clone(),
    };
    let others = config
        .hosts
        .iter()
        .map(|h| HostSpec {
            name: h.name.clone(),
            uri: h.libvirt_uri.clone(),
            labels: h.labels.clone(),
        })
        .collect();
    (local, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Arc<Host> {
        Arc::new(Host {
            spec: HostSpec {
                name: name.to_owned(),
                uri: format!("test:///{name}"),
                labels: Vec::new(),
            },
            backend: RwLock::new(None),
            state: Mutex::new((false, None, 0)),
            known: Mutex::default(),
            opening: AtomicBool::new(false),
        })
    }

    #[test]
    fn pool_ids_name_their_host_except_on_the_local_one() {
        let hosts = vec![host("local"), host("rack2")];
        assert_eq!(split_pool(&hosts, "default").ok(), Some(("default", 0)));
        assert_eq!(split_pool(&hosts, "images@rack2").ok(), Some(("images", 1)));
        // The local host is never named, and unknown hosts are no pools.
        assert!(split_pool(&hosts, "default@local").is_err());
        assert!(split_pool(&hosts, "default@rack9").is_err());
        assert_eq!(qualify("images", &hosts[1].spec, 1), "images@rack2");
        assert_eq!(qualify("images", &hosts[0].spec, 0), "images");
    }

    #[test]
    fn a_host_that_is_down_says_which_and_why() {
        let h = host("rack2");
        h.set_state(false, Some("connection refused".into()));
        let e = h.live().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("rack2") && e.contains("connection refused"), "{e}");
    }
}
