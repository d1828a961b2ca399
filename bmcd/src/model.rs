//! The domain model in Redfish's own vocabulary, and the `Hypervisor` trait that
//! backends implement. Nothing here knows about libvirt, SQL or HTTP.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A boxed, sendable future: what trait methods of backends return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `Resource.PowerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    Paused,
}

/// `Resource.ResetType`, the subset a libvirt domain can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResetType {
    On,
    ForceOn,
    ForceOff,
    GracefulShutdown,
    GracefulRestart,
    ForceRestart,
    Nmi,
    PushPowerButton,
    PowerCycle,
}

impl ResetType {
    /// Every reset type bmcd knows, in the order `AllowableValues` lists them.
    pub const ALL: [ResetType; 9] = [
        ResetType::On,
        ResetType::ForceOn,
        ResetType::ForceOff,
        ResetType::GracefulShutdown,
        ResetType::GracefulRestart,
        ResetType::ForceRestart,
        ResetType::Nmi,
        ResetType::PushPowerButton,
        ResetType::PowerCycle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::On => "On",
            ResetType::ForceOn => "ForceOn",
            ResetType::ForceOff => "ForceOff",
            ResetType::GracefulShutdown => "GracefulShutdown",
            ResetType::GracefulRestart => "GracefulRestart",
            ResetType::ForceRestart => "ForceRestart",
            ResetType::Nmi => "Nmi",
            ResetType::PushPowerButton => "PushPowerButton",
            ResetType::PowerCycle => "PowerCycle",
        }
    }

    pub fn parse(s: &str) -> Option<ResetType> {
        ResetType::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ResetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Resource.Health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Health {
    OK,
    Warning,
    Critical,
}

/// What firmware the system boots with (`Boot.BootSourceOverrideMode` vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BootMode {
    Legacy,
    UEFI,
}

/// A `BootSourceOverrideTarget` that a libvirt domain can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootSource {
    None,
    Pxe,
    Hdd,
    Cd,
    Usb,
    Floppy,
}

impl BootSource {
    pub const ALL: [BootSource; 6] = [
        BootSource::None,
        BootSource::Pxe,
        BootSource::Hdd,
        BootSource::Cd,
        BootSource::Usb,
        BootSource::Floppy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BootSource::None => "None",
            BootSource::Pxe => "Pxe",
            BootSource::Hdd => "Hdd",
            BootSource::Cd => "Cd",
            BootSource::Usb => "Usb",
            BootSource::Floppy => "Floppy",
        }
    }

    pub fn parse(s: &str) -> Option<BootSource> {
        BootSource::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// `BootSourceOverrideEnabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootOverrideEnabled {
    Disabled,
    Once,
    Continuous,
}

impl BootOverrideEnabled {
    pub fn as_str(self) -> &'static str {
        match self {
            BootOverrideEnabled::Disabled => "Disabled",
            BootOverrideEnabled::Once => "Once",
            BootOverrideEnabled::Continuous => "Continuous",
        }
    }

    pub fn parse(s: &str) -> Option<BootOverrideEnabled> {
        [
            BootOverrideEnabled::Disabled,
            BootOverrideEnabled::Once,
            BootOverrideEnabled::Continuous,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// A device the system can boot from (`BootOption`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOption {
    /// The device's id: a drive's target (`vda`, `sda`) or a NIC id (`NIC1`).
    pub id: String,
    pub source: BootSource,
}

/// A domain lifecycle change reported by the hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// A new domain was defined.
    Created,
    /// An existing domain's definition changed.
    Defined,
    Undefined,
    Started,
    Suspended,
    Resumed,
    ShuttingDown,
    Stopped,
    Crashed,
    /// A device came or went, or a CD drive's tray moved: its media may have changed.
    DevicesChanged,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemEvent {
    pub system_id: String,
    pub event: LifecycleEvent,
}

/// What a system's firmware is and tells the guest: UEFI or legacy BIOS,
/// Secure Boot, and the SMBIOS strings the guest reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareSettings {
    pub mode: BootMode,
    pub secure_boot: bool,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    pub product_name: Option<String>,
}

/// A system as listed in the Systems collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSummary {
    /// The Redfish id: the domain UUID.
    pub id: String,
    pub name: String,
}

/// What a system used, read from the hypervisor for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatistics {
    pub id: String,
    pub name: String,
    /// Running or paused.
    pub power_on: bool,
    pub vcpus: u32,
    /// CPU time used since the system started.
    pub cpu_time_ns: u64,
    pub memory_kib: u64,
    pub max_memory_kib: u64,
    /// Drives and interfaces the hypervisor reported counters for (running
    /// systems only; a backend that cannot report them leaves these empty).
    pub drives: Vec<DriveStatistics>,
    pub interfaces: Vec<InterfaceStatistics>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveStatistics {
    /// The drive's id (target device, as in `Storage`).
    pub id: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStatistics {
    /// The interface's id (`NIC1`, ... as in `EthernetInterfaces`).
    pub id: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One `EthernetInterface` of a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetInterface {
    /// Stable id within the system (`NIC1`, `NIC2`, ... in device order).
    pub id: String,
    pub mac_address: String,
    /// The NIC model (`virtio`, `e1000`, ...), when the domain names one.
    pub model: Option<String>,
    /// Where the NIC is plugged (network or bridge name).
    pub attached_to: Option<String>,
    pub link_up: bool,
}

/// What kind of block device a drive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveKind {
    Disk,
    Cdrom,
    Floppy,
}

/// One block device of a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    /// The target device name (`vda`, `sda`, `hdc`).
    pub id: String,
    pub kind: DriveKind,
    /// Bus the guest sees (`virtio`, `sata`, `scsi`, `ide`, `usb`, `fdc`).
    pub bus: String,
    pub capacity_bytes: Option<u64>,
    /// Backing file, block device or volume, if any medium is present.
    pub source: Option<String>,
    pub read_only: bool,
}

/// Everything bmcd reads about one system, fresh from the hypervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputerSystem {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub power_state: PowerState,
    pub health: Health,
    pub processor_count: u32,
    pub memory_mib: u64,
    /// `x86_64`, `aarch64`, ...
    pub architecture: String,
    /// Machine type (`pc-q35-7.2`, ...).
    pub machine: String,
    pub boot_mode: BootMode,
    pub ethernet_interfaces: Vec<EthernetInterface>,
    pub drives: Vec<Drive>,
    /// Devices the firmware can boot from.
    pub boot_options: Vec<BootOption>,
    /// Boot order of the stored definition (used at the next start), by option id.
    pub boot_order: Vec<String>,
    /// The running instance started with another boot order than the stored
    /// definition has now: only a cold restart applies it.
    pub boot_change_pending: bool,
    /// The domain boots a kernel directly; firmware boot devices are not used.
    pub direct_kernel_boot: bool,
    /// The machine has a USB controller (USB sticks can be plugged in).
    pub usb_controller: bool,
    /// The firmware the system runs with now (or ran with last).
    pub firmware: FirmwareSettings,
    /// The firmware of the stored definition: what the next start uses.
    pub next_firmware: FirmwareSettings,
    /// The consoles the domain has (graphics servers, serial console).
    pub consoles: Consoles,
}

/// Where a graphics server (VNC or SPICE) of a domain listens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphicsListen {
    /// The listen address of the live definition, when it is one.
    pub address: Option<String>,
    /// The TCP port; `None` until the domain runs (autoport) or when the
    /// server listens on no TCP port at all.
    pub port: Option<u16>,
}

/// The consoles of a domain, from its live definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consoles {
    pub vnc: Option<GraphicsListen>,
    pub spice: Option<GraphicsListen>,
    /// The domain has a `<console>` or `<serial>` device.
    pub serial: bool,
}

impl ComputerSystem {
    /// The serial number: the one the VM's SMBIOS gives, or one made from its UUID.
    pub fn serial_number(&self) -> String {
        self.firmware.serial_number.clone().unwrap_or_else(|| {
            let hex: String = self.id.chars().filter(char::is_ascii_hexdigit).take(10).collect();
            format!("VM{}", hex.to_ascii_uppercase())
        })
    }

    /// What firmware the VM runs: QEMU's SeaBIOS or EDK II (OVMF), or none
    /// when it boots a kernel directly.
    pub fn bios_version(&self) -> &'static str {
        match (self.direct_kernel_boot, self.firmware.mode) {
            (true, _) => "none (direct kernel boot)",
            (false, BootMode::UEFI) => "EDK II (OVMF)",
            (false, BootMode::Legacy) => "SeaBIOS",
        }
    }

    pub fn ethernet_interface(&self, id: &str) -> Option<&EthernetInterface> {
        self.ethernet_interfaces.iter().find(|n| n.id == id)
    }

    /// Drives that hold fixed disks (CD and floppy drives are removable media).
    pub fn disks(&self) -> impl Iterator<Item = &Drive> {
        self.drives.iter().filter(|d| d.kind == DriveKind::Disk)
    }

    pub fn disk(&self, id: &str) -> Option<&Drive> {
        self.disks().find(|d| d.id == id)
    }
}

/// The on-disk format of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeFormat {
    Raw,
    Qcow2,
}

impl VolumeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeFormat::Raw => "raw",
            VolumeFormat::Qcow2 => "qcow2",
        }
    }

    pub fn parse(s: &str) -> Option<VolumeFormat> {
        match s {
            "raw" => Some(VolumeFormat::Raw),
            "qcow2" => Some(VolumeFormat::Qcow2),
            _ => None,
        }
    }
}

/// A storage pool of the hypervisor: a service-level `Storage` subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePool {
    /// The pool's name.
    pub id: String,
    pub active: bool,
    pub capacity_bytes: u64,
    pub allocation_bytes: u64,
    pub available_bytes: u64,
    /// Where its volumes live (a directory for `dir` pools).
    pub path: Option<String>,
}

/// A volume of a storage pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name within its pool.
    pub id: String,
    pub pool: String,
    pub capacity_bytes: u64,
    pub allocation_bytes: u64,
    pub format: Option<VolumeFormat>,
    /// The path systems use to reach it.
    pub path: String,
    /// The volume a copy-on-write overlay reads through to (its path).
    pub backing_path: Option<String>,
}

/// A volume to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolume {
    pub name: String,
    pub capacity_bytes: u64,
    pub format: VolumeFormat,
    /// Make a copy-on-write overlay (qcow2) of this volume (path and format).
    pub backing: Option<(String, VolumeFormat)>,
}

/// A disk of a system to define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDisk {
    pub path: String,
    pub format: VolumeFormat,
}

/// A kernel the firmware does not load: the system boots it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBoot {
    pub kernel: String,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
}

/// The IPv4 addresses the hypervisor knows a system's NIC to hold (from
/// its network's DHCP leases, or the host's ARP table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestAddresses {
    pub mac_address: String,
    /// Address and prefix length.
    pub ipv4: Vec<(std::net::Ipv4Addr, u8)>,
}

/// What a hypervisor host has and what its systems take of it (placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCapacity {
    pub cpus: u32,
    pub memory_mib: u64,
    /// Summed over every system defined on the host, running or not (their
    /// current memory).
    pub allocated_vcpus: u64,
    pub allocated_memory_mib: u64,
    pub systems: u32,
}

impl HostCapacity {
    pub fn free_memory_mib(&self) -> u64 {
        self.memory_mib.saturating_sub(self.allocated_memory_mib)
    }
}

/// A system to define (composition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSystem {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub firmware: BootMode,
    pub disks: Vec<NewDisk>,
    /// The libvirt network its one NIC joins; `None`: user-mode networking;
    /// `Some("")`: no NIC.
    pub network: Option<String>,
    pub direct_boot: Option<DirectBoot>,
    /// File the serial console is logged to.
    pub console_log: Option<String>,
    /// The host to define it on (`None`: the host of `libvirt-uri`).
    pub host: Option<String>,
}

/// Errors of a hypervisor backend, in Redfish terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HypervisorError {
    /// No system has this id.
    SystemNotFound(String),
    /// The reset cannot be done from the system's current power state.
    InvalidTransition {
        reset_type: ResetType,
        power_state: PowerState,
        reason: &'static str,
    },
    /// No resource of this kind (`StoragePool`, `Volume`) has this id.
    NotFound(&'static str, String),
    /// A resource of this kind with this id exists already.
    AlreadyExists(&'static str, String),
    /// The resource is in use (a volume a system holds, a running system).
    InUse(String),
    /// The hypervisor cannot do this operation at all.
    Unsupported(String),
    /// The hypervisor is unreachable or did not answer in time.
    Unavailable(String),
    /// The hypervisor reported a failure.
    Failed(String),
}

impl fmt::Display for HypervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HypervisorError::SystemNotFound(id) => write!(f, "system {id} not found"),
            HypervisorError::InvalidTransition {
                reset_type,
                power_state,
                reason,
            } => write!(
                f,
                "reset type {reset_type} is not possible while the system is {power_state:?}: {reason}"
            ),
            HypervisorError::NotFound(kind, id) => write!(f, "{kind} {id} not found"),
            HypervisorError::AlreadyExists(kind, id) => write!(f, "{kind} {id} exists already"),
            HypervisorError::InUse(what) => write!(f, "in use: {what}"),
            HypervisorError::Unsupported(what) => write!(f, "not supported by the hypervisor: {what}"),
            HypervisorError::Unavailable(what) => write!(f, "hypervisor unavailable: {what}"),
            HypervisorError::Failed(what) => write!(f, "hypervisor operation failed: {what}"),
        }
    }
}

impl std::error::Error for HypervisorError {}

/// A hypervisor as a BMC sees it: systems to list, read and reset.
pub trait Hypervisor: Send + Sync + 'static {
    fn list_systems(&self) -> BoxFuture<'_, Result<Vec<SystemSummary>, HypervisorError>>;

    /// Reads one system by its id (UUID). Drives carry no capacity: that
    /// costs the hypervisor one more call per drive, and only the storage
    /// resources show it ([`Hypervisor::system_with_capacities`]).
    fn system(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>>;

    /// Reads one system with the capacity of every drive that holds a medium
    /// (where the hypervisor can tell).
    fn system_with_capacities(&self, id: String) -> BoxFuture<'_, Result<ComputerSystem, HypervisorError>>;

    /// Maps a domain name to its id, for clients that address systems by name.
    fn system_id_by_name(&self, name: String) -> BoxFuture<'_, Result<Option<String>, HypervisorError>>;

    fn reset(&self, id: String, reset_type: ResetType) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Stores a new boot order (option ids, first boots first) in the system's
    /// definition; it applies from the next start.
    fn set_boot_order(&self, id: String, order: Vec<String>) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Stores new firmware settings in the system's definition; they apply from
    /// the next start (with fresh UEFI variables when the firmware changed).
    fn set_firmware(
        &self,
        id: String,
        firmware: FirmwareSettings,
    ) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// The next start of the system begins with the firmware's default UEFI
    /// variables (Secure Boot keys included).
    fn reset_firmware_variables(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Puts a medium (a file) into a system's CD drive, or empties it, on the
    /// running system and in its definition.
    fn change_media(
        &self,
        id: String,
        drive: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Plugs a USB stick backed by `source` (read-only) into the running system
    /// and its definition; returns the drive's target device.
    fn plug_usb_disk(&self, id: String, source: String) -> BoxFuture<'_, Result<String, HypervisorError>>;

    /// Unplugs the disk with target device `drive`.
    fn unplug_disk(&self, id: String, drive: String) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Gives a system without a CD drive one, holding `source` or empty (the
    /// virtual CD every BMC offers); returns its target device. A running
    /// system gets it at its next reset.
    fn add_cd_drive(
        &self,
        id: String,
        source: Option<String>,
    ) -> BoxFuture<'_, Result<String, HypervisorError>>;

    /// The storage pools (service-level `Storage`).
    fn storage_pools(&self) -> BoxFuture<'_, Result<Vec<StoragePool>, HypervisorError>>;

    /// The volumes of one pool.
    fn volumes(&self, pool: String) -> BoxFuture<'_, Result<Vec<Volume>, HypervisorError>>;

    fn volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<Volume, HypervisorError>>;

    fn create_volume(
        &self,
        pool: String,
        volume: NewVolume,
    ) -> BoxFuture<'_, Result<Volume, HypervisorError>>;

    /// Grows a volume to `capacity_bytes`.
    fn resize_volume(
        &self,
        pool: String,
        name: String,
        capacity_bytes: u64,
    ) -> BoxFuture<'_, Result<(), HypervisorError>>;

    fn delete_volume(&self, pool: String, name: String) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Attaches a volume (its path) to a system as a virtio disk, in its
    /// definition and, when it runs, live; returns the drive's target device.
    fn attach_volume(&self, id: String, disk: NewDisk) -> BoxFuture<'_, Result<String, HypervisorError>>;

    /// Defines a new system (composition); it stays off.
    fn define_system(&self, system: NewSystem) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Removes a system's definition (and its UEFI variables); it must be off.
    fn undefine_system(&self, id: String) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// Lifecycle events of every system, including changes made outside bmcd.
    fn events(&self) -> tokio::sync::broadcast::Receiver<SystemEvent>;

    /// The reset types this backend can carry out.
    fn supported_reset_types(&self) -> &'static [ResetType];

    /// Usage counters of every system (CPU time, memory, drive and network
    /// bytes), for `/metrics`.
    fn statistics(&self) -> BoxFuture<'_, Result<Vec<SystemStatistics>, HypervisorError>>;

    /// A cheap round trip to the hypervisor, for readiness.
    fn ping(&self) -> BoxFuture<'_, Result<(), HypervisorError>>;

    /// The addresses of a running system's NICs, as far as the hypervisor
    /// knows them (none for a system that is off).
    fn guest_addresses(&self, id: String) -> BoxFuture<'_, Result<Vec<GuestAddresses>, HypervisorError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_type_names_round_trip() {
        for r in ResetType::ALL {
            assert_eq!(ResetType::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).expect("serializes");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
        }
        assert_eq!(ResetType::parse("Reboot"), None);
    }
}
