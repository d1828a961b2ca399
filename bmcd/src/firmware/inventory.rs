//! A BMC's firmware inventory in Redfish terms (`SoftwareInventory`): the
//! appliance's own banks, or the firmware a persona's BMC lists (its own
//! firmware and the system's BIOS).

use super::{BankState, FirmwareService};

/// Where a piece of firmware runs (its `RelatedItem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsOn {
    /// The BMC (its manager).
    Manager,
    /// The host (the system).
    System,
}

/// How `Version` is written (`SoftwareInventory.VersionScheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionScheme {
    DotIntegerNotation,
    Oem,
}

impl VersionScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionScheme::DotIntegerNotation => "DotIntegerNotation",
            VersionScheme::Oem => "OEM",
        }
    }
}

/// One `SoftwareInventory` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareItem {
    pub id: String,
    pub name: String,
    pub description: String,
    pub software_id: String,
    pub manufacturer: String,
    pub version: String,
    pub version_scheme: Option<VersionScheme>,
    /// `ReleaseType` (`Production`), when known.
    pub release_type: Option<&'static str>,
    /// RFC 3339, when known.
    pub release_date: Option<String>,
    pub updateable: bool,
    pub write_protected: bool,
    /// Bank images: whether it runs, and whether it is staged to run next.
    pub active: Option<bool>,
    pub staged: Option<bool>,
    pub reset_required_on_update: Option<bool>,
    /// `Status.State` and `Status.Health`.
    pub state: &'static str,
    pub health: &'static str,
    pub runs_on: RunsOn,
}

/// What a BMC lists in `UpdateService/FirmwareInventory`, and whether it can
/// apply an update itself.
pub trait FirmwareInventory: Send + Sync {
    /// Every member, in order. May block (the banks read the boot loader's
    /// environment): call it off the async runtime.
    fn software(&self) -> Vec<SoftwareItem>;

    /// Whether `SimpleUpdate` and the multipart push apply updates here.
    fn updates(&self) -> bool;
}

/// The appliance's own firmware: its two banks.
impl FirmwareInventory for FirmwareService {
    fn software(&self) -> Vec<SoftwareItem> {
        self.banks()
            .into_iter()
            .map(|b| {
                let (state, health) = match (b.active, b.state) {
                    (true, _) => ("Enabled", "OK"),
                    (false, BankState::Failed) => ("Disabled", "Critical"),
                    (false, BankState::Updating) => ("Updating", "OK"),
                    (false, _) => ("StandbySpare", "OK"),
                };
                let letter = b.bank.letter().to_uppercase();
                let note = match (b.active, b.state) {
                    (true, BankState::Staged) => " It runs on trial until bmcd reports healthy.",
                    (false, BankState::Staged) => " It is booted once at the next start.",
                    (false, BankState::Failed) => {
                        " It was tried and did not come up healthy; the BMC went back to the other bank."
                    }
                    _ => "",
                };
                SoftwareItem {
                    id: b.bank.inventory_id().to_owned(),
                    name: format!("BMC firmware, bank {letter}"),
                    description: format!(
                        "Redfin firmware image in bank {letter}{}.{note}",
                        if b.active { " (running)" } else { "" }
                    ),
                    software_id: "redfin-bmc".to_owned(),
                    manufacturer: "Redfin".to_owned(),
                    version: b.version,
                    version_scheme: None,
                    release_type: None,
                    release_date: None,
                    updateable: !b.active,
                    write_protected: b.active,
                    active: Some(b.active),
                    staged: Some(!b.active && b.state == BankState::Staged),
                    reset_required_on_update: Some(true),
                    state,
                    health,
                    runs_on: RunsOn::Manager,
                }
            })
            .collect()
    }

    fn updates(&self) -> bool {
        self.enabled()
    }
}
