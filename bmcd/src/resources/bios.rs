//! `Bios` and `SecureBoot` of a system. Settings go into the system's stored
//! definition and take effect at the next reset (a Redfish reset then restarts
//! the system cold); `Bios` shows what the system runs with, `Bios/Settings`
//! what the next start will use.

use crate::json;
use serde_json::{Map, Value};

use super::link;
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::model::{BootMode, ComputerSystem, FirmwareSettings};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Systems/{id}/Bios", Required::LOGIN, get_bios),
        route!(GET "/redfish/v1/Systems/{id}/Bios/Settings", Required::LOGIN, get_bios_settings),
        route!(PATCH "/redfish/v1/Systems/{id}/Bios/Settings", Required::CONFIGURE_COMPONENTS, patch_bios_settings),
        route!(POST "/redfish/v1/Systems/{id}/Bios/Actions/Bios.ResetBios", Required::CONFIGURE_COMPONENTS, post_bios_reset_bios),
        route!(GET "/redfish/v1/Systems/{id}/SecureBoot", Required::LOGIN, get_secure_boot),
        route!(PATCH "/redfish/v1/Systems/{id}/SecureBoot", Required::CONFIGURE_COMPONENTS, patch_secure_boot),
        route!(POST "/redfish/v1/Systems/{id}/SecureBoot/Actions/SecureBoot.ResetKeys", Required::CONFIGURE_COMPONENTS, post_secure_boot_reset_keys),
    ]
}

/// The attribute registry every system's `Bios` uses.
pub const ATTRIBUTE_REGISTRY: &str = "RedfinBiosAttributeRegistry.1.0.0";
const MAX_STRING: usize = 64;

/// One BIOS attribute: its name, how it reads from and writes to the firmware
/// settings.
struct Attribute {
    name: &'static str,
    display: &'static str,
    /// Enumeration values, or empty for a string.
    values: &'static [&'static str],
    read: fn(&FirmwareSettings) -> Value,
    write: fn(&mut FirmwareSettings, &str),
}

fn opt(v: &Option<String>) -> Value {
    json!(v.clone().unwrap_or_default())
}

fn set_opt(slot: &mut Option<String>, v: &str) {
    *slot = (!v.is_empty()).then(|| v.to_owned());
}

const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        name: "BootMode",
        display: "Boot mode",
        values: &["Uefi", "LegacyBios"],
        read: |f| {
            json!(if f.mode == BootMode::UEFI {
                "Uefi"
            } else {
                "LegacyBios"
            })
        },
        write: |f, v| {
            f.mode = if v == "Uefi" {
                BootMode::UEFI
            } else {
                BootMode::Legacy
            };
            if f.mode == BootMode::Legacy {
                f.secure_boot = false;
            }
        },
    },
    Attribute {
        name: "SecureBoot",
        display: "UEFI Secure Boot",
        values: &["Enabled", "Disabled"],
        read: |f| json!(if f.secure_boot { "Enabled" } else { "Disabled" }),
        write: |f, v| f.secure_boot = v == "Enabled",
    },
    Attribute {
        name: "SystemManufacturer",
        display: "SMBIOS system manufacturer",
        values: &[],
        read: |f| opt(&f.manufacturer),
        write: |f, v| set_opt(&mut f.manufacturer, v),
    },
    Attribute {
        name: "SystemProductName",
        display: "SMBIOS system product name",
        values: &[],
        read: |f| opt(&f.product_name),
        write: |f, v| set_opt(&mut f.product_name, v),
    },
    Attribute {
        name: "SystemSerialNumber",
        display: "SMBIOS system serial number",
        values: &[],
        read: |f| opt(&f.serial_number),
        write: |f, v| set_opt(&mut f.serial_number, v),
    },
];

fn attributes(f: &FirmwareSettings) -> Value {
    let mut m = Map::new();
    for a in ATTRIBUTES {
        m.insert(a.name.to_owned(), (a.read)(f));
    }
    Value::Object(m)
}

async fn system_of(req: &Request) -> Result<ComputerSystem, RedfishError> {
    Ok(req.app.hypervisor.system(req.param(0).to_owned()).await?)
}

fn bios_uri(s: &ComputerSystem) -> String {
    format!("/redfish/v1/Systems/{}/Bios", s.id)
}

async fn get_bios(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = bios_uri(&s);
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::BIOS.odata_type(),
        "Id": "Bios",
        "Name": "BIOS Configuration",
        "Description": "Firmware settings the system runs with",
        "AttributeRegistry": ATTRIBUTE_REGISTRY,
        "Attributes": attributes(&s.firmware),
        "@Redfish.Settings": {
            "@odata.type": "#Settings.v1_4_0.Settings",
            "SettingsObject": link(&format!("{uri}/Settings")),
            "SupportedApplyTimes": ["OnReset"],
        },
        "Actions": {
            "#Bios.ResetBios": { "target": format!("{uri}/Actions/Bios.ResetBios") },
        },
    })))
}

async fn get_bios_settings(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("{}/Settings", bios_uri(&s));
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::BIOS.odata_type(),
        "Id": "Settings",
        "Name": "BIOS Pending Settings",
        "Description": "Firmware settings the next start of the system uses",
        "AttributeRegistry": ATTRIBUTE_REGISTRY,
        "Attributes": attributes(&s.next_firmware),
        "@Redfish.SettingsApplyTime": {
            "@odata.type": "#Settings.v1_4_0.PreferredApplyTime",
            "ApplyTime": "OnReset",
            "ApplyTime@Redfish.AllowableValues": ["OnReset"],
        },
    })))
}

/// Stores new firmware settings for the next start.
async fn store_firmware(
    req: &Request,
    s: &ComputerSystem,
    next: FirmwareSettings,
) -> Result<(), RedfishError> {
    if next.secure_boot && next.mode != BootMode::UEFI {
        return Err(RedfishError::bad_request(
            Message::new(&base::PROPERTY_VALUE_CONFLICT, &["SecureBoot", "BootMode"])
                .resolution("Secure Boot needs UEFI firmware: set BootMode to Uefi as well."),
        ));
    }
    if s.direct_kernel_boot && next.mode != s.next_firmware.mode {
        return Err(RedfishError::property_value_incorrect(
            "BootMode",
            if next.mode == BootMode::UEFI {
                "Uefi"
            } else {
                "LegacyBios"
            },
            "This system boots a kernel directly; its firmware type is fixed by its definition.",
        ));
    }
    if next != s.next_firmware {
        req.app.hypervisor.set_firmware(s.id.clone(), next).await?;
        tracing::info!(system_id = %s.id, "firmware settings stored for the next reset");
    }
    Ok(())
}

async fn patch_bios_settings(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let attrs = body.object("Attributes")?;
    if let Some(mut apply) = body.object("@Redfish.SettingsApplyTime")? {
        let when = apply.enumerated("ApplyTime", |t| (t == "OnReset").then_some(()))?;
        apply.take("@odata.type");
        let _ = when;
        apply.finish()?;
    }
    body.finish()?;
    let s = system_of(&req).await?;
    let mut next = s.next_firmware.clone();
    if let Some(mut attrs) = attrs {
        for a in ATTRIBUTES {
            let value = if a.values.is_empty() {
                attrs.string(a.name)?
            } else {
                attrs.enumerated(a.name, |v| a.values.contains(&v).then(|| v.to_owned()))?
            };
            if let Some(v) = value {
                if v.chars().count() > MAX_STRING || v.chars().any(|c| c.is_control()) {
                    return Err(RedfishError::property_value_incorrect(
                        a.name,
                        &v,
                        "Use up to 64 printable characters.",
                    ));
                }
                (a.write)(&mut next, &v);
            }
        }
        attrs.finish()?;
    }
    store_firmware(&req, &s, next).await?;
    get_bios_settings(req).await
}

async fn post_bios_reset_bios(req: Request) -> Result<Reply, RedfishError> {
    Fields::parse(&req.body, Context::Action("Bios.ResetBios"))?.finish()?;
    let s = system_of(&req).await?;
    // Defaults: the firmware type stays (it is the machine's), Secure Boot off,
    // no custom SMBIOS strings.
    let next = FirmwareSettings {
        mode: s.next_firmware.mode,
        secure_boot: false,
        serial_number: None,
        manufacturer: None,
        product_name: None,
    };
    store_firmware(&req, &s, next).await?;
    Ok(Reply::NoContent)
}

async fn get_secure_boot(req: Request) -> Result<Reply, RedfishError> {
    let s = system_of(&req).await?;
    let uri = format!("/redfish/v1/Systems/{}/SecureBoot", s.id);
    // Legacy BIOS has no Secure Boot: it is off.
    let current = if s.firmware.mode == BootMode::UEFI && s.firmware.secure_boot {
        "Enabled"
    } else {
        "Disabled"
    };
    Ok(Reply::ok(json!({
        "@odata.id": uri,
        "@odata.type": schemas::SECURE_BOOT.odata_type(),
        "Id": "SecureBoot",
        "Name": "UEFI Secure Boot",
        "SecureBootEnable": s.next_firmware.secure_boot,
        "SecureBootCurrentBoot": current,
        "SecureBootMode": if s.firmware.secure_boot { "UserMode" } else { "SetupMode" },
        "Actions": {
            "#SecureBoot.ResetKeys": {
                "target": format!("{uri}/Actions/SecureBoot.ResetKeys"),
                "ResetKeysType@Redfish.AllowableValues": ["ResetAllKeysToDefault"],
            },
        },
    })))
}

async fn patch_secure_boot(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let enable = body.bool("SecureBootEnable")?;
    body.read_only("SecureBootCurrentBoot")?;
    body.read_only("SecureBootMode")?;
    body.finish()?;
    let s = system_of(&req).await?;
    if let Some(enable) = enable {
        if enable && s.next_firmware.mode != BootMode::UEFI {
            return Err(RedfishError::property_value_incorrect(
                "SecureBootEnable",
                "true",
                "Secure Boot needs UEFI firmware: set the Bios attribute BootMode to Uefi first.",
            ));
        }
        let next = FirmwareSettings {
            secure_boot: enable,
            ..s.next_firmware.clone()
        };
        store_firmware(&req, &s, next).await?;
    }
    get_secure_boot(req).await
}

async fn post_secure_boot_reset_keys(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "SecureBoot.ResetKeys";
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let kind = body.string("ResetKeysType")?;
    let kind = body.required("ResetKeysType", kind)?;
    body.finish()?;
    match kind.as_str() {
        "ResetAllKeysToDefault" => {}
        "DeleteAllKeys" | "DeletePK" => return Err(RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_NOT_SUPPORTED, &["ResetKeysType", ACTION]).resolution(
                "The BMC can restore the firmware's default key set; deleting keys is done from the guest.",
            ),
        )),
        other => {
            return Err(RedfishError::action_parameter_value_not_in_list(
                other,
                "ResetKeysType",
                ACTION,
            ))
        }
    }
    let s = system_of(&req).await?;
    if s.next_firmware.mode != BootMode::UEFI {
        return Err(RedfishError::property_value_incorrect(
            "ResetKeysType",
            &kind,
            "The system does not use UEFI firmware.",
        ));
    }
    req.app.hypervisor.reset_firmware_variables(s.id.clone()).await?;
    Ok(Reply::NoContent)
}

/// Where the attribute registry is served.
pub const REGISTRY_ID: &str = "BiosAttributeRegistry";

/// The attribute registry document (served under `/redfish/v1/Registries`).
pub fn attribute_registry_document() -> Value {
    let attrs: Vec<Value> = ATTRIBUTES
        .iter()
        .map(|a| {
            let mut v = json!({
                "AttributeName": a.name,
                "DisplayName": a.display,
                "ReadOnly": false,
                "ResetRequired": true,
            });
            if a.values.is_empty() {
                v["Type"] = json!("String");
                v["MaxLength"] = json!(MAX_STRING);
            } else {
                v["Type"] = json!("Enumeration");
                v["Value"] = json!(a
                    .values
                    .iter()
                    .map(|x| json!({"ValueName": x, "ValueDisplayName": x}))
                    .collect::<Vec<_>>());
            }
            v
        })
        .collect();
    json!({
        "@odata.type": "#AttributeRegistry.v1_4_0.AttributeRegistry",
        "Id": ATTRIBUTE_REGISTRY,
        "Name": "Redfin BIOS Attribute Registry",
        "Language": "en",
        "Description": "The firmware settings of a Redfin virtual machine",
        "OwningEntity": "Redfin",
        "RegistryVersion": "1.0.0",
        "SupportedSystems": [{ "ProductName": "Redfin virtual machine", "SystemId": "RedfinVM" }],
        "RegistryEntries": { "Attributes": attrs },
    })
}
