//! Boot source override, the way Redfish means it: `Continuous` changes the boot
//! order until disabled; `Once` changes it for the next boot only, and is undone
//! when the hypervisor reports that the system started (a lifecycle event, not a
//! timer). The order to come back to is kept in the store, so a restart of bmcd
//! in between loses nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use tokio::sync::{broadcast, Mutex};

use crate::error::RedfishError;
use crate::model::{BootOverrideEnabled, BootSource, ComputerSystem, Hypervisor, LifecycleEvent, PowerState};
use crate::store::{BootOverrideRecord, Store};

/// The override as GET shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOverride {
    pub enabled: BootOverrideEnabled,
    pub target: BootSource,
}

impl BootOverride {
    pub const NONE: BootOverride = BootOverride {
        enabled: BootOverrideEnabled::Disabled,
        target: BootSource::None,
    };
}

pub struct BootService {
    hypervisor: Arc<dyn Hypervisor>,
    store: Store,
    /// One change at a time per system, so that a Once being consumed and a
    /// PATCH do not interleave; changes to different systems do not wait for
    /// each other. One entry per system ever changed (systems are real domains).
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Systems that were running when their override was set, and have not
    /// stopped since: a `Started` event for them is late news of the start
    /// before the override (libvirt's events arrive after the call that caused
    /// them returned) and must not consume it.
    running_since_set: std::sync::Mutex<HashSet<String>>,
}

/// The targets a system can honour: `None` always; device classes only when
/// the firmware chooses the boot device (not for direct kernel boot).
pub fn allowable_targets(sys: &ComputerSystem) -> Vec<BootSource> {
    let mut out = vec![BootSource::None];
    if sys.direct_kernel_boot {
        return out;
    }
    for s in BootSource::ALL {
        // The virtual CD is always there (a drive is added when needed, see `set`).
        if s != BootSource::None && (s == BootSource::Cd || sys.boot_options.iter().any(|o| o.source == s)) {
            out.push(s);
        }
    }
    out
}

impl BootService {
    pub fn new(hypervisor: Arc<dyn Hypervisor>, store: Store) -> Arc<BootService> {
        Arc::new(BootService {
            hypervisor,
            store,
            locks: std::sync::Mutex::default(),
            running_since_set: std::sync::Mutex::default(),
        })
    }

    fn running_since_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running_since_set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock of one system's boot settings.
    fn lock_of(&self, system_id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(system_id.to_owned()).or_default())
    }

    pub async fn current(&self, system_id: &str) -> Result<BootOverride, RedfishError> {
        let Some(rec) = self.store.boot_override(system_id.to_owned()).await? else {
            return Ok(BootOverride::NONE);
        };
        Ok(BootOverride {
            enabled: BootOverrideEnabled::parse(&rec.enabled).unwrap_or(BootOverrideEnabled::Disabled),
            target: BootSource::parse(&rec.target).unwrap_or(BootSource::None),
        })
    }

    /// Applies a new override (or ends the current one).
    pub async fn set(&self, sys: &ComputerSystem, wanted: BootOverride) -> Result<(), RedfishError> {
        if !allowable_targets(sys).contains(&wanted.target) {
            let why = if sys.direct_kernel_boot {
                "This system boots a kernel directly; its firmware does not choose a boot device."
            } else {
                "The system has no device of this kind."
            };
            return Err(RedfishError::property_value_incorrect(
                "Boot/BootSourceOverrideTarget",
                wanted.target.as_str(),
                why,
            ));
        }
        let lock = self.lock_of(&sys.id);
        let _guard = lock.lock().await;
        if sys.power_state == PowerState::On {
            self.running_since_set().insert(sys.id.clone());
        } else {
            self.running_since_set().remove(&sys.id);
        }
        // Booting from the virtual CD of a system defined without a CD drive
        // gives it an (empty) drive first.
        let added;
        let sys = if wanted.target == BootSource::Cd
            && wanted.enabled != BootOverrideEnabled::Disabled
            && !sys.boot_options.iter().any(|o| o.source == BootSource::Cd)
        {
            self.hypervisor.add_cd_drive(sys.id.clone(), None).await?;
            added = self.hypervisor.system(sys.id.clone()).await?;
            &added
        } else {
            sys
        };
        let existing = self.store.boot_override(sys.id.clone()).await?;
        let saved = existing
            .as_ref()
            .map(|r| r.saved_order.clone())
            .unwrap_or_else(|| sys.boot_order.clone());
        if wanted.enabled == BootOverrideEnabled::Disabled || wanted.target == BootSource::None {
            if existing.is_some() {
                self.hypervisor.set_boot_order(sys.id.clone(), saved).await?;
                self.store.delete_boot_override(sys.id.clone()).await?;
            }
            return Ok(());
        }
        let Some(first) = sys.boot_options.iter().find(|o| o.source == wanted.target) else {
            return Err(RedfishError::internal());
        };
        let mut order = vec![first.id.clone()];
        order.extend(saved.iter().filter(|id| **id != first.id).cloned());
        // Record first: should bmcd stop between the two writes, the record
        // still knows the order to come back to.
        self.store
            .set_boot_override(BootOverrideRecord {
                system_id: sys.id.clone(),
                enabled: wanted.enabled.as_str().to_owned(),
                target: wanted.target.as_str().to_owned(),
                saved_order: saved,
            })
            .await?;
        self.hypervisor.set_boot_order(sys.id.clone(), order).await?;
        tracing::info!(system_id = %sys.id, enabled = wanted.enabled.as_str(), target = wanted.target.as_str(), "boot override set");
        Ok(())
    }

    /// A system started: a `Once` override has been used; restore the order.
    async fn on_started(&self, system_id: &str) -> Result<(), RedfishError> {
        let lock = self.lock_of(system_id);
        let _guard = lock.lock().await;
        if self.running_since_set().contains(system_id) {
            tracing::debug!(system_id, "start event from before the override was set; kept");
            return Ok(());
        }
        let Some(rec) = self.store.boot_override(system_id.to_owned()).await? else {
            return Ok(());
        };
        if rec.enabled != BootOverrideEnabled::Once.as_str() {
            return Ok(());
        }
        self.hypervisor
            .set_boot_order(system_id.to_owned(), rec.saved_order.clone())
            .await?;
        self.store.delete_boot_override(system_id.to_owned()).await?;
        tracing::info!(system_id, target = %rec.target, "one-time boot override used; boot order restored");
        Ok(())
    }

    /// Follows lifecycle events until the channel closes.
    pub fn watch(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut events = self.hypervisor.events();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ev) if ev.event == LifecycleEvent::Started => {
                        if let Err(e) = self.on_started(&ev.system_id).await {
                            tracing::error!(system_id = %ev.system_id, status = e.status.as_u16(), "could not end a one-time boot override");
                        }
                    }
                    Ok(ev) if matches!(ev.event, LifecycleEvent::Stopped | LifecycleEvent::Crashed) => {
                        self.running_since_set().remove(&ev.system_id);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // A missed stop would keep the next start from ending
                        // an override: assume every system stopped meanwhile.
                        self.running_since_set().clear();
                        tracing::warn!(missed = n, "lifecycle events were dropped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{BootMode, BootOption, FirmwareSettings, Health, PowerState};

    pub(crate) fn system(direct: bool) -> ComputerSystem {
        ComputerSystem {
            id: "x".into(),
            name: "x".into(),
            description: None,
            power_state: PowerState::On,
            health: Health::OK,
            processor_count: 1,
            memory_mib: 1,
            architecture: "x86_64".into(),
            machine: "pc".into(),
            boot_mode: BootMode::Legacy,
            ethernet_interfaces: vec![],
            drives: vec![],
            boot_options: vec![
                BootOption {
                    id: "vda".into(),
                    source: BootSource::Hdd,
                },
                BootOption {
                    id: "NIC1".into(),
                    source: BootSource::Pxe,
                },
            ],
            boot_order: vec![],
            boot_change_pending: false,
            direct_kernel_boot: direct,
            usb_controller: true,
            consoles: Default::default(),
            firmware: FirmwareSettings {
                mode: BootMode::Legacy,
                secure_boot: false,
                serial_number: None,
                manufacturer: None,
                product_name: None,
            },
            next_firmware: FirmwareSettings {
                mode: BootMode::Legacy,
                secure_boot: false,
                serial_number: None,
                manufacturer: None,
                product_name: None,
            },
        }
    }

    #[test]
    fn allowable_targets_follow_the_devices() {
        // No CD drive, yet `Cd`: the virtual CD is always offered.
        assert_eq!(
            allowable_targets(&system(false)),
            vec![BootSource::None, BootSource::Pxe, BootSource::Hdd, BootSource::Cd]
        );
        assert_eq!(allowable_targets(&system(true)), vec![BootSource::None]);
    }
}
