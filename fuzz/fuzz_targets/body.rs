//! Request bodies: the first byte picks an action or a PATCH/POST, the rest is its body, parsed
//! as its handler parses it (`body::Fields`: strict types, unknown properties refused). Every
//! refusal must be a Redfish 400 with a Base message, never a panic.
#![no_main]

use bmcd::body::{Context, Fields};
use bmcd::error::RedfishError;
use bmcd::resources::systems::{reset_type, SystemPatch};
use libfuzzer_sys::fuzz_target;

/// How a handler takes a property.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    /// An array of strings.
    Strs,
    /// A string from a list.
    OneOf(&'static [&'static str]),
    Object,
    ReadOnly,
    /// Taken whatever its type (checked by hand, or ignored).
    Any,
}

use Kind::*;

/// The properties each handler takes, in order (from bmcd/src/resources and personas).
#[rustfmt::skip]
const BODIES: &[(Context, &[(&str, Kind)])] = &[
    (Context::Action("VirtualMedia.InsertMedia"), &[
        ("Image", Str), ("Inserted", Bool), ("WriteProtected", Bool),
        ("TransferMethod", OneOf(&["Stream", "Upload"])), ("TransferProtocolType", OneOf(&["HTTP", "HTTPS"])),
        ("UserName", Str), ("Password", Str),
    ]),
    (Context::Action("VirtualMedia.EjectMedia"), &[]),
    (Context::Resource, &[("VerifyCertificate", Bool), ("Image", ReadOnly), ("Inserted", ReadOnly), ("WriteProtected", ReadOnly), ("MediaTypes", ReadOnly), ("ConnectedVia", ReadOnly)]),
    (Context::Resource, &[("UserName", Str), ("Password", Str), ("Context", Str)]),
    (Context::Resource, &[("SessionTimeout", Int), ("ServiceEnabled", ReadOnly)]),
    (Context::Resource, &[("UserName", Str), ("Password", Str), ("RoleId", OneOf(&["Administrator", "Operator", "ReadOnly"])), ("Enabled", Bool), ("Locked", Bool), ("PasswordChangeRequired", Bool), ("AccountTypes", Any)]),
    (Context::Resource, &[("MinPasswordLength", Int), ("MaxPasswordLength", Int), ("AccountLockoutThreshold", Int), ("AccountLockoutDuration", Int), ("AccountLockoutCounterResetAfter", Int)]),
    (Context::Resource, &[("Attributes", Object), ("@Redfish.SettingsApplyTime", Object)]),
    (Context::Resource, &[("SecureBootEnable", Bool), ("SecureBootCurrentBoot", ReadOnly), ("SecureBootMode", ReadOnly)]),
    (Context::Action("SecureBoot.ResetKeys"), &[("ResetKeysType", Str)]),
    (Context::Action("Bios.ResetBios"), &[]),
    (Context::Resource, &[("SystemId", Str), ("Persona", Str), ("Address", Str), ("Id", Str), ("UserName", Str), ("Password", Str), ("RoleId", Str)]),
    (Context::Action("ComputerSystem.GetConsoleToken"), &[("ConsoleType", OneOf(&["KVMIP", "Spice", "Serial"]))]),
    (Context::Action("LogService.ClearLog"), &[("LogEntriesETag", Any)]),
    (Context::Resource, &[("DeliveryRetryAttempts", Int), ("DeliveryRetryIntervalSeconds", Int), ("ServiceEnabled", ReadOnly)]),
    (Context::Action("EventService.SubmitTestEvent"), &[("MessageId", Str), ("Message", Str), ("MessageArgs", Any), ("OriginOfCondition", Any), ("Severity", OneOf(&["OK", "Warning", "Critical"]))]),
    (Context::Resource, &[("Destination", Str), ("Context", Str), ("Protocol", OneOf(&["Redfish"])), ("SubscriptionType", OneOf(&["RedfishEvent", "SSE"])), ("EventFormatType", OneOf(&["Event"])), ("VerifyCertificate", Bool), ("HttpHeaders", Any)]),
    (Context::Action("UpdateService.SimpleUpdate"), &[("ImageURI", Str), ("TransferProtocol", OneOf(&["HTTPS"])), ("Targets", Any), ("Username", Str), ("Password", Str)]),
    (Context::Action("OemManager.ImportSystemConfiguration"), &[("ImportBuffer", Str), ("ShareParameters", Any), ("ShutdownType", Any), ("HostPowerState", Any), ("TimeToWait", Any)]),
    (Context::Resource, &[("TargetSettingsURI", Str), ("StartTime", Str)]),
    (Context::Action("HpeiLOVirtualMedia.InsertVirtualMedia"), &[("Image", Str), ("WriteProtected", Bool)]),
    (Context::Resource, &[("Id", Str), ("Description", Str), ("Quotas", Object)]),
    (Context::Resource, &[("Profile", Str), ("Image", Str), ("BmcAddress", Str), ("Host", Str), ("Project", Str), ("HostLabels", Strs)]),
];

fn is_base_400(e: &RedfishError) -> bool {
    let body = e.body();
    let id = body["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        .as_str()
        .unwrap_or("");
    e.status == hyper::StatusCode::BAD_REQUEST && id.starts_with("Base.")
}

fn parse(context: Context, props: &[(&str, Kind)], bytes: &[u8]) -> Result<(), RedfishError> {
    let mut body = Fields::parse(bytes, context)?;
    for &(name, kind) in props {
        match kind {
            Str => drop(body.string(name)?),
            Bool => drop(body.bool(name)?),
            Int => drop(body.integer(name)?),
            Strs => drop(body.strings(name)?),
            OneOf(list) => drop(body.enumerated(name, |s| list.contains(&s).then_some(()))?),
            Object => {
                if let Some(inner) = body.object(name)? {
                    let _ = inner.is_empty();
                }
            }
            ReadOnly => body.read_only(name)?,
            Any => drop(body.take(name)),
        }
    }
    body.finish()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let outcome = match usize::from(pick) % (BODIES.len() + 2) {
        0 => reset_type(bytes).map(drop),
        1 => SystemPatch::parse(bytes).map(|p| {
            assert!(p.order.is_none_or(|o| o.len() <= bytes.len()));
        }),
        n => {
            let (context, props) = BODIES[n - 2];
            parse(context, props, bytes)
        }
    };
    if let Err(e) = outcome {
        assert!(is_base_400(&e), "{:?} {}", e.status, e.body());
    }
});
