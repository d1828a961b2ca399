//! Consoles of a `ComputerSystem`: the `GraphicalConsole` and `SerialConsole`
//! properties, and the OEM action that mints a console token
//! (`#Redfin.ConsoleToken`). The token opens a WebSocket on console-proxy; see
//! `crate::consoles` and docs/consoles.md.

use crate::json;
use hyper::header::HeaderValue;
use redfin_console_protocol::ConsoleKind;
use serde_json::Value;

use crate::body::{Context, Fields};
use crate::consoles::has_console;
use crate::error::RedfishError;
use crate::model::ComputerSystem;
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::time::rfc3339;

pub const CONSOLE_TOKEN_ACTION: &str = "Redfin.ConsoleToken";

/// What minting a console token requires; the SSH serial console requires
/// the same (`crate::consoles`).
pub const CONSOLE_TOKEN_PRIVILEGE: Required = Required::CONFIGURE_COMPONENTS;

pub fn routes() -> Vec<Route> {
    vec![route!(
        POST "/redfish/v1/Systems/{id}/Actions/Oem/Redfin.ConsoleToken",
        CONSOLE_TOKEN_PRIVILEGE,
        post_console_token
    )]
}

fn host_of(req: &Request) -> Option<&str> {
    crate::consoles::request_host(req.headers.get(hyper::header::HOST).and_then(|v| v.to_str().ok()))
}

/// `GraphicalConsole` and `SerialConsole` of a system.
pub fn system_properties(req: &Request, s: &ComputerSystem) -> (Value, Value) {
    let consoles = &req.app.consoles;
    let max = consoles.max_sessions();
    let graphical = json!({
        "ServiceEnabled": has_console(s, ConsoleKind::Kvmip),
        "MaxConcurrentSessions": max,
        "ConnectTypesSupported": ["KVMIP"],
    });
    let mut serial = json!({
        "MaxConcurrentSessions": max,
        "WebSocket": {
            "ServiceEnabled": has_console(s, ConsoleKind::Serial),
            "ConsoleURI": consoles.url(&s.id, ConsoleKind::Serial, host_of(req)),
            "Interactive": true,
        },
    });
    if let (Some(port), Some(obj)) = (consoles.ssh_port(), serial.as_object_mut()) {
        // console-proxy's SSH listener: `ssh -p PORT user@bmc console SYSTEM`.
        obj.insert(
            "SSH".to_owned(),
            json!({
                "ServiceEnabled": has_console(s, ConsoleKind::Serial),
                "Port": port,
                "SharedWithManagerCLI": false,
                "HotKeySequenceDisplay": "Press ~. to exit console",
            }),
        );
    }
    (graphical, serial)
}

/// The OEM action's entry in the system's `Actions`.
pub fn oem_actions(system_uri: &str, s: &ComputerSystem) -> Value {
    let types: Vec<&str> = ConsoleKind::ALL
        .into_iter()
        .filter(|k| has_console(s, *k))
        .map(ConsoleKind::redfish_name)
        .collect();
    json!({
        format!("#{CONSOLE_TOKEN_ACTION}"): {
            "target": format!("{system_uri}/Actions/Oem/{CONSOLE_TOKEN_ACTION}"),
            "ConsoleType@Redfish.AllowableValues": types,
        }
    })
}

async fn post_console_token(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Action(CONSOLE_TOKEN_ACTION))?;
    let kind = body.enumerated("ConsoleType", ConsoleKind::from_redfish_name)?;
    let kind = body.required("ConsoleType", kind)?;
    body.finish()?;
    let s = req.app.hypervisor.system(req.param(0).to_owned()).await?;
    if !has_console(&s, kind) {
        return Err(RedfishError::action_parameter_value_not_in_list(
            kind.redfish_name(),
            "ConsoleType",
            CONSOLE_TOKEN_ACTION,
        ));
    }
    let principal = req.principal()?;
    let minted = req.app.consoles.mint(principal, &s, kind, host_of(&req)).await?;
    tracing::info!(system_id = %s.id, console = kind.redfish_name(), user = %principal.user_name, "console token minted");
    Ok(Reply::ok(json!({
        "ConsoleType": kind.redfish_name(),
        "Token": minted.token,
        "WebSocketURL": minted.url,
        "TokenExpires": rfc3339(minted.expires),
        "SessionEnds": rfc3339(minted.session_deadline),
        "Uses": minted.uses,
    }))
    .with_header("cache-control", HeaderValue::from_static("no-store")))
}
