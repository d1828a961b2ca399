//! System composition: systems made from a profile (CPU, memory, disk,
//! network, firmware, persona) and an image of the catalog (a base volume the
//! system's boot disk overlays copy-on-write), their life cycle
//! (`Creating` -> `Ready` | `Error`, then `Deleting`) kept in the store, and
//! the quotas every new system is checked against.

use std::sync::Arc;

use hyper::StatusCode;
use ring::rand::{SecureRandom, SystemRandom};

use crate::app::App;
use crate::config::CompositionConfig;
use crate::error::{Message, RedfishError};
use crate::model::{
    BootMode, DirectBoot, HypervisorError, NewDisk, NewSystem, NewVolume, PowerState, ResetType, VolumeFormat,
};
use crate::registries::base;
use crate::store::{ComposedRecord, ImageRecord, ProfileRecord};
use crate::time::now_unix;

/// Life cycle states of a composed system, as the store keeps them.
pub const CREATING: &str = "Creating";
pub const READY: &str = "Ready";
pub const ERROR: &str = "Error";
pub const DELETING: &str = "Deleting";

pub struct Composer {
    pub config: CompositionConfig,
    rng: SystemRandom,
    /// One composition or deletion at a time, so that quota checks and the
    /// records they count cannot interleave.
    lock: tokio::sync::Mutex<()>,
}

/// What a client asks for.
pub struct ComposeRequest {
    pub name: String,
    pub profile: ProfileRecord,
    pub image: Option<ImageRecord>,
    /// `ADDRESS:PORT` of the system's own BMC endpoint (profiles with a persona).
    pub bmc_address: Option<String>,
    /// The host to put it on; `None`: placement chooses.
    pub host: Option<String>,
    /// Labels its host must carry.
    pub host_labels: Vec<String>,
    /// The project it belongs to (whose quotas it counts against).
    pub project: Option<String>,
}

fn quota_error(what: &str, detail: String) -> RedfishError {
    RedfishError::new(
        StatusCode::CONFLICT,
        Message::new(&base::RESOURCE_EXHAUSTION, &[what]).resolution(detail),
    )
}

/// A domain name: letters, digits, '-', '_' and '.', at most 64.
pub fn valid_system_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What the composed systems use now, against what one more would need.
pub struct Usage {
    pub systems: u32,
    pub vcpus: u64,
    pub memory_mib: u64,
    pub disk_bytes: u64,
}

pub fn usage(records: &[ComposedRecord]) -> Usage {
    Usage {
        systems: records.len() as u32,
        vcpus: records.iter().map(|r| u64::from(r.vcpus)).sum(),
        memory_mib: records.iter().map(|r| r.memory_mib).sum(),
        disk_bytes: records.iter().map(|r| r.disk_bytes).sum(),
    }
}

/// Refuses a system the quotas leave no room for.
pub fn check_quotas(
    c: &CompositionConfig,
    used: &Usage,
    vcpus: u32,
    memory_mib: u64,
    disk_bytes: u64,
) -> Result<(), RedfishError> {
    check_limits(&Limits::of_service(c), used, vcpus, memory_mib, disk_bytes)
}

/// Quotas and how a refusal names them.
pub struct Limits {
    pub max_systems: u32,
    pub max_vcpus: u32,
    pub max_memory_mib: u64,
    pub max_disk_gib: u64,
    /// `None`: the service's quotas (`max-vcpus` ...); `Some(p)`: project p's.
    pub project: Option<String>,
}

impl Limits {
    fn of_service(c: &CompositionConfig) -> Limits {
        Limits {
            max_systems: c.max_systems,
            max_vcpus: c.max_vcpus,
            max_memory_mib: c.max_memory_mib,
            max_disk_gib: c.max_disk_gib,
            project: None,
        }
    }

    pub fn of_project(p: &crate::store::ProjectRecord) -> Limits {
        Limits {
            max_systems: p.max_systems,
            max_vcpus: p.max_vcpus,
            max_memory_mib: p.max_memory_mib,
            max_disk_gib: p.max_disk_gib,
            project: Some(p.id.clone()),
        }
    }

    fn name(&self, service: &str, project: &str, value: String) -> String {
        match &self.project {
            None => format!("The quota {service} ({value})"),
            Some(p) => format!("The quota {project} ({value}) of project '{p}'"),
        }
    }
}

/// Refuses a system that `l` leaves no room for.
pub fn check_limits(
    l: &Limits,
    used: &Usage,
    vcpus: u32,
    memory_mib: u64,
    disk_bytes: u64,
) -> Result<(), RedfishError> {
    if used.systems + 1 > l.max_systems {
        return Err(quota_error(
            "ComputerSystem",
            format!(
                "{} is reached; delete a composed system first.",
                l.name("max-systems", "MaxSystems", l.max_systems.to_string())
            ),
        ));
    }
    if used.vcpus + u64::from(vcpus) > u64::from(l.max_vcpus) {
        return Err(quota_error(
            "ProcessorCount",
            format!(
                "{} leaves {} vCPUs; the profile asks for {vcpus}.",
                l.name("max-vcpus", "MaxVCPUs", l.max_vcpus.to_string()),
                u64::from(l.max_vcpus).saturating_sub(used.vcpus)
            ),
        ));
    }
    if used.memory_mib + memory_mib > l.max_memory_mib {
        return Err(quota_error(
            "MemoryMiB",
            format!(
                "{} leaves {} MiB; the profile asks for {memory_mib}.",
                l.name("max-memory-mib", "MaxMemoryMiB", l.max_memory_mib.to_string()),
                l.max_memory_mib.saturating_sub(used.memory_mib)
            ),
        ));
    }
    let max_disk = l.max_disk_gib.saturating_mul(1 << 30);
    if used.disk_bytes + disk_bytes > max_disk {
        return Err(quota_error(
            "DiskCapacityBytes",
            format!(
                "{} leaves {} bytes; the system needs {disk_bytes}.",
                l.name("max-disk-gib", "MaxDiskGiB", l.max_disk_gib.to_string()),
                max_disk.saturating_sub(used.disk_bytes)
            ),
        ));
    }
    Ok(())
}

impl Composer {
    pub fn new(config: CompositionConfig) -> Composer {
        Composer {
            config,
            rng: SystemRandom::new(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn new_uuid(&self) -> Result<String, RedfishError> {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b).map_err(|_| RedfishError::internal())?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

/// Composes a system: checks the name and the quotas, makes its boot disk
/// (an overlay of the image, or an empty disk), defines it and records it as
/// `Creating`; then starts it in the background, which makes it `Ready` (or
/// `Error`, with the reason). Returns the new system's id. Nothing is left
/// behind when a step before the definition fails.
pub async fn compose(app: &Arc<App>, req: ComposeRequest) -> Result<String, RedfishError> {
    let composer = &app.composition;
    let _guard = composer.lock.lock().await;
    let hv = &app.hypervisor;
    if hv.system_id_by_name(req.name.clone()).await?.is_some() {
        return Err(RedfishError::already_exists("ComputerSystem", "Name", &req.name));
    }
    let p = &req.profile;
    // The boot disk: an overlay of the image's base volume, at least as large
    // as the base, or an empty disk of the profile's size.
    let (pool, volume) = match &req.image {
        Some(image) => {
            let base = hv
                .volume(image.pool.clone(), image.volume.clone())
                .await
                .map_err(|e| match e {
                    HypervisorError::NotFound(..) => RedfishError::property_value_incorrect(
                        "Oem/Redfin/Image",
                        &image.id,
                        "The image's base volume is gone from its pool; register the image again.",
                    ),
                    other => other.into(),
                })?;
            (
                image.pool.clone(),
                NewVolume {
                    name: format!("{}-disk0.qcow2", req.name),
                    capacity_bytes: p.disk_bytes.max(base.capacity_bytes),
                    format: VolumeFormat::Qcow2,
                    backing: Some((base.path, base.format.unwrap_or(VolumeFormat::Raw))),
                },
            )
        }
        None => (
            composer.config.pool.clone(),
            NewVolume {
                name: format!("{}-disk0.qcow2", req.name),
                capacity_bytes: p.disk_bytes,
                format: VolumeFormat::Qcow2,
                backing: None,
            },
        ),
    };
    let host = place(app, &req, &pool).await?;
    // An empty disk goes to the composition pool of the chosen host; an
    // overlay stays in its image's pool (whose host `place` chose).
    let pool = match &req.image {
        Some(_) => pool,
        None => app.hosts.pool_on(&pool, &host),
    };
    let records = app.store.composed_systems().await?;
    check_quotas(
        &composer.config,
        &usage(&records),
        p.vcpus,
        p.memory_mib,
        volume.capacity_bytes,
    )?;
    if let Some(project) = &req.project {
        let limits = app
            .store
            .project(project.clone())
            .await?
            .ok_or_else(|| RedfishError::property_value_not_in_list(project, "Oem/Redfin/Project"))?;
        let mine: Vec<ComposedRecord> = records
            .iter()
            .filter(|r| r.project.as_deref() == Some(project))
            .cloned()
            .collect();
        check_limits(
            &Limits::of_project(&limits),
            &usage(&mine),
            p.vcpus,
            p.memory_mib,
            volume.capacity_bytes,
        )?;
    }
    let id = composer.new_uuid()?;
    let disk_bytes = volume.capacity_bytes;
    let disk = hv.create_volume(pool.clone(), volume).await?;
    let record = ComposedRecord {
        system_id: id.clone(),
        name: req.name.clone(),
        profile: p.id.clone(),
        image: req.image.as_ref().map(|i| i.id.clone()),
        state: CREATING.to_owned(),
        message: "Defining the system".to_owned(),
        vcpus: p.vcpus,
        memory_mib: p.memory_mib,
        disk_bytes,
        volumes: vec![format!("{pool}/{}", disk.id)],
        created: now_unix(),
        project: req.project.clone(),
    };
    let undo_disk = || async {
        let _ = hv.delete_volume(pool.clone(), disk.id.clone()).await;
    };
    if let Err(e) = app.store.insert_composed(record).await {
        undo_disk().await;
        return Err(e.into());
    }
    if let Some(project) = &req.project {
        app.store
            .set_volume_project(pool.clone(), disk.id.clone(), Some(project.clone()))
            .await?;
    }
    let system = NewSystem {
        id: id.clone(),
        name: req.name.clone(),
        vcpus: p.vcpus,
        memory_mib: p.memory_mib,
        firmware: if p.firmware == "UEFI" {
            BootMode::UEFI
        } else {
            BootMode::Legacy
        },
        disks: vec![NewDisk {
            path: disk.path.clone(),
            format: VolumeFormat::Qcow2,
        }],
        network: p.network.clone(),
        direct_boot: p.kernel.as_ref().map(|k| DirectBoot {
            kernel: k.clone(),
            initrd: p.initrd.clone(),
            cmdline: p.cmdline.clone(),
        }),
        console_log: composer
            .config
            .console_log_dir
            .as_ref()
            .map(|d| d.join(format!("{}.log", req.name)).to_string_lossy().into_owned()),
        host: Some(host.clone()),
    };
    if let Err(e) = hv.define_system(system).await {
        undo_disk().await;
        let _ = app.store.delete_composed(id.clone()).await;
        return Err(e.into());
    }
    tracing::info!(system_id = %id, name = %req.name, profile = %p.id, %host, "system composed");
    if let (Some(persona), Some(address)) = (&p.persona, &req.bmc_address) {
        let endpoint = crate::resources::bmc_endpoints::NewEndpoint {
            id: None,
            system: id.clone(),
            persona: persona.clone(),
            address: address.clone(),
            user: None,
            password: None,
            role: None,
        };
        if let Err(e) = crate::resources::bmc_endpoints::create(app, endpoint).await {
            let why = e
                .messages
                .first()
                .map(|m| m.to_json()["Message"].as_str().unwrap_or("").to_owned())
                .unwrap_or_default();
            app.store
                .set_composed_state(
                    id.clone(),
                    ERROR,
                    format!("The BMC endpoint could not start: {why}"),
                )
                .await?;
            return Ok(id);
        }
    }
    // The start can take a while (firmware, TCG): the system is `Creating`
    // (Status.State `Starting`) until it runs.
    let app2 = Arc::clone(app);
    let started_id = id.clone();
    tokio::spawn(async move {
        let (state, message) = match app2.hypervisor.reset(started_id.clone(), ResetType::On).await {
            Ok(()) => (READY, String::new()),
            Err(e) => (ERROR, format!("The system could not start: {e}")),
        };
        if state == ERROR {
            tracing::warn!(system_id = %started_id, %message, "composed system failed");
        }
        let _ = app2.store.set_composed_state(started_id, state, message).await;
    });
    Ok(id)
}

/// Chooses the host of a new system: the one holding its image's pool, or
/// the one the client named, or one the placement policy picks among the
/// hosts that are up, carry the labels and have the memory free.
async fn place(app: &Arc<App>, req: &ComposeRequest, pool: &str) -> Result<String, RedfishError> {
    let image_host = match &req.image {
        Some(_) => app.hosts.host_of_pool(pool),
        None => None,
    };
    if let (Some(asked), Some(holder)) = (&req.host, &image_host) {
        if asked != holder {
            return Err(RedfishError::bad_request(
                Message::new(
                    &base::PROPERTY_VALUE_CONFLICT,
                    &["Oem/Redfin/Host", "Oem/Redfin/Image"],
                )
                .related("#/Oem/Redfin/Host")
                .resolution(format!(
                    "The image is in a pool of host '{holder}'; a system made from it runs there."
                )),
            ));
        }
    }
    let wanted = crate::libvirt::hosts::PlacementRequest {
        vcpus: req.profile.vcpus,
        memory_mib: req.profile.memory_mib,
        labels: req.host_labels.clone(),
        host: req.host.clone().or(image_host),
        overcommit_percent: app.composition.config.memory_overcommit_percent,
    };
    app.hosts
        .place(&wanted, app.composition.config.placement)
        .await
        .map_err(|e| match e {
            crate::libvirt::hosts::PlacementError::UnknownHost(h) => {
                RedfishError::property_value_not_in_list(&h, "Oem/Redfin/Host")
            }
            crate::libvirt::hosts::PlacementError::NoRoom(why) => quota_error(
                "host",
                if why.is_empty() {
                    "No host is configured.".to_owned()
                } else {
                    format!("No host can take the system: {}.", why.join("; "))
                },
            ),
        })
}

/// At start: a system left `Creating` by a bmcd that stopped while starting
/// it is `Ready` if it runs, `Error` otherwise (so that it can be deleted or
/// powered on by hand).
///
/// Systems whose domain is gone (removed outside bmcd, or a test driver's
/// state lost with the process) are forgotten, so that they no longer count
/// against the quotas.
pub async fn recover(app: &Arc<App>) {
    let Ok(records) = app.store.composed_systems().await else {
        return;
    };
    let mut left = Vec::new();
    for r in records {
        match app.hypervisor.system(r.system_id.clone()).await {
            Err(HypervisorError::SystemNotFound(_)) => {
                tracing::warn!(system_id = %r.system_id, name = %r.name, "composed system gone from libvirt; forgotten");
                let _ = app.store.delete_composed(r.system_id).await;
            }
            _ => left.push(r),
        }
    }
    for r in left
        .into_iter()
        .filter(|r| r.state == CREATING || r.state == DELETING)
    {
        let running = matches!(
            app.hypervisor.system(r.system_id.clone()).await,
            Ok(s) if s.power_state == PowerState::On
        );
        let (state, message) = if running && r.state == CREATING {
            (READY, String::new())
        } else if r.state == CREATING {
            (
                ERROR,
                "bmcd stopped while the system was being created; power it on or delete it".to_owned(),
            )
        } else {
            (
                ERROR,
                "bmcd stopped while the system was being deleted; delete it again".to_owned(),
            )
        };
        tracing::warn!(system_id = %r.system_id, was = %r.state, now = state, "composed system recovered");
        let _ = app.store.set_composed_state(r.system_id, state, message).await;
    }
}

/// Forgets a composed system whose domain is undefined outside bmcd (with
/// `virsh undefine`): it no longer counts against the quotas. Its volumes are
/// left to whoever removed it.
pub fn watch(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let mut events = app.hypervisor.events();
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if ev.event != crate::model::LifecycleEvent::Undefined {
                continue;
            }
            let Ok(Some(r)) = app.store.composed_system(ev.system_id.clone()).await else {
                continue;
            };
            // bmcd's own deletion, or a creation that failed, cleans up itself.
            if r.state == DELETING || r.state == CREATING {
                continue;
            }
            tracing::warn!(system_id = %r.system_id, name = %r.name, "composed system undefined outside bmcd; forgotten");
            let _ = app.store.delete_composed(r.system_id).await;
        }
    })
}

/// Deletes a composed system: it must be off; its definition, the volumes
/// made for it and its BMC endpoints go with it.
pub async fn decompose(app: &Arc<App>, id: &str) -> Result<(), RedfishError> {
    let _guard = app.composition.lock.lock().await;
    let Some(record) = app.store.composed_system(id.to_owned()).await? else {
        // A domain bmcd did not compose is not bmcd's to delete.
        app.hypervisor.system(id.to_owned()).await?;
        return Err(RedfishError::cannot_delete(
            "This system was not composed through this BMC; only composed systems can be deleted.",
        ));
    };
    if record.state == CREATING {
        return Err(RedfishError::from(HypervisorError::InUse(
            "the system is still being created; delete it once it is Ready or in Error".into(),
        )));
    }
    match app.hypervisor.system(id.to_owned()).await {
        Ok(s) if !matches!(s.power_state, PowerState::Off) => {
            return Err(RedfishError::from(HypervisorError::InUse(
                "the system is powered on; turn it off (ComputerSystem.Reset with ResetType ForceOff) before deleting it"
                    .into(),
            )));
        }
        Ok(_) | Err(HypervisorError::SystemNotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    app.store
        .set_composed_state(id.to_owned(), DELETING, "Removing the system".into())
        .await?;
    for e in app
        .store
        .endpoints()
        .await?
        .into_iter()
        .filter(|e| e.system_id == id)
    {
        app.endpoints.stop(&e.id).await;
        let _ = app.auth.delete_endpoint_accounts(&e.id).await;
        app.store.delete_endpoint(e.id.clone()).await?;
    }
    match app.hypervisor.undefine_system(id.to_owned()).await {
        Ok(()) | Err(HypervisorError::SystemNotFound(_)) => {}
        Err(e) => {
            app.store
                .set_composed_state(
                    id.to_owned(),
                    ERROR,
                    format!("The system could not be deleted: {e}"),
                )
                .await?;
            return Err(e.into());
        }
    }
    for v in &record.volumes {
        if let Some((pool, name)) = v.split_once('/') {
            match app
                .hypervisor
                .delete_volume(pool.to_owned(), name.to_owned())
                .await
            {
                Ok(()) | Err(HypervisorError::NotFound(..)) => {
                    let _ = app
                        .store
                        .set_volume_project(pool.to_owned(), name.to_owned(), None)
                        .await;
                }
                Err(e) => {
                    tracing::warn!(system_id = %id, volume = %v, error = %e, "volume of a deleted system left behind")
                }
            }
        }
    }
    app.store.delete_composed(id.to_owned()).await?;
    let _ = app.store.delete_boot_override(id.to_owned()).await;
    tracing::info!(system_id = %id, name = %record.name, "composed system deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(vcpus: u32, memory_mib: u64, disk_bytes: u64) -> ComposedRecord {
        ComposedRecord {
            system_id: String::new(),
            name: String::new(),
            profile: String::new(),
            image: None,
            state: READY.into(),
            message: String::new(),
            vcpus,
            memory_mib,
            disk_bytes,
            volumes: Vec::new(),
            created: 0,
            project: None,
        }
    }

    #[test]
    fn quotas_count_composed_systems() {
        let c = CompositionConfig {
            max_systems: 2,
            max_vcpus: 4,
            max_memory_mib: 2048,
            max_disk_gib: 1,
            ..CompositionConfig::default()
        };
        let used = usage(&[rec(2, 1024, 1 << 29)]);
        assert!(check_quotas(&c, &used, 2, 1024, 1 << 29).is_ok());
        assert_eq!(
            check_quotas(&c, &used, 3, 1024, 0).map_err(|e| e.status),
            Err(StatusCode::CONFLICT)
        );
        assert!(check_quotas(&c, &used, 1, 1025, 0).is_err());
        assert!(check_quotas(&c, &used, 1, 1, (1 << 29) + 1).is_err());
        let full = usage(&[rec(1, 1, 1), rec(1, 1, 1)]);
        assert!(check_quotas(&c, &full, 1, 1, 1).is_err());
    }

    #[test]
    fn system_names_are_domain_names() {
        assert!(valid_system_name("web-1.lab"));
        assert!(!valid_system_name("-x"));
        assert!(!valid_system_name("a b"));
        assert!(!valid_system_name(&"x".repeat(65)));
    }
}
