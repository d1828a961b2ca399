//! HPE iLO 5: `Systems/1`, `Managers/1`, `Chassis/1`, virtual media slots 1
//! (floppy / USB stick) and 2 (CD), the lowercase `bios` subtree, `Oem.Hpe`
//! sections with the power button and OEM virtual media actions, PostState,
//! and iLO's error envelope. What proliantutils, ilorest, sushy and Ansible
//! read and call (docs/personas.md lists it).

use crate::json;
use hyper::{Method, StatusCode};
use serde_json::{Map, Value};

use super::{call, endpoint_of, finish_task, power_state, read, reset, vendor_error, Endpoint, ResetRequest};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::firmware::inventory::{RunsOn, SoftwareItem, VersionScheme};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::store::AttributeRecord;

const SYSTEM: &str = "/redfish/v1/Systems/1";
const MANAGER: &str = "/redfish/v1/Managers/1";
const PRODUCT: &str = "ProLiant DL360 Gen10";
/// The iLO firmware: its version (`MAJOR.MINOR`) and build date as iLO
/// writes them. Every version iLO shows comes from these constants.
const FIRMWARE: &str = "2.72";
const FIRMWARE_MAJOR: u32 = 2;
const FIRMWARE_MINOR: u32 = 72;
const FIRMWARE_DATE: &str = "Sep 04 2022";
const FIRMWARE_RELEASED: &str = "2022-09-04T00:00:00Z";
/// The System ROM (BIOS): family and version string, date.
const ROM_FAMILY: &str = "U32";
const ROM_VERSION: &str = "U32 v2.68 (07/14/2022)";
const ROM_DATE: &str = "07/14/2022";
const ROM_RELEASED: &str = "2022-07-14T00:00:00Z";
const MSG: &str = "iLO.2.14";

/// Seconds a system stays `InPost`, then `InPostDiscoveryComplete`, after
/// power-on (Ironic's ilo driver polls every 2 s and must see `InPost`).
const IN_POST_S: i64 = 8;
const DISCOVERY_S: i64 = 2;

/// BIOS attributes iLO tools set that change nothing a VM has: kept per
/// system, applied at the next power-on. (name, allowed values, default)
const EXTRA_ATTRIBUTES: &[(&str, &[&str], &str)] = &[
    ("ProcVirtualization", &["Enabled", "Disabled"], "Enabled"),
    ("ProcHyperthreading", &["Enabled", "Disabled"], "Enabled"),
    ("Sriov", &["Enabled", "Disabled"], "Enabled"),
    (
        "TpmState",
        &["NotPresent", "PresentDisabled", "PresentEnabled"],
        "NotPresent",
    ),
    ("UefiOptimizedBoot", &["Enabled", "Disabled"], "Enabled"),
];

pub fn path_map(u: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("{SYSTEM}/Bios/Settings"),
            format!("/redfish/v1/Systems/{u}/Bios/Settings"),
        ),
        (format!("{SYSTEM}/Bios"), format!("/redfish/v1/Systems/{u}/Bios")),
        (SYSTEM.to_owned(), format!("/redfish/v1/Systems/{u}")),
        (
            format!("{MANAGER}/VirtualMedia/1"),
            format!("/redfish/v1/Managers/{u}/VirtualMedia/Usb"),
        ),
        (
            format!("{MANAGER}/VirtualMedia/2"),
            format!("/redfish/v1/Managers/{u}/VirtualMedia/Cd"),
        ),
        (MANAGER.to_owned(), format!("/redfish/v1/Managers/{u}")),
        (
            "/redfish/v1/Chassis/1".to_owned(),
            format!("/redfish/v1/Chassis/{u}"),
        ),
    ]
}

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", Required::CONFIGURE_COMPONENTS, post_reset),
        route!(POST "/redfish/v1/Systems/1/Actions/Oem/Hpe/HpeComputerSystemExt.PowerButton", Required::CONFIGURE_COMPONENTS, post_power_button),
        route!(POST "/redfish/v1/Systems/1/Actions/Oem/Hpe/HpeComputerSystemExt.SystemReset", Required::CONFIGURE_COMPONENTS, post_system_reset),
        route!(PATCH "/redfish/v1/Systems/1/bios/settings", Required::CONFIGURE_COMPONENTS, patch_bios_settings),
        route!(PUT "/redfish/v1/Systems/1/bios/settings", Required::CONFIGURE_COMPONENTS, patch_bios_settings),
        route!(POST "/redfish/v1/Systems/1/bios/settings", Required::CONFIGURE_COMPONENTS, patch_bios_settings),
        route!(GET "/redfish/v1/Systems/1/bios/oem/hpe/boot", Required::LOGIN, get_boot_settings),
        route!(GET "/redfish/v1/Systems/1/bios/oem/hpe/baseconfigs", Required::LOGIN, get_base_configs),
        route!(POST "/redfish/v1/Managers/1/VirtualMedia/{slot}/Actions/Oem/Hpe/HpeiLOVirtualMedia.InsertVirtualMedia", Required::CONFIGURE_MANAGER, post_insert_virtual_media),
        route!(POST "/redfish/v1/Managers/1/VirtualMedia/{slot}/Actions/Oem/Hpe/HpeiLOVirtualMedia.EjectVirtualMedia", Required::CONFIGURE_MANAGER, post_eject_virtual_media),
        route!(PATCH "/redfish/v1/Managers/1/VirtualMedia/{slot}", Required::CONFIGURE_MANAGER, patch_virtual_media),
    ]
}

/// iLO's answer to a successful action: 200 with an informational envelope.
fn success(id: &str) -> Reply {
    Reply::ok(json!({
        "error": {
            "code": "iLO.0.10.ExtendedInfo",
            "message": "See @Message.ExtendedInfo for more information.",
            "@Message.ExtendedInfo": [{"MessageId": id}],
        }
    }))
}

fn system_uri(ep: &Endpoint) -> String {
    format!("/redfish/v1/Systems/{}", ep.system_id)
}

/// iLO's error envelope; a power action in the wrong state is iLO's 400
/// `InvalidOperationForSystemState`.
pub fn error(e: &RedfishError) -> (StatusCode, Value) {
    let mut body = e.body();
    let mut status = e.status;
    let first = body["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if status == StatusCode::CONFLICT && first.ends_with(".ResourceInUse") {
        status = StatusCode::BAD_REQUEST;
        if let Some(list) = body["error"]["@Message.ExtendedInfo"].as_array_mut() {
            list.insert(
                0,
                json!({"MessageId": format!("{MSG}.InvalidOperationForSystemState"), "MessageArgs": []}),
            );
        }
    }
    if status == StatusCode::UNAUTHORIZED {
        if let Some(list) = body["error"]["@Message.ExtendedInfo"].as_array_mut() {
            list.insert(0, json!({"MessageId": "Base.1.4.NoValidSession"}));
        }
    }
    body["error"]["code"] = json!("iLO.0.10.ExtendedInfo");
    body["error"]["message"] = json!("See @Message.ExtendedInfo for more information.");
    (status, body)
}

/// iLO's default host name (and its self-signed certificate's common name):
/// `ILO` and the server's serial number.
pub fn host_name(system_id: &str) -> String {
    format!("ILO{}", serial(system_id))
}

/// What iLO 5 lists in its FirmwareInventory (`1` iLO, `2` System ROM):
/// neither can be updated through this emulated iLO.
pub fn firmware() -> Vec<SoftwareItem> {
    let item = |id: &str,
                name: &str,
                description: &str,
                software_id: &str,
                version: String,
                released: &str,
                runs_on| {
        SoftwareItem {
            id: id.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            software_id: software_id.to_owned(),
            manufacturer: "HPE".to_owned(),
            version,
            version_scheme: Some(VersionScheme::Oem),
            release_type: Some("Production"),
            release_date: Some(released.to_owned()),
            updateable: false,
            write_protected: true,
            active: None,
            staged: None,
            reset_required_on_update: None,
            state: "Enabled",
            health: "OK",
            runs_on,
        }
    };
    vec![
        item(
            "1",
            "iLO 5",
            "Integrated Lights-Out 5 firmware",
            "iLO5",
            format!("{FIRMWARE} {FIRMWARE_DATE}"),
            FIRMWARE_RELEASED,
            RunsOn::Manager,
        ),
        item(
            "2",
            "System ROM",
            "System ROM (BIOS)",
            ROM_FAMILY,
            ROM_VERSION.to_owned(),
            ROM_RELEASED,
            RunsOn::System,
        ),
    ]
}

/// The serial number iLO shows: stable, from the system's UUID.
fn serial(system_id: &str) -> String {
    let hex: String = system_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(7)
        .collect();
    format!("EMU{}", hex.to_ascii_uppercase())
}

/// PostState from the power state and how long ago the system powered on.
fn post_state(req: &Request, ep: &Endpoint, power: &str) -> &'static str {
    match power {
        "Off" | "PoweringOn" => "PowerOff",
        _ => match req.app.endpoints.since_power_on(&ep.system_id) {
            Some(ms) if ms < IN_POST_S * 1000 => "InPost",
            Some(ms) if ms < (IN_POST_S + DISCOVERY_S) * 1000 => "InPostDiscoveryComplete",
            _ => "FinishedPost",
        },
    }
}

async fn extra_attributes(req: &Request, ep: &Endpoint) -> Vec<AttributeRecord> {
    let stored = req
        .app
        .store
        .persona_attributes(ep.system_id.clone())
        .await
        .unwrap_or_default();
    EXTRA_ATTRIBUTES
        .iter()
        .map(|(name, _, default)| {
            stored
                .iter()
                .find(|a| a.name == *name)
                .cloned()
                .unwrap_or(AttributeRecord {
                    name: (*name).to_owned(),
                    current: (*default).to_owned(),
                    pending: None,
                })
        })
        .collect()
}

pub async fn decorate(req: &Request, ep: &Endpoint, template: &str, body: &mut Value) {
    let Some(o) = body.as_object_mut() else { return };
    match template {
        "/redfish/v1" => {
            o.insert("Vendor".into(), json!("HPE"));
            o.insert("Product".into(), json!(PRODUCT));
            // iLO 5 2.30+ names its type and version only to a logged-in caller.
            let manager = if req.principal.is_some() {
                json!({"ManagerType": "iLO 5", "ManagerFirmwareVersion": FIRMWARE, "Status": {"Health": "OK"}})
            } else {
                json!({"Status": {"Health": "OK"}})
            };
            o.insert(
                "Oem".into(),
                json!({"Hpe": {
                    "Manager": [manager],
                    "Moniker": {"PRODGEN": "iLO 5", "PRODNAM": "Integrated Lights-Out 5", "PRODTAG": "HPE iLO 5",
                                "VENDABR": "HPE", "SYSFAM": "ProLiant", "BMC": "iLO"},
                    "Sessions": {"LocalLoginEnabled": true, "LoginFailureDelay": 0,
                                 "LoginHint": {"Hint": "POST to /Sessions to login using the following JSON object:",
                                               "HintPOSTData": {"UserName": "username", "Password": "password"}}},
                }}),
            );
        }
        "/redfish/v1/Systems/{id}" => {
            let power = o
                .get("PowerState")
                .and_then(Value::as_str)
                .unwrap_or("Off")
                .to_owned();
            o.insert("Manufacturer".into(), json!("HPE"));
            o.insert("Model".into(), json!(PRODUCT));
            o.insert("SKU".into(), json!("867959-B21"));
            o.insert("SerialNumber".into(), json!(serial(&ep.system_id)));
            o.insert("BiosVersion".into(), json!(ROM_VERSION));
            let uri = system_uri(ep);
            o.insert(
                "Oem".into(),
                json!({"Hpe": {
                    "Actions": {
                        "#HpeComputerSystemExt.PowerButton": {
                            "PushType@Redfish.AllowableValues": ["Press", "PressAndHold"],
                            "target": format!("{SYSTEM}/Actions/Oem/Hpe/HpeComputerSystemExt.PowerButton"),
                        },
                        "#HpeComputerSystemExt.SystemReset": {
                            "ResetType@Redfish.AllowableValues": ["ColdBoot", "AuxCycle"],
                            "target": format!("{SYSTEM}/Actions/Oem/Hpe/HpeComputerSystemExt.SystemReset"),
                        },
                    },
                    "PostState": post_state(req, ep, &power),
                    "PowerAutoOn": "Restore",
                    "Bios": {
                        "Current": {"Family": ROM_FAMILY, "VersionString": ROM_VERSION, "Date": ROM_DATE},
                        "UefiClass": 2,
                    },
                    "Links": {"EthernetInterfaces": {"@odata.id": format!("{uri}/EthernetInterfaces")}},
                }}),
            );
        }
        "/redfish/v1/Managers/{id}" => {
            o.insert("Manufacturer".into(), json!("HPE"));
            o.insert("Model".into(), json!("iLO 5"));
            o.insert("FirmwareVersion".into(), json!(format!("iLO 5 v{FIRMWARE}")));
            o.insert(
                "Oem".into(),
                json!({"Hpe": {"Firmware": {"Current": {
                    "MajorVersion": FIRMWARE_MAJOR, "MinorVersion": FIRMWARE_MINOR,
                    "VersionString": format!("iLO 5 v{FIRMWARE}"), "Date": FIRMWARE_DATE}}}}),
            );
        }
        "/redfish/v1/Managers/{id}/VirtualMedia/{slot}" => {
            let slot = req.param(1).to_owned();
            let n = if slot == "Usb" { "1" } else { "2" };
            let vm = format!("{MANAGER}/VirtualMedia/{n}");
            if slot == "Usb" {
                o.insert("MediaTypes".into(), json!(["Floppy", "USBStick"]));
            }
            let mut hpe = json!({
                "Actions": {
                    "#HpeiLOVirtualMedia.InsertVirtualMedia": {
                        "target": format!("{vm}/Actions/Oem/Hpe/HpeiLOVirtualMedia.InsertVirtualMedia")},
                    "#HpeiLOVirtualMedia.EjectVirtualMedia": {
                        "target": format!("{vm}/Actions/Oem/Hpe/HpeiLOVirtualMedia.EjectVirtualMedia")},
                }
            });
            if slot == "Cd" {
                let boot = read(req, &system_uri(ep)).await.unwrap_or(Value::Null);
                let once_cd = boot["Boot"]["BootSourceOverrideEnabled"] == "Once"
                    && boot["Boot"]["BootSourceOverrideTarget"] == "Cd";
                let inserted = o.get("Inserted").and_then(Value::as_bool).unwrap_or(false);
                hpe["BootOnNextServerReset"] = json!(once_cd && inserted);
            }
            o.insert("Oem".into(), json!({ "Hpe": hpe }));
        }
        "/redfish/v1/Systems/{id}/Bios" | "/redfish/v1/Systems/{id}/Bios/Settings" => {
            let settings = template.ends_with("Settings");
            let extras = extra_attributes(req, ep).await;
            let mut attributes: Map<String, Value> = Map::new();
            if settings {
                // iLO's pending resource holds every attribute: the current
                // values with the pending ones over them.
                if let Ok(cur) = read(req, &format!("{}/Bios", system_uri(ep))).await {
                    if let Some(a) = cur["Attributes"].as_object() {
                        attributes.extend(a.clone());
                    }
                }
            }
            if let Some(a) = o.get("Attributes").and_then(Value::as_object) {
                attributes.extend(a.clone());
            }
            for x in extras {
                let v = if settings {
                    x.pending.unwrap_or(x.current)
                } else {
                    x.current
                };
                attributes.insert(x.name, json!(v));
            }
            o.insert("Attributes".into(), Value::Object(attributes));
            if !settings {
                let bios = format!("{SYSTEM}/bios");
                o.insert(
                    "Oem".into(),
                    json!({"Hpe": {"Links": {
                        "Boot": {"@odata.id": format!("{bios}/oem/hpe/boot/")},
                        "BaseConfigs": {"@odata.id": format!("{bios}/oem/hpe/baseconfigs/")},
                    }}}),
                );
            }
        }
        "/redfish/v1/SessionService/Sessions" => {
            if let Some(sid) = req.principal.as_ref().and_then(|p| p.session_id.clone()) {
                o.insert(
                    "Oem".into(),
                    json!({"Hpe": {"Links": {"MySession": {"@odata.id": format!("/redfish/v1/SessionService/Sessions/{sid}")}}}}),
                );
            }
        }
        _ => {}
    }
}

/// iLO refuses a power action that the system's state makes pointless
/// (On while on, ForceOff while off, a restart while off) with its 400
/// `InvalidOperationForSystemState`; the rest goes to the one reset.
async fn post_reset(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let reset = ResetRequest::read(&req, &ep).await?;
    let power = reset.power.to_ascii_lowercase();
    let pointless = match reset.reset_type.as_str() {
        "On" | "ForceOn" => reset.power == "On",
        "ForceOff" | "GracefulShutdown" | "ForceRestart" | "GracefulRestart" | "Nmi" => reset.power == "Off",
        _ => false,
    };
    if pointless {
        return Err(vendor_error(
            StatusCode::BAD_REQUEST,
            &format!("{MSG}.InvalidOperationForSystemState"),
            &format!("The operation is not valid while the power is {power}."),
            &[&format!("Power is {power}")],
            "Check the power state before asking for this operation.",
        ));
    }
    reset.run(&req).await?;
    Ok(success("Base.1.4.Success"))
}

async fn post_power_button(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "HpeComputerSystemExt.PowerButton";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let push = body.string("PushType")?;
    let push = body.required("PushType", push)?;
    body.finish()?;
    let uri = system_uri(&ep);
    let power = power_state(&req, &uri).await?;
    let on = power == "On" || power == "PoweringOn";
    let reset_type = match (push.as_str(), on) {
        ("Press", true) => "GracefulShutdown",
        ("Press", false) => "On",
        ("PressAndHold", true) => "ForceOff",
        ("PressAndHold", false) => return Ok(success("Base.1.4.Success")),
        _ => {
            return Err(RedfishError::action_parameter_value_not_in_list(
                &push, "PushType", ACTION,
            ))
        }
    };
    reset(&req, &uri, reset_type).await?;
    Ok(success("Base.1.4.Success"))
}

async fn post_system_reset(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "HpeComputerSystemExt.SystemReset";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let kind = body.string("ResetType")?;
    let kind = body.required("ResetType", kind)?;
    body.finish()?;
    if kind != "ColdBoot" && kind != "AuxCycle" {
        return Err(RedfishError::action_parameter_value_not_in_list(
            &kind,
            "ResetType",
            ACTION,
        ));
    }
    reset(&req, &system_uri(&ep), "PowerCycle").await?;
    Ok(success("Base.1.4.Success"))
}

/// PATCH, PUT or POST `bios/settings/`: the attributes the VM has go to the
/// one BIOS model; iLO-only ones are kept pending for the next power-on.
async fn patch_bios_settings(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    if let Some(base_config) = body.string("BaseConfig")? {
        body.finish()?;
        if base_config != "default" {
            return Err(RedfishError::property_value_not_in_list(
                &base_config,
                "BaseConfig",
            ));
        }
        call(
            &req,
            Method::POST,
            &format!("{}/Bios/Actions/Bios.ResetBios", system_uri(&ep)),
            Some(json!({})),
        )
        .await?;
        for (name, _, default) in EXTRA_ATTRIBUTES {
            set_extra(&req, &ep, name, default).await?;
        }
        return Ok(success(&format!("{MSG}.SystemResetRequired")));
    }
    let attrs = body.take("Attributes").unwrap_or(Value::Null);
    body.finish()?;
    let Some(attrs) = attrs.as_object() else {
        return Err(RedfishError::property_missing("Attributes"));
    };
    let mut generic = Map::new();
    let mut extra = Vec::new();
    for (k, v) in attrs {
        match EXTRA_ATTRIBUTES.iter().find(|(n, _, _)| n == k) {
            Some((name, allowed, _)) => {
                let value = v.as_str().ok_or_else(|| {
                    RedfishError::property_value_type(&v.to_string(), &format!("Attributes/{k}"))
                })?;
                if !allowed.contains(&value) {
                    return Err(RedfishError::property_value_not_in_list(
                        value,
                        &format!("Attributes/{k}"),
                    ));
                }
                extra.push((*name, value.to_owned()));
            }
            None => {
                generic.insert(k.clone(), v.clone());
            }
        }
    }
    if !generic.is_empty() {
        // iLO's pending resource carries every attribute; those already at
        // their current value are not changes.
        let current = read(&req, &format!("{}/Bios", system_uri(&ep))).await?;
        generic.retain(|k, v| current["Attributes"].get(k) != Some(v));
    }
    if !generic.is_empty() {
        call(
            &req,
            Method::PATCH,
            &format!("{}/Bios/Settings", system_uri(&ep)),
            Some(json!({ "Attributes": generic })),
        )
        .await?;
    }
    for (name, value) in extra {
        set_extra(&req, &ep, name, &value).await?;
    }
    Ok(success(&format!("{MSG}.SystemResetRequired")))
}

async fn set_extra(req: &Request, ep: &Endpoint, name: &str, value: &str) -> Result<(), RedfishError> {
    let current = extra_attributes(req, ep)
        .await
        .into_iter()
        .find(|a| a.name == name)
        .map(|a| a.current)
        .unwrap_or_default();
    let pending = (current != value).then(|| value.to_owned());
    req.app
        .store
        .set_persona_attribute(
            ep.system_id.clone(),
            AttributeRecord {
                name: name.to_owned(),
                current,
                pending,
            },
        )
        .await?;
    Ok(())
}

/// `bios/oem/hpe/boot/`: the boot sources and the persistent order, from
/// the system's boot options.
async fn get_boot_settings(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let uri = system_uri(&ep);
    let options = read(&req, &format!("{uri}/BootOptions")).await?;
    let mut sources = Vec::new();
    let mut order = Vec::new();
    for m in options["Members"].as_array().cloned().unwrap_or_default() {
        let Some(id) = m["@odata.id"].as_str() else {
            continue;
        };
        let opt = read(&req, id).await?;
        let name = opt["DisplayName"].as_str().unwrap_or("").to_owned();
        let reference = opt["BootOptionReference"].as_str().unwrap_or("").to_owned();
        let lower = name.to_ascii_lowercase();
        let (structured, boot_string) = if lower.contains("cd") || lower.contains("cdrom") {
            (
                format!("CD.Virtual.{reference}"),
                format!("iLO Virtual USB : HPE Virtual CD-ROM ({name})"),
            )
        } else if lower.contains("network") || lower.contains("pxe") || lower.contains("nic") {
            (
                format!("NIC.LOM.{reference}"),
                format!("Embedded LOM : Network - NIC (PXE IPv4) ({name})"),
            )
        } else {
            (
                format!("HD.Emb.{reference}"),
                format!("Embedded SATA HDD : {name}"),
            )
        };
        order.push(json!(structured));
        sources.push(json!({
            "StructuredBootString": structured,
            "BootString": boot_string,
            "UEFIDevicePath": opt["UefiDevicePath"].as_str().unwrap_or(""),
        }));
    }
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEM}/bios/oem/hpe/boot/"),
        "@odata.type": "#HpeServerBootSettings.v2_0_0.HpeServerBootSettings",
        "Id": "boot",
        "Name": "Boot Order Current Settings",
        "BootSources": sources,
        "PersistentBootConfigOrder": order,
        "DefaultBootOrder": ["Floppy", "Cd", "Usb", "EmbeddedStorage", "PcieSlotStorage", "EmbeddedFlexLOM", "PcieSlotNic", "UefiShell"],
    })))
}

/// `bios/oem/hpe/baseconfigs/`: the defaults `BaseConfig: default` restores.
async fn get_base_configs(req: Request) -> Result<Reply, RedfishError> {
    endpoint_of(&req)?;
    let mut defaults = Map::new();
    defaults.insert("BootMode".into(), json!("Uefi"));
    defaults.insert("SecureBoot".into(), json!("Disabled"));
    for (name, _, default) in EXTRA_ATTRIBUTES {
        defaults.insert((*name).into(), json!(default));
    }
    Ok(Reply::ok(json!({
        "@odata.id": format!("{SYSTEM}/bios/oem/hpe/baseconfigs/"),
        "@odata.type": "#HpeBaseConfigs.v2_0_0.HpeBaseConfigs",
        "Id": "baseconfigs",
        "Name": "BIOS Default Settings",
        "BaseConfigs": [{"default": defaults}],
    })))
}

/// The canonical URI of virtual media slot `1` or `2`.
fn slot_uri(req: &Request, ep: &Endpoint) -> Result<String, RedfishError> {
    let n = req.param(0);
    if n != "1" && n != "2" {
        return Err(RedfishError::not_found("VirtualMedia", n));
    }
    Ok(ep.to_canonical(&format!("{MANAGER}/VirtualMedia/{n}")))
}

async fn insert(
    req: &Request,
    ep: &Endpoint,
    image: String,
    write_protected: Option<bool>,
) -> Result<(), RedfishError> {
    let uri = slot_uri(req, ep)?;
    let slot = read(req, &uri).await?;
    if slot["Inserted"] == true {
        return Err(vendor_error(
            StatusCode::BAD_REQUEST,
            &format!("{MSG}.MaxVirtualMediaConnectionEstablished"),
            "No more virtual media connections are available.",
            &[],
            "Eject the inserted medium first.",
        ));
    }
    let mut params = json!({ "Image": image, "Inserted": true });
    if let Some(w) = write_protected {
        params["WriteProtected"] = json!(w);
    }
    let reply = call(
        req,
        Method::POST,
        &format!("{uri}/Actions/VirtualMedia.InsertMedia"),
        Some(params),
    )
    .await?;
    finish_task(req, reply).await
}

async fn eject(req: &Request, ep: &Endpoint) -> Result<(), RedfishError> {
    let uri = slot_uri(req, ep)?;
    if read(req, &uri).await?["Inserted"] != true {
        return Err(vendor_error(
            StatusCode::BAD_REQUEST,
            &format!("{MSG}.NoVirtualMediaConnectionAvailable"),
            "No virtual media connection is available to eject.",
            &[],
            "Insert a medium first.",
        ));
    }
    call(
        req,
        Method::POST,
        &format!("{uri}/Actions/VirtualMedia.EjectMedia"),
        Some(json!({})),
    )
    .await?;
    Ok(())
}

async fn post_insert_virtual_media(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "HpeiLOVirtualMedia.InsertVirtualMedia";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let image = body.string("Image")?;
    let image = body.required("Image", image)?;
    let write_protected = body.bool("WriteProtected")?;
    body.finish()?;
    insert(&req, &ep, image, write_protected).await?;
    Ok(success("Base.1.4.Success"))
}

async fn post_eject_virtual_media(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    Fields::parse(&req.body, Context::Action("HpeiLOVirtualMedia.EjectVirtualMedia"))?.finish()?;
    eject(&req, &ep).await?;
    Ok(success("Base.1.4.Success"))
}

/// PATCH `VirtualMedia/N/`: iLO's way to insert (`Image` + `Inserted`), eject
/// (`Inserted: false`) and boot from the CD at the next reset
/// (`Oem.Hpe.BootOnNextServerReset`).
async fn patch_virtual_media(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let image = body.string("Image")?;
    let inserted = body.bool("Inserted")?;
    let write_protected = body.bool("WriteProtected")?;
    let boot_next = match body.object("Oem")? {
        Some(mut oem) => {
            let hpe = match oem.object("Hpe")? {
                Some(mut hpe) => {
                    let b = hpe.bool("BootOnNextServerReset")?;
                    hpe.finish()?;
                    b
                }
                None => None,
            };
            oem.finish()?;
            hpe
        }
        None => None,
    };
    body.finish()?;
    match (image, inserted) {
        (Some(image), Some(true) | None) if !image.is_empty() => {
            insert(&req, &ep, image, write_protected).await?
        }
        (_, Some(false)) => eject(&req, &ep).await?,
        (Some(_), _) | (None, Some(true)) => {
            return Err(RedfishError::property_missing("Image"));
        }
        (None, None) => {}
    }
    if let Some(next) = boot_next {
        let slot = slot_uri(&req, &ep)?;
        if !slot.ends_with("/Cd") {
            return Err(RedfishError::property_unknown("Oem/Hpe/BootOnNextServerReset"));
        }
        if next && read(&req, &slot).await?["Inserted"] != true {
            return Err(RedfishError::bad_request(
                crate::error::Message::new(
                    &base::PROPERTY_VALUE_CONFLICT,
                    &["BootOnNextServerReset", "Inserted"],
                )
                .resolution("Insert an image before asking to boot from it."),
            ));
        }
        let boot = if next {
            json!({"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}})
        } else {
            json!({"Boot": {"BootSourceOverrideEnabled": "Disabled"}})
        };
        call(&req, Method::PATCH, &system_uri(&ep), Some(boot)).await?;
    }
    Ok(success("Base.1.4.Success"))
}
