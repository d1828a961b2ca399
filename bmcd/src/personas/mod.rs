//! Vendor personas: one BMC per VM that looks like an HPE iLO 5 or a Dell
//! iDRAC 9 (or a plain Redfish BMC), over the one model.
//!
//! A persona is an adapter. On the way in it turns its vendor paths
//! (`Systems/System.Embedded.1`, `systems/1/bios/`) into the canonical ones
//! (`Systems/{uuid}`, `Systems/{uuid}/Bios`) that the resource handlers serve;
//! on the way out it turns links back, adds the vendor's OEM sections and
//! identity, and words errors the vendor's way. Its OEM actions (iLO's power
//! button, iDRAC's jobs and configuration import) are translated into the
//! same operations the standard actions use, by calling the canonical routes.
//! No business logic is forked.

pub mod endpoints;
pub mod idrac9;
pub mod ilo5;

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::error::RedfishError;
use crate::firmware::inventory::{FirmwareInventory, RunsOn, SoftwareItem};
use crate::router::{Match, Reply, Request, Route, Router};

/// Which vendor a BMC endpoint looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersonaKind {
    Generic,
    Ilo5,
    Idrac9,
}

impl PersonaKind {
    pub fn parse(s: &str) -> Option<PersonaKind> {
        match s.to_ascii_lowercase().as_str() {
            "generic" => Some(PersonaKind::Generic),
            "ilo5" => Some(PersonaKind::Ilo5),
            "idrac9" => Some(PersonaKind::Idrac9),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PersonaKind::Generic => "generic",
            PersonaKind::Ilo5 => "ilo5",
            PersonaKind::Idrac9 => "idrac9",
        }
    }

    /// The common name of the self-signed certificate a new endpoint of this
    /// persona makes for itself, as the vendor's BMC names itself.
    pub fn certificate_name(self, system_id: &str) -> String {
        match self {
            PersonaKind::Generic => "Redfin BMC".to_owned(),
            PersonaKind::Ilo5 => ilo5::host_name(system_id),
            PersonaKind::Idrac9 => idrac9::host_name(system_id),
        }
    }

    /// The name the OEM API shows (`Generic`, `iLO5`, `iDRAC9`).
    pub fn display(self) -> &'static str {
        match self {
            PersonaKind::Generic => "Generic",
            PersonaKind::Ilo5 => "iLO5",
            PersonaKind::Idrac9 => "iDRAC9",
        }
    }
}

/// The firmware a persona's BMC lists in its FirmwareInventory (the BMC's own
/// and the system's BIOS); it applies no update.
pub fn firmware_inventory(kind: PersonaKind) -> Arc<dyn FirmwareInventory> {
    Arc::new(PersonaFirmware(kind))
}

struct PersonaFirmware(PersonaKind);

impl FirmwareInventory for PersonaFirmware {
    fn software(&self) -> Vec<SoftwareItem> {
        match self.0 {
            PersonaKind::Generic => generic_firmware(),
            PersonaKind::Ilo5 => ilo5::firmware(),
            PersonaKind::Idrac9 => idrac9::firmware(),
        }
    }

    fn updates(&self) -> bool {
        false
    }
}

/// A generic per-VM BMC: Redfin's own firmware, the version bmcd shows as
/// its managers' `FirmwareVersion`.
fn generic_firmware() -> Vec<SoftwareItem> {
    vec![SoftwareItem {
        id: "BMC".to_owned(),
        name: "BMC firmware".to_owned(),
        description: "The firmware of this per-VM BMC (Redfin)".to_owned(),
        software_id: "redfin-bmc".to_owned(),
        manufacturer: "Redfin".to_owned(),
        version: crate::VERSION.to_owned(),
        version_scheme: None,
        release_type: None,
        release_date: None,
        updateable: false,
        write_protected: true,
        active: None,
        staged: None,
        reset_required_on_update: None,
        state: "Enabled",
        health: "OK",
        runs_on: RunsOn::Manager,
    }]
}

/// The route tables of the personas' own resources and actions.
pub struct Routers {
    generic: Router,
    ilo5: Router,
    idrac9: Router,
}

impl Routers {
    pub fn new() -> Routers {
        Routers {
            generic: Router::new(Vec::new()),
            ilo5: Router::new(ilo5::routes()),
            idrac9: Router::new(idrac9::routes()),
        }
    }

    pub fn of(&self, kind: PersonaKind) -> &Router {
        match kind {
            PersonaKind::Generic => &self.generic,
            PersonaKind::Ilo5 => &self.ilo5,
            PersonaKind::Idrac9 => &self.idrac9,
        }
    }

    /// Every persona route, for the route-table checks.
    pub fn all(&self) -> impl Iterator<Item = &Route> {
        self.ilo5.routes().chain(self.idrac9.routes())
    }
}

impl Default for Routers {
    fn default() -> Self {
        Routers::new()
    }
}

/// One per-VM BMC endpoint as its listener sees it.
#[derive(Debug)]
pub struct Endpoint {
    pub id: String,
    /// The ComputerSystem it fronts (domain UUID).
    pub system_id: String,
    pub persona: PersonaKind,
    /// (persona prefix, canonical prefix), longest persona prefix first.
    inbound: Vec<(String, String)>,
    /// The same pairs, longest canonical prefix first.
    outbound: Vec<(String, String)>,
}

/// `rest` when `path` is `prefix` or `prefix/rest...`.
fn strip_segment_prefix<'a>(path: &'a str, prefix: &str, ignore_case: bool) -> Option<&'a str> {
    if path.len() < prefix.len() || !path.is_char_boundary(prefix.len()) {
        return None;
    }
    let (head, rest) = path.split_at(prefix.len());
    let same = if ignore_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    (same && (rest.is_empty() || rest.starts_with('/'))).then_some(rest)
}

impl Endpoint {
    pub fn new(id: &str, system_id: &str, persona: PersonaKind) -> Endpoint {
        let pairs = match persona {
            PersonaKind::Generic => Vec::new(),
            PersonaKind::Ilo5 => ilo5::path_map(system_id),
            PersonaKind::Idrac9 => idrac9::path_map(system_id),
        };
        let mut inbound = pairs.clone();
        inbound.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut outbound = pairs;
        outbound.sort_by_key(|(_, c)| std::cmp::Reverse(c.len()));
        Endpoint {
            id: id.to_owned(),
            system_id: system_id.to_owned(),
            persona,
            inbound,
            outbound,
        }
    }

    /// iLO matches paths ignoring case; the others as written.
    pub fn ignores_case(&self) -> bool {
        self.persona == PersonaKind::Ilo5
    }

    /// The canonical path of a (normalized) persona path.
    pub fn to_canonical(&self, path: &str) -> String {
        for (p, c) in &self.inbound {
            if let Some(rest) = strip_segment_prefix(path, p, self.ignores_case()) {
                return format!("{c}{rest}");
            }
        }
        path.to_owned()
    }

    /// The persona's spelling of a canonical URI (query and fragment kept).
    pub fn to_persona(&self, uri: &str) -> String {
        let cut = uri.find(['?', '#']).unwrap_or(uri.len());
        let (path, tail) = uri.split_at(cut);
        for (p, c) in &self.outbound {
            if let Some(rest) = strip_segment_prefix(path, c, false) {
                return format!("{p}{rest}{tail}");
            }
        }
        uri.to_owned()
    }

    /// Whether this endpoint serves a canonical path: only its own system,
    /// that system's manager and chassis; never the other VMs or the
    /// aggregate BMC's manager.
    pub fn in_scope(&self, path: &str) -> bool {
        // The persona's own spelling of its resources.
        if self
            .inbound
            .iter()
            .any(|(p, _)| strip_segment_prefix(path, p, self.ignores_case()).is_some())
        {
            return true;
        }
        let mut parts = path.split('/').skip(3);
        match parts.next() {
            // The endpoint's own firmware inventory; it updates nothing.
            Some("UpdateService") => matches!(parts.next(), None | Some("FirmwareInventory")),
            // The appliance's storage pools, composition catalog and libvirt
            // hosts belong to the aggregate endpoint.
            Some("Storage" | "Oem" | "AggregationService") => false,
            Some("Systems" | "Managers" | "Chassis") => parts
                .next()
                .is_none_or(|id| id.is_empty() || id == self.system_id),
            _ => true,
        }
    }

    /// Rewrites a response body for this endpoint: links and ids in the
    /// persona's spelling, collections cut to what the endpoint serves, and
    /// (iLO) a trailing slash on links when the request had one.
    pub fn present(&self, body: &mut Value, trailing_slash: bool) {
        self.rewrite(body, trailing_slash);
    }

    fn link_out(&self, uri: &str, slash: bool) -> String {
        let out = self.to_persona(uri);
        if out.contains('?') {
            return out;
        }
        // A fragment (`.../Power#/PowerControl/0`) points into the resource
        // as it is spelled, slash included.
        let (path, fragment) = out.split_at(out.find('#').unwrap_or(out.len()));
        let bios = self.persona == PersonaKind::Ilo5 && path.to_ascii_lowercase().contains("/bios");
        if (slash || bios) && !path.ends_with('/') {
            format!("{path}/{fragment}")
        } else {
            out
        }
    }

    fn rewrite(&self, v: &mut Value, slash: bool) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(members)) = o.get_mut("Members") {
                    members.retain(|m| {
                        m.get("@odata.id")
                            .and_then(Value::as_str)
                            .is_none_or(|id| self.in_scope(id))
                    });
                    let n = members.len();
                    if o.contains_key("Members@odata.count") {
                        o.insert("Members@odata.count".to_owned(), Value::from(n));
                    }
                }
                let canonical_id = o.get("@odata.id").and_then(Value::as_str).map(str::to_owned);
                for (k, val) in o.iter_mut() {
                    match val {
                        Value::String(s) if s.starts_with("/redfish/v1") => {
                            let is_link =
                                k == "@odata.id" || k == "target" || k.ends_with("@Redfish.ActionInfo");
                            *s = self.link_out(s, slash && is_link);
                        }
                        _ => self.rewrite(val, slash),
                    }
                }
                // The resource's Id follows its URI's last segment.
                if let (Some(cid), Some(pid)) = (canonical_id, o.get("@odata.id").and_then(Value::as_str)) {
                    let last = |u: &str| {
                        u.trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    };
                    let (cl, pl) = (last(&cid), last(pid));
                    if cl != pl && o.get("Id").and_then(Value::as_str) == Some(cl.as_str()) {
                        o.insert("Id".to_owned(), Value::String(pl));
                    }
                }
            }
            Value::Array(a) => {
                for x in a.iter_mut() {
                    if let Value::String(s) = x {
                        if s.starts_with("/redfish/v1") {
                            *s = self.link_out(s, false);
                        }
                    } else {
                        self.rewrite(x, slash);
                    }
                }
            }
            _ => {}
        }
    }

    /// The persona's error body for `e`, and the status it answers with.
    pub fn error(&self, e: &RedfishError) -> (StatusCode, Value) {
        match self.persona {
            PersonaKind::Generic => (e.status, e.body()),
            PersonaKind::Ilo5 => ilo5::error(e),
            PersonaKind::Idrac9 => idrac9::error(e),
        }
    }
}

/// Adds the persona's identity and OEM sections to a canonical resource
/// (`template` is the route that served it).
pub async fn decorate(req: &Request, endpoint: &Endpoint, template: &str, body: &mut Value) {
    // The appliance's storage pools are managed on the aggregate endpoint,
    // not through one VM's BMC (which has its own certificate and firmware).
    if template == "/redfish/v1" {
        if let Some(o) = body.as_object_mut() {
            o.remove("Storage");
            o.remove("AggregationService");
        }
    }
    match endpoint.persona {
        PersonaKind::Generic => {}
        PersonaKind::Ilo5 => ilo5::decorate(req, endpoint, template, body).await,
        PersonaKind::Idrac9 => idrac9::decorate(req, endpoint, template, body).await,
    }
}

/// Calls a canonical route on behalf of a persona request, with the caller's
/// privileges: how OEM actions reach the one model.
pub async fn call(
    req: &Request,
    method: Method,
    canonical: &str,
    body: Option<Value>,
) -> Result<Reply, RedfishError> {
    let Match::Found(route, params) = req.app.router.find(&method, canonical) else {
        return Err(RedfishError::no_such_uri(canonical));
    };
    let principal = req.principal()?.clone();
    if !route.required.allows(principal.privileges()) {
        return Err(RedfishError::insufficient_privilege());
    }
    let mut headers = HeaderMap::new();
    let body = match body {
        Some(v) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(serde_json::to_vec(&v).map_err(|_| RedfishError::internal())?)
        }
        None => Bytes::new(),
    };
    let inner = Request {
        app: Arc::clone(&req.app),
        method,
        path: canonical.to_owned(),
        params,
        query: None,
        headers,
        body,
        principal: Some(principal),
        client: req.client,
        endpoint: req.endpoint.clone(),
        upload: None,
    };
    (route.handler)(inner).await
}

/// The JSON body of a canonical GET, for a persona handler.
pub async fn read(req: &Request, canonical: &str) -> Result<Value, RedfishError> {
    match call(req, Method::GET, canonical, None).await? {
        Reply::Json { body, .. } => Ok(body),
        _ => Err(RedfishError::internal()),
    }
}

/// The endpoint a persona route runs for (persona routes run only there).
pub fn endpoint_of(req: &Request) -> Result<Arc<Endpoint>, RedfishError> {
    req.endpoint
        .clone()
        .ok_or_else(|| RedfishError::no_such_uri(&req.path))
}

/// Waits for the task a canonical action started (202 + task) to end, as
/// vendor BMCs answer their media actions only when the medium is in.
/// `Ok` when it completed; its messages as the error otherwise.
pub async fn finish_task(req: &Request, reply: Reply) -> Result<(), RedfishError> {
    let Reply::Json { status, body, .. } = &reply else {
        return Ok(());
    };
    if *status != StatusCode::ACCEPTED {
        return Ok(());
    }
    let Some(id) = body
        .get("Id")
        .and_then(Value::as_str)
        .and_then(|i| i.parse::<i64>().ok())
    else {
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let Some(task) = req.app.tasks.get(id) else {
            return Err(RedfishError::internal());
        };
        match task.state.as_str() {
            "Completed" => return Ok(()),
            "Running" | "New" | "Starting" | "Pending" => {}
            _ => {
                let mut e = RedfishError::new(
                    StatusCode::BAD_REQUEST,
                    crate::error::Message::new(&crate::registries::base::GENERAL_ERROR, &[]),
                );
                e.messages = task
                    .messages
                    .iter()
                    .cloned()
                    .map(crate::error::Message::stored)
                    .collect();
                if e.messages.is_empty() {
                    e = RedfishError::internal();
                }
                return Err(e);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(RedfishError::unavailable(10));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A vendor message (`IDRAC.2.8.SYS011`, `iLO.2.14.InvalidOperationForSystemState`)
/// as an error with `status`.
pub fn vendor_error(
    status: StatusCode,
    id: &str,
    message: &str,
    args: &[&str],
    resolution: &str,
) -> RedfishError {
    RedfishError::new(
        status,
        crate::error::Message::stored(crate::json!({
            "MessageId": id,
            "Message": message,
            "MessageArgs": args,
            "Severity": "Warning",
            "Resolution": resolution,
        })),
    )
}

/// A request body as JSON (an empty body reads as `{}`), for persona handlers
/// that pass it on to a canonical route, which parses it strictly.
pub fn json_body(req: &Request) -> Result<Value, RedfishError> {
    serde_json::from_slice(if req.body.is_empty() { b"{}" } else { &req.body })
        .map_err(|_| RedfishError::malformed_json())
}

/// A system's `PowerState` now (`Off` when unknown).
pub async fn power_state(req: &Request, system_uri: &str) -> Result<String, RedfishError> {
    Ok(read(req, system_uri).await?["PowerState"]
        .as_str()
        .unwrap_or("Off")
        .to_owned())
}

/// A persona's `ComputerSystem.Reset`: the body, its ResetType and the power
/// state before the reset, so that the persona can refuse what its vendor
/// refuses before the one reset runs.
pub struct ResetRequest {
    pub body: Value,
    pub reset_type: String,
    pub power: String,
    system_uri: String,
}

impl ResetRequest {
    pub async fn read(req: &Request, ep: &Endpoint) -> Result<ResetRequest, RedfishError> {
        let system_uri = format!("/redfish/v1/Systems/{}", ep.system_id);
        let body = json_body(req)?;
        let reset_type = body
            .get("ResetType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let power = power_state(req, &system_uri).await?;
        Ok(ResetRequest {
            body,
            reset_type,
            power,
            system_uri,
        })
    }

    /// Runs the reset through the canonical route.
    pub async fn run(self, req: &Request) -> Result<Reply, RedfishError> {
        call(
            req,
            Method::POST,
            &format!("{}/Actions/ComputerSystem.Reset", self.system_uri),
            Some(self.body),
        )
        .await
    }
}

/// Powers on a system, or does nothing if it is on (vendor power buttons).
pub async fn reset(req: &Request, system_uri: &str, reset_type: &str) -> Result<(), RedfishError> {
    call(
        req,
        Method::POST,
        &format!("{system_uri}/Actions/ComputerSystem.Reset"),
        Some(crate::json!({ "ResetType": reset_type })),
    )
    .await
    .map(|_| ())
}

/// Watches domain lifecycle events for what personas show about them: when
/// each system last powered on (iLO's PostState), and applies the pending
/// values of persona-only BIOS attributes at each power-on.
pub fn watch(app: Arc<crate::app::App>) -> tokio::task::JoinHandle<()> {
    let mut events = app.hypervisor.events();
    tokio::spawn(async move {
        use crate::model::LifecycleEvent;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if ev.event != LifecycleEvent::Started {
                continue;
            }
            app.endpoints.powered_on(&ev.system_id);
            match app.store.persona_attributes(ev.system_id.clone()).await {
                Ok(attrs) => {
                    for mut a in attrs.into_iter().filter(|a| a.pending.is_some()) {
                        if let Some(p) = a.pending.take() {
                            a.current = p;
                        }
                        if let Err(e) = app.store.set_persona_attribute(ev.system_id.clone(), a).await {
                            tracing::warn!(error = %e, "could not apply a pending BIOS attribute");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read pending BIOS attributes"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    #[test]
    fn idrac_paths_map_both_ways() {
        let ep = Endpoint::new("e1", U, PersonaKind::Idrac9);
        assert_eq!(
            ep.to_canonical(
                "/redfish/v1/Systems/System.Embedded.1/VirtualMedia/2/Actions/VirtualMedia.InsertMedia"
            ),
            format!("/redfish/v1/Systems/{U}/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia")
        );
        assert_eq!(
            ep.to_persona(&format!("/redfish/v1/Managers/{U}/VirtualMedia/Cd")),
            "/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia/CD"
        );
        // Not a prefix at a segment boundary: untouched.
        assert_eq!(
            ep.to_canonical("/redfish/v1/Systems/System.Embedded.10"),
            "/redfish/v1/Systems/System.Embedded.10"
        );
        assert!(ep.in_scope(&format!("/redfish/v1/Systems/{U}/Bios")));
        assert!(!ep.in_scope("/redfish/v1/Systems/other"));
        assert!(!ep.in_scope("/redfish/v1/Managers/BMC"));
        assert!(ep.in_scope("/redfish/v1/Systems"));
        assert!(ep.in_scope("/redfish/v1/UpdateService/FirmwareInventory"));
        assert!(ep.in_scope("/redfish/v1/CertificateService"));
        assert!(!ep.in_scope("/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"));
        assert!(!ep.in_scope("/redfish/v1/UpdateService/update-multipart"));
        assert!(!ep.in_scope("/redfish/v1/Storage/default/Volumes"));
        assert!(!ep.in_scope("/redfish/v1/Oem/Redfin/Profiles"));
    }

    #[test]
    fn ilo_ignores_case_and_mirrors_slashes() {
        let ep = Endpoint::new("e2", U, PersonaKind::Ilo5);
        assert_eq!(
            ep.to_canonical("/redfish/v1/systems/1/BIOS/settings"),
            format!("/redfish/v1/Systems/{U}/Bios/Settings")
        );
        let mut body = json!({
            "@odata.id": format!("/redfish/v1/Systems/{U}"),
            "Id": U,
            "Bios": {"@odata.id": format!("/redfish/v1/Systems/{U}/Bios")},
            "Links": {"ManagedBy": [{"@odata.id": format!("/redfish/v1/Managers/{U}")}]},
        });
        ep.present(&mut body, true);
        assert_eq!(body["@odata.id"], "/redfish/v1/Systems/1/");
        assert_eq!(body["Id"], "1");
        assert_eq!(body["Bios"]["@odata.id"], "/redfish/v1/Systems/1/Bios/");
        assert_eq!(
            body["Links"]["ManagedBy"][0]["@odata.id"],
            "/redfish/v1/Managers/1/"
        );
        let mut plain = json!({"Bios": {"@odata.id": format!("/redfish/v1/Systems/{U}/Bios")}, "X": {"@odata.id": format!("/redfish/v1/Systems/{U}")}});
        ep.present(&mut plain, false);
        assert_eq!(
            plain["Bios"]["@odata.id"], "/redfish/v1/Systems/1/Bios/",
            "the BIOS subtree always ends in /"
        );
        assert_eq!(plain["X"]["@odata.id"], "/redfish/v1/Systems/1");
        // A pointer into a resource follows the resource's own spelling.
        let mut power = json!({"PowerControl": [{"@odata.id": format!("/redfish/v1/Chassis/{U}/Power#/PowerControl/0")}]});
        ep.present(&mut power, true);
        assert_eq!(
            power["PowerControl"][0]["@odata.id"],
            "/redfish/v1/Chassis/1/Power/#/PowerControl/0"
        );
    }

    #[test]
    fn collections_show_only_the_endpoints_own_members() {
        let ep = Endpoint::new("e3", U, PersonaKind::Idrac9);
        let mut body = json!({
            "Members": [
                {"@odata.id": "/redfish/v1/Managers/BMC"},
                {"@odata.id": format!("/redfish/v1/Managers/{U}")},
                {"@odata.id": "/redfish/v1/Managers/someone-else"},
            ],
            "Members@odata.count": 3,
        });
        ep.present(&mut body, false);
        assert_eq!(
            body["Members"],
            json!([{"@odata.id": "/redfish/v1/Managers/iDRAC.Embedded.1"}])
        );
        assert_eq!(body["Members@odata.count"], 1);
    }
}
