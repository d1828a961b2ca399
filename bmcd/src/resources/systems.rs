//! `Systems`: every libvirt domain is a `ComputerSystem`, with its NICs,
//! processors, memory, storage and the `Reset` action.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::body::{Context, Fields};
use crate::boot::{allowable_targets, BootOverride};
use crate::error::RedfishError;
use crate::model::{
    BootMode, BootOverrideEnabled, BootSource, ComputerSystem, Drive, Health, PowerState, ResetType,
};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Systems", Required::LOGIN, get_system_collection),
        route!(POST "/redfish/v1/Systems", Required::CONFIGURE_COMPONENTS, post_system),
        route!(GET "/redfish/v1/Systems/{id}", Required::LOGIN, get_system),
        route!(DELETE "/redfish/v1/Systems/{id}", Required::CONFIGURE_COMPONENTS, delete_system),
        route!(PATCH "/redfish/v1/Systems/{id}", Required::CONFIGURE_COMPONENTS, patch_system),
        route!(GET "/redfish/v1/Systems/{id}/BootOptions", Required::LOGIN, get_boot_option_collection),
        route!(GET "/redfish/v1/Systems/{id}/BootOptions/{option}", Required::LOGIN, get_boot_option),
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

/// The same, with each drive's capacity (for the storage resources).
async fn system_with_capacities_of(req: &Request) -> Result<ComputerSystem, RedfishError> {
    Ok(req
        .app
        .hypervisor
        .system_with_capacities(req.param(0).to_owned())
        .await?)
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
    let boot = req.app.boot.current(&s.id).await?;
    let settings = req.app.store.system_settings(s.id.clone()).await?;
    let targets: Vec<&str> = allowable_targets(&s).iter().map(|t| t.as_str()).collect();
    let (graphical_console, serial_console) = super::consoles::system_properties(&req, &s);
    let composed = req.app.store.composed_system(s.id.clone()).await?;
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
        "SerialNumber": s.serial_number(),
        // The SMBIOS product name when the VM has one, and its machine type.
        "SKU": s.firmware.product_name.clone().unwrap_or_else(|| "Virtual Machine".to_owned()),
        "PartNumber": if s.machine.is_empty() { s.architecture.clone() } else { s.machine.clone() },
        "BiosVersion": s.bios_version(),
        "PowerState": power_state_json(&s),
        "Status": composed_status(&s, composed.as_ref()),
        "ProcessorSummary": {
            "Model": format!("{} virtual CPU", s.architecture),
            "Count": 1,
            "LogicalProcessorCount": s.processor_count,
            "CoreCount": s.processor_count,
            "Status": status_ok(),
        },
        "MemorySummary": {
            "TotalSystemMemoryGiB": (memory_gib * 1000.0).round() / 1000.0,
            "Status": status_ok(),
        },
        "AssetTag": settings.asset_tag,
        "LocationIndicatorActive": settings.location_indicator_active,
        "IndicatorLED": if settings.location_indicator_active { "Lit" } else { "Off" },
        "Boot": {
            "BootSourceOverrideEnabled": boot.enabled.as_str(),
            "BootSourceOverrideEnabled@Redfish.AllowableValues": ["Disabled", "Once", "Continuous"],
            "BootSourceOverrideTarget": boot.target.as_str(),
            "BootSourceOverrideTarget@Redfish.AllowableValues": targets,
            "BootSourceOverrideMode": boot_mode_name(s.next_firmware.mode),
            "BootSourceOverrideMode@Redfish.AllowableValues": if s.direct_kernel_boot {
                vec![boot_mode_name(s.next_firmware.mode)]
            } else {
                vec!["UEFI", "Legacy"]
            },
            "BootOrder": s.boot_order,
            "BootOptions": link(&format!("{uri}/BootOptions")),
        },
        "Processors": link(&format!("{uri}/Processors")),
        "Memory": link(&format!("{uri}/Memory")),
        "EthernetInterfaces": link(&format!("{uri}/EthernetInterfaces")),
        "SimpleStorage": link(&format!("{uri}/SimpleStorage")),
        "Storage": link(&format!("{uri}/Storage")),
        "VirtualMedia": link(&format!("{uri}/VirtualMedia")),
        "Bios": link(&format!("{uri}/Bios")),
        "LogServices": link(&format!("{uri}/LogServices")),
        "SecureBoot": link(&format!("{uri}/SecureBoot")),
        "GraphicalConsole": graphical_console,
        "SerialConsole": serial_console,
        "Links": {
            "Chassis": [link(&format!("/redfish/v1/Chassis/{}", s.id))],
            "ManagedBy": [link(&format!("/redfish/v1/Managers/{}", s.id))],
        },
        "Actions": {
            format!("#{RESET_ACTION}"): {
                "target": format!("{uri}/Actions/{RESET_ACTION}"),
                "@Redfish.ActionInfo": format!("{uri}/ResetActionInfo"),
                "ResetType@Redfish.AllowableValues": allowable_reset_types(&req),
            },
            "Oem": super::consoles::oem_actions(&uri, &s),
        },
    });
    if s.ethernet_interfaces.is_empty() {
        if let Some(o) = body.as_object_mut() {
            o.remove("EthernetInterfaces");
        }
    }
    if let Some(c) = &composed {
        let mut composition = json!({ "State": c.state, "Message": c.message });
        // The catalog is the aggregate endpoint's; a VM's own BMC does not link it.
        if req.endpoint.is_none() {
            composition["Profile"] = link(&format!("{}/{}", super::composition::PROFILES, c.profile));
            composition["Image"] = json!(c
                .image
                .as_ref()
                .map(|i| link(&format!("{}/{i}", super::composition::IMAGES))));
        }
        body["Oem"] = json!({ "Redfin": { "Composition": composition } });
    }
    Ok(Reply::ok(body))
}

/// `Status` of a system, with the life cycle of a composed one: `Starting`
/// while it is created, `Disabled` while it is deleted, and `Critical`
/// health with the reason in `Conditions` when composing it failed.
fn composed_status(s: &ComputerSystem, composed: Option<&crate::store::ComposedRecord>) -> Value {
    let mut status = system_status(s);
    let Some(c) = composed else {
        return status;
    };
    match c.state.as_str() {
        crate::composition::CREATING => status["State"] = json!("Starting"),
        crate::composition::DELETING => status["State"] = json!("Disabled"),
        crate::composition::ERROR => {
            status["Health"] = json!("Critical");
            status["HealthRollup"] = json!("Critical");
            status["Conditions"] = json!([{
                "MessageId": crate::registries::message_id(&crate::registries::base::GENERAL_ERROR),
                "Message": c.message,
                "Severity": "Critical",
            }]);
        }
        _ => {}
    }
    status
}

/// POST `{"Name", "Oem": {"Redfin": {"Profile", "Image"?, "BmcAddress"?,
/// "Host"?, "HostLabels"?}}}`: composes a system from a profile and an image
/// (each by id or URI), on the named host or on one that carries the labels
/// (placement by the `[composition] placement` policy).
async fn post_system(mut req: Request) -> Result<Reply, RedfishError> {
    // One VM's BMC does not make or remove VMs: composition is the appliance's.
    if req.endpoint.is_some() {
        return Err(RedfishError::method_not_allowed("GET, HEAD".into()));
    }
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let name = body.string("Name")?;
    let name = body.required("Name", name)?;
    let mut oem = body
        .object("Oem")?
        .ok_or_else(|| RedfishError::property_missing("Oem/Redfin/Profile"))?;
    let mut redfin = oem
        .object("Redfin")?
        .ok_or_else(|| RedfishError::property_missing("Oem/Redfin/Profile"))?;
    let profile = redfin.string("Profile")?;
    let profile = redfin.required("Profile", profile)?;
    let image = redfin.string("Image")?;
    let bmc_address = redfin.string("BmcAddress")?;
    let host = redfin.string("Host")?;
    let asked_project = redfin.string("Project")?;
    let host_labels = redfin.strings("HostLabels")?.unwrap_or_default();
    redfin.finish()?;
    oem.finish()?;
    body.finish()?;
    if !crate::composition::valid_system_name(&name) {
        return Err(RedfishError::property_value_incorrect(
            "Name",
            &name,
            "A system name has letters, digits, '-', '_' and '.' only (at most 64, not starting with '-' or '.').",
        ));
    }
    // A project member composes in its project; an account of no project
    // may compose for a project by naming it.
    let project = match (crate::tenancy::project_of(req.principal.as_ref()), asked_project) {
        (Some(own), Some(asked)) if asked != own => {
            return Err(RedfishError::property_value_not_in_list(
                &asked,
                "Oem/Redfin/Project",
            ))
        }
        (Some(own), _) => Some(own.to_owned()),
        (None, Some(asked)) => {
            let p = asked.rsplit('/').next().unwrap_or_default().to_owned();
            if req.app.store.project(p.clone()).await?.is_none() {
                return Err(RedfishError::property_value_not_in_list(
                    &asked,
                    "Oem/Redfin/Project",
                ));
            }
            Some(p)
        }
        (None, None) => None,
    };
    let visible = |owner: Option<&str>| owner.is_none() || owner == project.as_deref();
    let profile_id = profile.rsplit('/').next().unwrap_or_default().to_owned();
    let profile = super::composition::profile(&req, &profile_id)
        .await
        .ok()
        .filter(|p| visible(p.project.as_deref()))
        .ok_or_else(|| RedfishError::property_value_not_in_list(&profile, "Oem/Redfin/Profile"))?;
    let image = match image {
        None => None,
        Some(i) => {
            let id = i.rsplit('/').next().unwrap_or_default().to_owned();
            Some(
                super::composition::image(&req, &id)
                    .await
                    .ok()
                    .filter(|im| visible(im.project.as_deref()))
                    .ok_or_else(|| RedfishError::property_value_not_in_list(&i, "Oem/Redfin/Image"))?,
            )
        }
    };
    if profile.persona.is_some() && bmc_address.is_none() {
        return Err(
            RedfishError::property_missing("Oem/Redfin/BmcAddress").with_resolution(
                "The profile gives the system its own BMC endpoint: give its ADDRESS:PORT in BmcAddress.",
            ),
        );
    }
    let id = crate::composition::compose(
        &req.app,
        crate::composition::ComposeRequest {
            name,
            profile,
            image,
            bmc_address,
            host,
            host_labels,
            project,
        },
    )
    .await?;
    let uri = format!("{SYSTEMS}/{id}");
    req.params = vec![id];
    match get_system(req).await? {
        Reply::Json { body, .. } => Ok(Reply::created(&uri, body)),
        other => Ok(other),
    }
}

/// DELETE of a composed system: it must be off (ForceOff it first); its
/// definition and the volumes made for it are removed.
async fn delete_system(req: Request) -> Result<Reply, RedfishError> {
    if req.endpoint.is_some() {
        return Err(RedfishError::method_not_allowed("GET, HEAD, PATCH".into()));
    }
    crate::composition::decompose(&req.app, req.param(0)).await?;
    Ok(Reply::NoContent)
}

fn boot_mode_name(m: BootMode) -> &'static str {
    match m {
        BootMode::UEFI => "UEFI",
        BootMode::Legacy => "Legacy",
    }
}

/// The settings a system and its chassis share (a PATCH of either changes
/// both): `AssetTag`, and the location indicator as `LocationIndicatorActive`
/// or the older `IndicatorLED`.
pub struct SharedSettings {
    pub asset_tag: Option<String>,
    pub indicator: Option<bool>,
}

impl SharedSettings {
    /// Takes the shared properties out of a PATCH body.
    pub fn take(body: &mut Fields) -> Result<SharedSettings, RedfishError> {
        let asset_tag = body.string("AssetTag")?;
        let indicator = body.bool("LocationIndicatorActive")?;
        let led = body.enumerated("IndicatorLED", |s| match s {
            "Lit" | "Blinking" => Some(true),
            "Off" => Some(false),
            _ => None,
        })?;
        if let Some(tag) = &asset_tag {
            if tag.chars().count() > 64 {
                return Err(RedfishError::bad_request(crate::error::Message::new(
                    &crate::registries::base::STRING_VALUE_TOO_LONG,
                    &[tag, "64"],
                )));
            }
        }
        Ok(SharedSettings {
            asset_tag,
            indicator: indicator.or(led),
        })
    }

    /// Stores what was asked for, if anything.
    pub async fn apply(self, app: &crate::app::App, system_id: &str) -> Result<(), RedfishError> {
        if self.asset_tag.is_none() && self.indicator.is_none() {
            return Ok(());
        }
        let mut settings = app.store.system_settings(system_id.to_owned()).await?;
        if let Some(tag) = self.asset_tag {
            settings.asset_tag = tag;
        }
        if let Some(on) = self.indicator {
            settings.location_indicator_active = on;
        }
        app.store
            .set_system_settings(system_id.to_owned(), settings)
            .await?;
        Ok(())
    }
}

/// What a PATCH of a ComputerSystem asks for.
pub struct SystemPatch {
    pub settings: SharedSettings,
    pub enabled: Option<BootOverrideEnabled>,
    pub target: Option<BootSource>,
    pub mode: Option<BootMode>,
    pub order: Option<Vec<String>>,
}

impl SystemPatch {
    pub fn parse(body: &[u8]) -> Result<SystemPatch, RedfishError> {
        let mut body = Fields::parse(body, Context::Resource)?;
        let settings = SharedSettings::take(&mut body)?;
        let mut boot_fields = body.object("Boot")?;
        let (mut enabled, mut target, mut mode, mut order) = (None, None, None, None);
        if let Some(b) = boot_fields.as_mut() {
            enabled = b.enumerated("BootSourceOverrideEnabled", BootOverrideEnabled::parse)?;
            target = b.enumerated("BootSourceOverrideTarget", BootSource::parse)?;
            mode = b.enumerated("BootSourceOverrideMode", |m| match m {
                "UEFI" => Some(BootMode::UEFI),
                "Legacy" => Some(BootMode::Legacy),
                _ => None,
            })?;
            order = match b.take("BootOrder") {
                None => None,
                Some(serde_json::Value::Array(items)) => {
                    let mut ids = Vec::new();
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => ids.push(s),
                            other => {
                                return Err(RedfishError::property_value_type(
                                    &other.to_string(),
                                    "Boot/BootOrder",
                                ))
                            }
                        }
                    }
                    Some(ids)
                }
                Some(other) => {
                    return Err(RedfishError::property_value_type(
                        &other.to_string(),
                        "Boot/BootOrder",
                    ))
                }
            };
        }
        if let Some(b) = boot_fields {
            b.finish()?;
        }
        body.finish()?;
        Ok(SystemPatch {
            settings,
            enabled,
            target,
            mode,
            order,
        })
    }
}

async fn patch_system(req: Request) -> Result<Reply, RedfishError> {
    let SystemPatch {
        settings,
        enabled,
        target,
        mode,
        order,
    } = SystemPatch::parse(&req.body)?;

    let s = system_of(&req).await?;
    if let Some(m) = mode {
        if m != s.next_firmware.mode {
            if s.direct_kernel_boot {
                return Err(RedfishError::property_value_incorrect(
                    "Boot/BootSourceOverrideMode",
                    boot_mode_name(m),
                    "This system boots a kernel directly; its firmware type is fixed by its definition.",
                ));
            }
            // The firmware changes at the next start (OVMF with fresh variables,
            // or SeaBIOS); Secure Boot needs UEFI and is dropped with it.
            let next = crate::model::FirmwareSettings {
                mode: m,
                secure_boot: s.next_firmware.secure_boot && m == BootMode::UEFI,
                ..s.next_firmware.clone()
            };
            req.app.hypervisor.set_firmware(s.id.clone(), next).await?;
        }
    }
    if let Some(order) = order {
        for id in &order {
            if !s.boot_options.iter().any(|o| &o.id == id) {
                return Err(RedfishError::property_value_not_in_list(id, "Boot/BootOrder"));
            }
        }
        req.app.hypervisor.set_boot_order(s.id.clone(), order).await?;
    }
    if enabled.is_some() || target.is_some() {
        let current = req.app.boot.current(&s.id).await?;
        let target = target.unwrap_or(current.target);
        // A target alone arms a one-time override, as BMCs commonly do.
        let enabled = enabled.unwrap_or(match current.enabled {
            BootOverrideEnabled::Disabled if target != BootSource::None => BootOverrideEnabled::Once,
            e => e,
        });
        req.app.boot.set(&s, BootOverride { enabled, target }).await?;
    }
    settings.apply(&req.app, &s.id).await?;
    get_system(req).await
}

async fn get_boot_option_collection(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{SYSTEMS}/{}/BootOptions", s.id);
    Ok(Reply::ok(collection(
        &schemas::BOOT_OPTION_COLLECTION,
        &uri,
        "Boot Option Collection",
        s.boot_options.iter().map(|o| format!("{uri}/{}", o.id)),
    )))
}

async fn get_boot_option(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let id = req.param(1);
    let o = s
        .boot_options
        .iter()
        .find(|o| o.id == id)
        .ok_or_else(|| RedfishError::not_found("BootOption", id))?;
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEMS}/{}/BootOptions/{}", s.id, o.id),
        "@odata.type": schemas::BOOT_OPTION.odata_type(),
        "Id": o.id,
        "Name": format!("Boot option {}", o.id),
        "BootOptionReference": o.id,
        "DisplayName": format!("{} ({})", o.id, o.source.as_str()),
        "Alias": o.source.as_str(),
        "BootOptionEnabled": true,
    })))
}

/// The `ResetType` of a `ComputerSystem.Reset` body.
pub fn reset_type(body: &[u8]) -> Result<ResetType, RedfishError> {
    let mut body = Fields::parse(body, Context::Action(RESET_ACTION))?;
    let reset_type = body.enumerated("ResetType", ResetType::parse)?;
    let reset_type = body.required("ResetType", reset_type)?;
    body.finish()?;
    Ok(reset_type)
}

async fn post_system_reset(req: Request) -> Result<Reply, RedfishError> {
    let reset_type = reset_type(&req.body)?;
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
    // What the hypervisor knows of the guest's addresses; a failure to ask
    // leaves them empty rather than failing the read.
    let addresses = req
        .app
        .hypervisor
        .guest_addresses(s.id.clone())
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|a| nic.mac_address.eq_ignore_ascii_case(&a.mac_address))
        .map(|a| a.ipv4)
        .unwrap_or_default();
    let ipv4: Vec<Value> = addresses
        .iter()
        .map(|(addr, prefix)| {
            json!({
                "Address": addr.to_string(),
                "SubnetMask": prefix_mask(*prefix),
                "AddressOrigin": "DHCP",
                // The guest's routes are not visible from the host.
                "Gateway": null,
            })
        })
        .collect();
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
        "SpeedMbps": nominal_speed_mbps(nic.model.as_deref()),
        // The guest's own name and resolvers are not visible from the host.
        "HostName": null,
        "FQDN": null,
        "NameServers": [],
        "IPv4Addresses": ipv4,
        "Status": status_ok(),
    })))
}

/// `24` -> `255.255.255.0`.
fn prefix_mask(prefix: u8) -> String {
    let bits = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
    std::net::Ipv4Addr::from(bits).to_string()
}

/// The speed an emulated NIC model announces to its guest; none for
/// paravirtual NICs (virtio), which have no nominal speed.
fn nominal_speed_mbps(model: Option<&str>) -> Option<u32> {
    match model? {
        "e1000" | "e1000e" | "igb" => Some(1000),
        "rtl8139" | "ne2k_pci" | "pcnet" => Some(100),
        "vmxnet3" => Some(10_000),
        _ => None,
    }
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
    let s = system_with_capacities_of(&req).await?;
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
    let s = system_with_capacities_of(&req).await?;
    if req.param(1) != STORAGE_ID {
        return Err(RedfishError::not_found("Storage", req.param(1)));
    }
    let d = s
        .disk(req.param(2))
        .ok_or_else(|| RedfishError::not_found("Drive", req.param(2)))?;
    Ok(Reply::ok(drive_json(&s.id, d)))
}
