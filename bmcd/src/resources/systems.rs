//! `Systems`: every libvirt domain is a `ComputerSystem`, with its NICs,
//! processors, memory, storage and the `Reset` action.

use serde_json::{json, Value};

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::model::{BootMode, ComputerSystem, Drive, Health, PowerState, ResetType};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Systems", Required::LOGIN, get_system_collection),
        route!(GET "/redfish/v1/Systems/{id}", Required::LOGIN, get_system),
        route!(POST "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset", Required::CONFIGURE_COMPONENTS, post_system_reset),
        route!(GET "/redfish/v1/Systems/{id}/ResetActionInfo", Required::LOGIN, get_reset_action_info),
        route!(GET "/redfish/v1/Systems/{id}/EthernetInterfaces", Required::LOGIN, get_ethernet_interface_collection),
        route!(GET "/redfish/v1/Systems/{id}/EthernetInterfaces/{nic}", Required::LOGIN, get_ethernet_interface),
        route!(GET "/redfish/v1/Systems/{id}/Processors", Required::LOGIN, get_processor_collection),
        route!(GET "/redfish/v1/Systems/{id}/Processors/{cpu}", Required::LOGIN, get_processor),
        route!(GET "/redfish/v1/Systems/{id}/Memory", Required::LOGIN, get_memory_collection),
        route!(GET "/redfish/v1/Systems/{id}/Memory/{dimm}", Required::LOGIN, get_memory),
        route!(GET "/redfish/v1/Systems/{id}/SimpleStorage", Required::LOGIN, get_simple_storage_collection),
        route!(GET "/redfish/v1/Systems/{id}/SimpleStorage/{ctl}", Required::LOGIN, get_simple_storage),
        route!(GET "/redfish/v1/Systems/{id}/Storage", Required::LOGIN, get_storage_collection),
        route!(GET "/redfish/v1/Systems/{id}/Storage/{ctl}", Required::LOGIN, get_storage),
        route!(GET "/redfish/v1/Systems/{id}/Storage/{ctl}/Drives/{drive}", Required::LOGIN, get_drive),
    ]
}

const SYSTEMS: &str = "/redfish/v1/Systems";
/// The one processor, memory and storage entry of a VM.
const CPU_ID: &str = "CPU1";
const DIMM_ID: &str = "DIMM1";
const STORAGE_ID: &str = "1";
pub const RESET_ACTION: &str = "ComputerSystem.Reset";

fn power_state_name(p: PowerState) -> &'static str {
    match p {
        PowerState::On => "On",
        PowerState::Off => "Off",
        PowerState::PoweringOn => "PoweringOn",
        PowerState::PoweringOff => "PoweringOff",
        PowerState::Paused => "Paused",
    }
}

/// `Status` of the system as a whole.
pub fn system_status(s: &ComputerSystem) -> Value {
    let state = match s.power_state {
        PowerState::On | PowerState::PoweringOn | PowerState::PoweringOff => "Enabled",
        PowerState::Paused => "Quiesced",
        PowerState::Off => "StandbyOffline",
    };
    let health = match s.health {
        Health::OK => "OK",
        Health::Warning => "Warning",
        Health::Critical => "Critical",
    };
    json!({ "State": state, "Health": health })
}

pub fn power_state_json(s: &ComputerSystem) -> &'static str {
    power_state_name(s.power_state)
}

/// Reads the system named by the first path parameter.
async fn system_of(req: &Request) -> Result<ComputerSystem, RedfishError> {
    Ok(req.app.hypervisor.system(req.param(0).to_owned()).await?)
}

fn allowable_reset_types(req: &Request) -> Vec<&'static str> {
    req.app
        .hypervisor
        .supported_reset_types()
        .iter()
        .map(|r| r.as_str())
        .collect()
}

async fn get_system_collection(req: Request) -> Result<Reply, RedfishError> {
    let systems = req.app.hypervisor.list_systems().await?;
    Ok(Reply::ok(collection(
        &schemas::COMPUTER_SYSTEM_COLLECTION,
        SYSTEMS,
        "Computer System Collection",
        systems.into_iter().map(|s| format!("{SYSTEMS}/{}", s.id)),
    )))
}

async fn get_system(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    let s = match req.app.hypervisor.system(id.to_owned()).await {
        Ok(s) => s,
        Err(crate::model::HypervisorError::SystemNotFound(_)) => {
            // Clients that know a VM by name are sent to its canonical URI.
            return match req.app.hypervisor.system_id_by_name(id.to_owned()).await? {
                Some(uuid) => Ok(Reply::Moved {
                    location: format!("{SYSTEMS}/{uuid}"),
                }),
                None => Err(RedfishError::not_found("ComputerSystem", id)),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let uri = format!("{SYSTEMS}/{}", s.id);
    let memory_gib = s.memory_mib as f64 / 1024.0;
    let mut body = json!({
        "@odata.id": uri,
        "@odata.type": schemas::COMPUTER_SYSTEM.odata_type(),
        "Id": s.id,
        "Name": s.name,
        "Description": s.description.clone().unwrap_or_else(|| "Virtual machine".to_owned()),
        "UUID": s.id,
        "SystemType": "Virtual",
        "Manufacturer": "Redfin",
        "Model": format!("Virtual Machine ({})", if s.machine.is_empty() { &s.architecture } else { &s.machine }),
        "PowerState": power_state_json(&s),
        "Status": system_status(&s),
        "ProcessorSummary": {
            "Count": 1,
            "LogicalProcessorCount": s.processor_count,
            "CoreCount": s.processor_count,
            "Status": status_ok(),
        },
        "MemorySummary": {
            "TotalSystemMemoryGiB": (memory_gib * 1000.0).round() / 1000.0,
            "Status": status_ok(),
        },
        "Boot": {
            "BootSourceOverrideEnabled": "Disabled",
            "BootSourceOverrideTarget": "None",
            "BootSourceOverrideMode": match s.boot_mode { BootMode::UEFI => "UEFI", BootMode::Legacy => "Legacy" },
        },
        "Processors": link(&format!("{uri}/Processors")),
        "Memory": link(&format!("{uri}/Memory")),
        "EthernetInterfaces": link(&format!("{uri}/EthernetInterfaces")),
        "SimpleStorage": link(&format!("{uri}/SimpleStorage")),
        "Storage": link(&format!("{uri}/Storage")),
        "Links": {
            "Chassis": [link(&format!("/redfish/v1/Chassis/{}", s.id))],
            "ManagedBy": [link(&format!("/redfish/v1/Managers/{}", super::managers::BMC_ID))],
        },
        "Actions": {
            format!("#{RESET_ACTION}"): {
                "target": format!("{uri}/Actions/{RESET_ACTION}"),
                "@Redfish.ActionInfo": format!("{uri}/ResetActionInfo"),
                "ResetType@Redfish.AllowableValues": allowable_reset_types(&req),
            }
        },
    });
    if s.ethernet_interfaces.is_empty() {
        if let Some(o) = body.as_object_mut() {
            o.remove("EthernetInterfaces");
        }
    }
    Ok(Reply::ok(body))
}

async fn post_system_reset(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(RESET_ACTION))?;
    let reset_type = body.enumerated("ResetType", ResetType::parse)?;
    let reset_type = body.required("ResetType", reset_type)?;
    body.finish()?;
    if !req.app.hypervisor.supported_reset_types().contains(&reset_type) {
        return Err(RedfishError::action_parameter_value_not_in_list(
            reset_type.as_str(),
            "ResetType",
            RESET_ACTION,
        ));
    }
    let id = req.param(0).to_owned();
    req.app.hypervisor.reset(id.clone(), reset_type).await?;
    tracing::info!(system_id = %id, reset_type = %reset_type, "system reset");
    Ok(Reply::NoContent)
}

async fn get_reset_action_info(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/ResetActionInfo", s.id),
        "@odata.type": schemas::ACTION_INFO.odata_type(),
        "Id": "ResetActionInfo",
        "Name": "Reset Action Info",
        "Parameters": [{
            "Name": "ResetType",
            "Required": true,
            "DataType": "String",
            "AllowableValues": allowable_reset_types(&req),
        }],
    })))
}

async fn get_ethernet_interface_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/EthernetInterfaces", s.id);
    Ok(Reply::ok(collection(
        &schemas::ETHERNET_INTERFACE_COLLECTION,
        &uri,
        "Ethernet Interface Collection",
        s.ethernet_interfaces.iter().map(|n| format!("{uri}/{}", n.id)),
    )))
}

async fn get_ethernet_interface(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let nic = s
        .ethernet_interface(req.param(1))
        .ok_or_else(|| RedfishError::not_found("EthernetInterface", req.param(1)))?;
    let mut description = "Virtual network interface".to_owned();
    if let Some(model) = &nic.model {
        description.push_str(&format!(", model {model}"));
    }
    if let Some(to) = &nic.attached_to {
        description.push_str(&format!(", attached to {to}"));
    }
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/EthernetInterfaces/{}", s.id, nic.id),
        "@odata.type": schemas::ETHERNET_INTERFACE.odata_type(),
        "Id": nic.id,
        "Name": format!("Ethernet Interface {}", nic.id),
        "Description": description,
        "MACAddress": nic.mac_address,
        "PermanentMACAddress": nic.mac_address,
        "InterfaceEnabled": true,
        "LinkStatus": if nic.link_up { "LinkUp" } else { "LinkDown" },
        "Status": status_ok(),
    })))
}

async fn get_processor_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/Processors", s.id);
    Ok(Reply::ok(collection(
        &schemas::PROCESSOR_COLLECTION,
        &uri,
        "Processor Collection",
        [format!("{uri}/{CPU_ID}")],
    )))
}

fn instruction_set(arch: &str) -> (&'static str, &'static str) {
    match arch {
        "x86_64" => ("x86", "x86-64"),
        "i686" => ("x86", "x86"),
        "aarch64" => ("ARM", "ARM-A64"),
        "armv7l" => ("ARM", "ARM-A32"),
        "ppc64" | "ppc64le" => ("Power", "PowerISA"),
        "riscv64" => ("RISC-V", "RV64"),
        _ => ("OEM", "OEM"),
    }
}

async fn get_processor(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    if req.param(1) != CPU_ID {
        return Err(RedfishError::not_found("Processor", req.param(1)));
    }
    let (arch, set) = instruction_set(&s.architecture);
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/Processors/{CPU_ID}", s.id),
        "@odata.type": schemas::PROCESSOR.odata_type(),
        "Id": CPU_ID,
        "Name": "Virtual Processor",
        "ProcessorType": "CPU",
        "ProcessorArchitecture": arch,
        "InstructionSet": set,
        "Manufacturer": "QEMU",
        "Model": format!("{} virtual CPU", s.architecture),
        "TotalCores": s.processor_count,
        "TotalThreads": s.processor_count,
        "Status": status_ok(),
    })))
}

async fn get_memory_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/Memory", s.id);
    Ok(Reply::ok(collection(
        &schemas::MEMORY_COLLECTION,
        &uri,
        "Memory Collection",
        [format!("{uri}/{DIMM_ID}")],
    )))
}

async fn get_memory(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    if req.param(1) != DIMM_ID {
        return Err(RedfishError::not_found("Memory", req.param(1)));
    }
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/Memory/{DIMM_ID}", s.id),
        "@odata.type": schemas::MEMORY.odata_type(),
        "Id": DIMM_ID,
        "Name": "Virtual Memory",
        "MemoryType": "DRAM",
        "CapacityMiB": s.memory_mib,
        "Status": status_ok(),
    })))
}

fn drive_protocol(bus: &str) -> Option<&'static str> {
    match bus {
        "sata" => Some("SATA"),
        "usb" => Some("USB"),
        "virtio" => Some("PCIe"),
        "nvme" => Some("NVMe"),
        "scsi" => Some("SAS"),
        _ => None,
    }
}

async fn get_simple_storage_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/SimpleStorage", s.id);
    Ok(Reply::ok(collection(
        &schemas::SIMPLE_STORAGE_COLLECTION,
        &uri,
        "Simple Storage Collection",
        [format!("{uri}/{STORAGE_ID}")],
    )))
}

async fn get_simple_storage(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    if req.param(1) != STORAGE_ID {
        return Err(RedfishError::not_found("SimpleStorage", req.param(1)));
    }
    let devices: Vec<Value> = s
        .disks()
        .map(|d| {
            let mut dev = json!({ "Name": d.id, "Status": status_ok() });
            if let Some(c) = d.capacity_bytes {
                dev["CapacityBytes"] = json!(c);
            }
            dev
        })
        .collect();
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/SimpleStorage/{STORAGE_ID}", s.id),
        "@odata.type": schemas::SIMPLE_STORAGE.odata_type(),
        "Id": STORAGE_ID,
        "Name": "Virtual Storage Controller",
        "Devices": devices,
        "Status": status_ok(),
    })))
}

async fn get_storage_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/Storage", s.id);
    Ok(Reply::ok(collection(
        &schemas::STORAGE_COLLECTION,
        &uri,
        "Storage Collection",
        [format!("{uri}/{STORAGE_ID}")],
    )))
}

async fn get_storage(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    if req.param(1) != STORAGE_ID {
        return Err(RedfishError::not_found("Storage", req.param(1)));
    }
    let uri = format!("{SYSTEMS}/{}/Storage/{STORAGE_ID}", s.id);
    let drives: Vec<Value> = s
        .disks()
        .map(|d| link(&format!("{uri}/Drives/{}", d.id)))
        .collect();
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::STORAGE.odata_type(),
        "Id": STORAGE_ID,
        "Name": "Virtual Storage",
        "Drives@odata.count": drives.len(),
        "Drives": drives,
        "Status": status_ok(),
    })))
}

fn drive_json(system_id: &str, d: &Drive) -> Value {
    let mut v = json!({
        "@odata.id": format!("{SYSTEMS}/{system_id}/Storage/{STORAGE_ID}/Drives/{}", d.id),
        "@odata.type": schemas::DRIVE.odata_type(),
        "Id": d.id,
        "Name": format!("Virtual Disk {}", d.id),
        "MediaType": "HDD",
        "WriteCacheEnabled": false,
        "Status": status_ok(),
    });
    if let Some(c) = d.capacity_bytes {
        v["CapacityBytes"] = json!(c);
    }
    if let Some(p) = drive_protocol(&d.bus) {
        v["Protocol"] = json!(p);
    }
    v
}

async fn get_drive(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    if req.param(1) != STORAGE_ID {
        return Err(RedfishError::not_found("Storage", req.param(1)));
    }
    let d = s
        .disk(req.param(2))
        .ok_or_else(|| RedfishError::not_found("Drive", req.param(2)))?;
    Ok(Reply::ok(drive_json(&s.id, d)))
}
