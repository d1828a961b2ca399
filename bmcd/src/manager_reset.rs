//! `Manager.Reset`: the BMC restarting itself, and a per-VM BMC's reboot.
//!
//! The BMC's own reset stops the service cleanly and then, as chosen by the
//! configuration (`manager-reset`), runs bmcd again in the same process (the
//! default) or reboots the machine bmcd runs on (the firmware image, where a
//! reboot also starts a freshly written firmware bank). A per-VM BMC (the
//! manager of one system) reboots without touching its system: its own
//! endpoint listeners go away for a while and come back, as a real iDRAC or
//! iLO does after `racreset`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;

/// The reset types a Manager takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerResetType {
    GracefulRestart,
    ForceRestart,
}

impl ManagerResetType {
    pub const ALL: [ManagerResetType; 2] =
        [ManagerResetType::GracefulRestart, ManagerResetType::ForceRestart];

    pub fn as_str(self) -> &'static str {
        match self {
            ManagerResetType::GracefulRestart => "GracefulRestart",
            ManagerResetType::ForceRestart => "ForceRestart",
        }
    }

    pub fn parse(s: &str) -> Option<ManagerResetType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What the BMC's own reset does once the service has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BmcResetAction {
    /// bmcd runs again in the same process (`exec`): same PID, same arguments.
    #[default]
    Restart,
    /// The machine reboots (the firmware image).
    Reboot,
}

/// A per-VM BMC's reset: when it began and when the BMC is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SystemBmcReset {
    at_ms: i64,
    back_ms: i64,
}

pub struct ManagerResets {
    bmc: watch::Sender<Option<ManagerResetType>>,
    systems: Mutex<HashMap<String, SystemBmcReset>>,
    /// How long a per-VM BMC stays away while it reboots.
    system_bmc_down: Duration,
}

/// How long after answering the request the reset begins, so that the answer
/// reaches the client before its connection closes.
const ANSWER_FIRST: Duration = Duration::from_millis(300);

impl ManagerResets {
    pub fn new(system_bmc_down: Duration) -> ManagerResets {
        ManagerResets {
            bmc: watch::channel(None).0,
            systems: Mutex::new(HashMap::new()),
            system_bmc_down,
        }
    }

    /// Asks for the BMC's own reset (bmcd's `main` carries it out).
    pub fn reset_bmc(&self, reset_type: ManagerResetType) {
        let tx = self.bmc.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ANSWER_FIRST).await;
            tx.send_replace(Some(reset_type));
        });
    }

    /// Waits until the BMC's own reset is asked for.
    pub fn bmc_reset_requested(
        &self,
    ) -> impl std::future::Future<Output = ManagerResetType> + Send + 'static {
        let mut rx = self.bmc.subscribe();
        async move {
            loop {
                if let Some(t) = *rx.borrow_and_update() {
                    return t;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// Reboots the BMC of one system: its endpoints stop listening, and come
    /// back on the same addresses after `system_bmc_down`.
    pub fn reset_system_bmc(&self, app: &Arc<App>, system_id: &str) {
        let now = crate::time::now_unix_ms();
        let down = self.system_bmc_down;
        self.systems_lock().insert(
            system_id.to_owned(),
            SystemBmcReset {
                at_ms: now,
                back_ms: now + i64::try_from(down.as_millis()).unwrap_or(i64::MAX),
            },
        );
        let (app, system_id) = (Arc::clone(app), system_id.to_owned());
        tokio::spawn(async move {
            publish_manager_state(&app, &system_id, "Starting").await;
            tokio::time::sleep(ANSWER_FIRST).await;
            app.endpoints.restart_system(&app, &system_id, down).await;
        });
    }

    fn systems_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SystemBmcReset>> {
        self.systems.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When a system's BMC last reset (Unix ms), and whether it is still rebooting.
    pub fn system_bmc(&self, system_id: &str) -> Option<(i64, bool)> {
        let r = *self.systems_lock().get(system_id)?;
        Some((r.at_ms, crate::time::now_unix_ms() < r.back_ms))
    }
}

/// Tells subscribers (and the system's log) that the BMC of a system changed
/// state: `Enabled` when it is up, `Starting` while it reboots.
pub async fn publish_manager_state(app: &App, system_id: &str, state: &str) {
    use crate::registries::resource_event as re;
    let uri = format!("/redfish/v1/Managers/{system_id}");
    let ev = app.events.event(
        re::PREFIX,
        re::VERSION,
        &re::RESOURCE_STATE_CHANGED,
        &[&uri, state],
        uri.clone(),
        "Manager",
    );
    app.events.publish_or_log(ev).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_types_round_trip() {
        for t in ManagerResetType::ALL {
            assert_eq!(ManagerResetType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ManagerResetType::parse("On"), None);
        let action = |s: &str| serde_json::from_value::<BmcResetAction>(crate::json!(s)).ok();
        assert_eq!(action("reboot"), Some(BmcResetAction::Reboot));
        assert_eq!(action("halt"), None);
    }

    #[tokio::test]
    async fn the_bmc_reset_request_reaches_its_waiter() {
        let resets = ManagerResets::new(Duration::from_secs(1));
        let waiter = resets.bmc_reset_requested();
        resets.reset_bmc(ManagerResetType::ForceRestart);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(got.ok(), Some(ManagerResetType::ForceRestart));
    }
}
