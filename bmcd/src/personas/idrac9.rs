//! Dell iDRAC 9 (firmware 7.x profile): `Systems/System.Embedded.1`,
//! `Managers/iDRAC.Embedded.1`, `Chassis/System.Embedded.1`, virtual media 1
//! (removable disk) and 2 (CD) under the system and `RemovableDisk` / `CD`
//! under the manager, the Dell OEM services sushy's Dell extension and
//! Ironic's idrac driver use (DellLCService, DellJobService, jobs with `JID_`
//! ids, ImportSystemConfiguration for boot settings), BIOS changes applied
//! through a job at the next reset, and iDRAC message ids in errors.

use crate::json;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::{call, endpoint_of, json_body, power_state, read, vendor_error, Endpoint, ResetRequest};
use crate::body::{Context, Fields};
use crate::error::RedfishError;
use crate::firmware::inventory::{RunsOn, SoftwareItem, VersionScheme};
use crate::privilege::Required;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::store::{AttributeRecord, JobRecord};
use crate::time::{now_unix, rfc3339};

const SYSTEM: &str = "/redfish/v1/Systems/System.Embedded.1";
const MANAGER: &str = "/redfish/v1/Managers/iDRAC.Embedded.1";
const DELL: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell";
const JOBS: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs";
/// The iDRAC firmware and the BIOS versions, and Dell's component ids of
/// both (the `SoftwareId` of their FirmwareInventory members). Every version
/// the iDRAC shows comes from these constants.
const FIRMWARE: &str = "7.00.00.173";
const FIRMWARE_COMPONENT: &str = "25227";
const BIOS: &str = "1.13.2";
const BIOS_COMPONENT: &str = "159";
const MODEL: &str = "15G Monolithic";
const MSG: &str = "IDRAC.2.8";
const SCHEDULED: &str = "Task successfully scheduled.";

pub fn path_map(u: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("{SYSTEM}/VirtualMedia/1"),
            format!("/redfish/v1/Systems/{u}/VirtualMedia/Usb"),
        ),
        (
            format!("{SYSTEM}/VirtualMedia/2"),
            format!("/redfish/v1/Systems/{u}/VirtualMedia/Cd"),
        ),
        (SYSTEM.to_owned(), format!("/redfish/v1/Systems/{u}")),
        (
            format!("{MANAGER}/VirtualMedia/RemovableDisk"),
            format!("/redfish/v1/Managers/{u}/VirtualMedia/Usb"),
        ),
        (
            format!("{MANAGER}/VirtualMedia/CD"),
            format!("/redfish/v1/Managers/{u}/VirtualMedia/Cd"),
        ),
        (MANAGER.to_owned(), format!("/redfish/v1/Managers/{u}")),
        (
            "/redfish/v1/Chassis/System.Embedded.1".to_owned(),
            format!("/redfish/v1/Chassis/{u}"),
        ),
    ]
}

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset", Required::CONFIGURE_COMPONENTS, post_reset),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellLCService", Required::LOGIN, get_lc_service),
        route!(POST "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus", Required::LOGIN, post_remote_services_status),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellJobService", Required::LOGIN, get_job_service),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DelliDRACCardService", Required::LOGIN, get_idrac_card_service),
        route!(POST "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DelliDRACCardService/Actions/DelliDRACCardService.iDRACReset", Required::CONFIGURE_MANAGER, post_idrac_reset),
        route!(POST "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellJobService/Actions/DellJobService.DeleteJobQueue", Required::CONFIGURE_COMPONENTS, post_delete_job_queue),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellAttributes/iDRAC.Embedded.1", Required::LOGIN, get_idrac_attributes),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs", Required::LOGIN, get_jobs)
            .accepting(&["$expand"]),
        route!(POST "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs", Required::CONFIGURE_COMPONENTS, post_job),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/{jid}", Required::LOGIN, get_job),
        route!(DELETE "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/{jid}", Required::CONFIGURE_COMPONENTS, delete_job),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs", Required::LOGIN, get_jobs)
            .accepting(&["$expand"]),
        route!(GET "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}", Required::LOGIN, get_job),
        route!(DELETE "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}", Required::CONFIGURE_COMPONENTS, delete_job),
        route!(GET "/redfish/v1/TaskService/Tasks/{id}", Required::LOGIN, get_task),
        route!(POST "/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Oem/EID_674_Manager.ImportSystemConfiguration", Required::CONFIGURE_COMPONENTS, post_import_system_configuration),
        route!(PATCH "/redfish/v1/Systems/System.Embedded.1/Bios/Settings", Required::CONFIGURE_COMPONENTS, patch_bios_settings),
        route!(POST "/redfish/v1/Systems/System.Embedded.1/Bios/Settings/Actions/Oem/DellManager.ClearPending", Required::CONFIGURE_COMPONENTS, post_clear_pending),
    ]
}

fn system_uri(ep: &Endpoint) -> String {
    format!("/redfish/v1/Systems/{}", ep.system_id)
}

/// The iDRAC's default host name (and its self-signed certificate's common
/// name): `idrac-` and the service tag.
pub fn host_name(system_id: &str) -> String {
    format!("idrac-{}", service_tag(system_id))
}

/// What the iDRAC lists in its FirmwareInventory: the iDRAC and the BIOS, as
/// `Installed-{component}-{version}`; neither can be updated through this
/// emulated iDRAC.
pub fn firmware() -> Vec<SoftwareItem> {
    let item = |name: &str, component: &str, version: &str, runs_on| SoftwareItem {
        id: format!("Installed-{component}-{version}"),
        name: name.to_owned(),
        description: format!("The installed {name} firmware"),
        software_id: component.to_owned(),
        manufacturer: "Dell Inc.".to_owned(),
        version: version.to_owned(),
        version_scheme: Some(VersionScheme::DotIntegerNotation),
        release_type: Some("Production"),
        release_date: None,
        updateable: false,
        write_protected: true,
        active: None,
        staged: None,
        reset_required_on_update: None,
        state: "Enabled",
        health: "OK",
        runs_on,
    };
    vec![
        item(
            "Integrated Dell Remote Access Controller",
            FIRMWARE_COMPONENT,
            FIRMWARE,
            RunsOn::Manager,
        ),
        item("BIOS", BIOS_COMPONENT, BIOS, RunsOn::System),
    ]
}

/// The 7-character service tag, stable per system.
fn service_tag(system_id: &str) -> String {
    let hex: String = system_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .skip(1)
        .take(7)
        .collect();
    hex.to_ascii_uppercase()
}

/// iDRAC's error envelope: the iDRAC message first (SYS403 for a missing
/// resource, SYS415 for bad credentials, PSU501 for a power state already
/// reached), then the Base messages.
pub fn error(e: &RedfishError) -> (StatusCode, Value) {
    let mut body = e.body();
    let first = body["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let dell = match e.status {
        StatusCode::NOT_FOUND => Some(json!({
            "MessageId": format!("{MSG}.SYS403"),
            "Message": "Unable to complete the operation because the resource entered in not found.",
            "MessageArgs": [], "Severity": "Critical",
            "Resolution": "Enter the correct resource and retry the operation.",
        })),
        StatusCode::UNAUTHORIZED => Some(json!({
            "MessageId": format!("{MSG}.SYS415"),
            "Message": "Unable to complete the operation because an invalid username and/or password is entered, and therefore authentication failed.",
            "MessageArgs": [], "Severity": "Warning",
            "Resolution": "Enter valid user name and password and retry the operation.",
        })),
        StatusCode::CONFLICT if first.ends_with(".ResourceInUse") => Some(json!({
            "MessageId": format!("{MSG}.PSU501"),
            "Message": "The server is already in the requested power state.",
            "MessageArgs": [], "Severity": "Informational",
            "Resolution": "No response action is required.",
        })),
        _ => None,
    };
    if let (Some(d), Some(list)) = (dell, body["error"]["@Message.ExtendedInfo"].as_array_mut()) {
        list.insert(0, d);
    }
    if !first.starts_with("IDRAC") {
        body["error"]["code"] = json!("Base.1.12.GeneralError");
        body["error"]["message"] =
            json!("A general error has occurred. See ExtendedInfo for more information");
    }
    (e.status, body)
}

pub async fn decorate(req: &Request, ep: &Endpoint, template: &str, body: &mut Value) {
    let Some(o) = body.as_object_mut() else { return };
    let tag = service_tag(&ep.system_id);
    match template {
        "/redfish/v1" => {
            o.insert("Vendor".into(), json!("Dell"));
            o.insert(
                "Product".into(),
                json!("Integrated Dell Remote Access Controller"),
            );
            o.insert(
                "Oem".into(),
                json!({"Dell": {"@odata.type": "#DellServiceRoot.v1_0_0.DellServiceRoot", "ServiceTag": tag, "IsBranded": 0}}),
            );
        }
        "/redfish/v1/Systems/{id}" => {
            o.insert("Manufacturer".into(), json!("Dell Inc."));
            o.insert("Model".into(), json!("PowerEdge R650"));
            o.insert("SKU".into(), json!(tag));
            o.insert("SerialNumber".into(), json!(format!("CN{tag}EMU")));
            o.insert("BiosVersion".into(), json!(BIOS));
            o.insert(
                "Oem".into(),
                json!({"Dell": {"@odata.type": "#DellOem.v1_3_0.DellOemResources", "DellSystem": {
                    "Id": "System.Embedded.1", "SystemGeneration": MODEL, "ChassisServiceTag": tag}}}),
            );
        }
        "/redfish/v1/Managers/{id}" => {
            o.insert("Manufacturer".into(), json!("Dell Inc."));
            o.insert("Model".into(), json!(MODEL));
            o.insert("FirmwareVersion".into(), json!(FIRMWARE));
            let links = o.entry("Links").or_insert_with(|| json!({}));
            links["Oem"] = json!({"Dell": {
                "@odata.type": "#DellOem.v1_3_0.DellOemLinks",
                "DellAttributes": [{"@odata.id": format!("{DELL}/DellAttributes/iDRAC.Embedded.1")}],
                "DellJobService": {"@odata.id": format!("{DELL}/DellJobService")},
                "DellLCService": {"@odata.id": format!("{DELL}/DellLCService")},
                "DelliDRACCardService": {"@odata.id": format!("{DELL}/DelliDRACCardService")},
                "Jobs": {"@odata.id": format!("{DELL}/Jobs")},
            }});
            let actions = o.entry("Actions").or_insert_with(|| json!({}));
            actions["Oem"] = json!({
                "#OemManager.ImportSystemConfiguration": {
                    "target": format!("{MANAGER}/Actions/Oem/EID_674_Manager.ImportSystemConfiguration"),
                    "ShutdownType@Redfish.AllowableValues": ["Graceful", "Forced", "NoReboot"],
                    "HostPowerState@Redfish.AllowableValues": ["On", "Off"],
                    "ImportSystemConfiguration@Redfish.AllowableValues": ["TimeToWait", "ImportBuffer"],
                    "ShareParameters": {"Target@Redfish.AllowableValues": ["ALL", "IDRAC", "BIOS"],
                                        "ShareType@Redfish.AllowableValues": ["LOCAL"]},
                }
            });
        }
        "/redfish/v1/Systems/{id}/Bios" => {
            // Until the job runs, the current values are the ones before it.
            if let Ok(attrs) = req.app.store.persona_attributes(ep.system_id.clone()).await {
                if let Some(Value::Object(a)) = o.get_mut("Attributes") {
                    for x in attrs.into_iter().filter(|x| x.pending.is_some()) {
                        if a.contains_key(&x.name) {
                            a.insert(x.name, Value::String(x.current));
                        }
                    }
                }
            }
        }
        "/redfish/v1/Systems/{id}/Bios/Settings" => {
            // iDRAC's pending resource lists only the changes.
            if let Ok(pending) = pending_bios(req, ep).await {
                o.insert("Attributes".into(), Value::Object(pending));
            }
            let oem = json!({"Dell": {"Jobs": {"@odata.id": format!("{DELL}/Jobs")}}});
            o.insert("Oem".into(), oem);
            o.insert(
                "Actions".into(),
                json!({"Oem": {"#DellManager.ClearPending": {
                    "target": format!("{SYSTEM}/Bios/Settings/Actions/Oem/DellManager.ClearPending")}}}),
            );
        }
        _ => {}
    }
}

/// iDRAC answers 409 with PSU501 when the system already is where the
/// action would take it (On while on, ForceOff or GracefulShutdown while
/// off); the rest goes to the one reset (204).
async fn post_reset(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let reset = ResetRequest::read(&req, &ep).await?;
    let already = match reset.reset_type.as_str() {
        "On" | "ForceOn" => reset.power == "On",
        "ForceOff" | "GracefulShutdown" => reset.power == "Off",
        _ => false,
    };
    if already {
        let on = reset.power == "On";
        let mut e = vendor_error(
            StatusCode::CONFLICT,
            &format!("{MSG}.{}", if on { "PSU501" } else { "PSU502" }),
            &format!("Server is already powered {}.", if on { "ON" } else { "OFF" }),
            &[],
            "No response action is required.",
        );
        e.messages.push(crate::error::Message::new(
            &crate::registries::base::RESOURCE_IN_USE,
            &[],
        ));
        return Err(e);
    }
    reset.run(&req).await
}

// ---- jobs --------------------------------------------------------------------

/// A new job id: `JID_` and 12 digits, unique per endpoint.
fn new_job_id() -> String {
    let ms = crate::time::now_unix_ms().rem_euclid(1_000_000_000_000);
    format!("JID_{ms:012}")
}

/// The system's pending BIOS changes, as iDRAC shows them: what was set
/// through this persona and waits for the next power-on (then the watcher in
/// [`super::watch`] makes it current).
async fn pending_bios(req: &Request, ep: &Endpoint) -> Result<serde_json::Map<String, Value>, RedfishError> {
    Ok(req
        .app
        .store
        .persona_attributes(ep.system_id.clone())
        .await?
        .into_iter()
        .filter_map(|a| a.pending.map(|p| (a.name, Value::String(p))))
        .collect())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The system's jobs with their state brought up to date: a BIOS job is done
/// once the pending settings it holds have been applied at a reset.
async fn jobs(req: &Request, ep: &Endpoint) -> Result<Vec<JobRecord>, RedfishError> {
    let mut list = req.app.store.jobs(ep.system_id.clone()).await?;
    let scheduled = list
        .iter()
        .any(|j| j.job_type == "BIOSConfiguration" && j.state == "Scheduled");
    if scheduled && pending_bios(req, ep).await?.is_empty() {
        for j in list
            .iter_mut()
            .filter(|j| j.job_type == "BIOSConfiguration" && j.state == "Scheduled")
        {
            j.state = "Completed".into();
            j.percent = 100;
            j.message = "Job completed successfully.".into();
            j.message_id = "PR19".into();
            j.completed = Some(now_unix());
            req.app.store.save_job(j.clone()).await?;
        }
    }
    Ok(list)
}

fn job_json(j: &JobRecord) -> Value {
    json!({
        "@odata.id": format!("{JOBS}/{}", j.id),
        "@odata.type": "#DellJob.v1_5_0.DellJob",
        "Id": j.id,
        "Name": j.name,
        "Description": "Job Instance",
        "JobType": j.job_type,
        "JobState": j.state,
        "Message": j.message,
        "MessageId": j.message_id,
        "MessageArgs": [],
        "PercentComplete": j.percent,
        "StartTime": rfc3339(j.created),
        "EndTime": j.completed.map(rfc3339),
        "CompletionTime": j.completed.map(rfc3339),
        "TargetSettingsURI": null,
    })
}

fn finished(state: &str) -> bool {
    matches!(state, "Completed" | "CompletedWithErrors" | "Failed")
}

async fn create_job(
    req: &Request,
    ep: &Endpoint,
    job_type: &str,
    name: &str,
    done: bool,
) -> Result<JobRecord, RedfishError> {
    let now = now_unix();
    let job = JobRecord {
        id: new_job_id(),
        system_id: ep.system_id.clone(),
        job_type: job_type.to_owned(),
        name: name.to_owned(),
        created: now,
        state: if done { "Completed" } else { "Scheduled" }.to_owned(),
        percent: if done { 100 } else { 0 },
        message: if done {
            "Job completed successfully."
        } else {
            SCHEDULED
        }
        .to_owned(),
        message_id: if done { "PR19" } else { "JCP001" }.to_owned(),
        completed: done.then_some(now),
    };
    req.app.store.save_job(job.clone()).await?;
    Ok(job)
}

async fn get_jobs(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let list = jobs(&req, &ep).await?;
    let expand = req.query.as_deref().is_some_and(|q| q.contains("$expand"));
    let members: Vec<Value> = list
        .iter()
        .map(|j| {
            if expand {
                job_json(j)
            } else {
                json!({"@odata.id": format!("{JOBS}/{}", j.id)})
            }
        })
        .collect();
    Ok(Reply::ok(json!({
        "@odata.id": req.path,
        "@odata.type": "#DellJobCollection.DellJobCollection",
        "Name": "JobQueue",
        "Members": members,
        "Members@odata.count": list.len(),
    })))
}

async fn find_job(req: &Request, ep: &Endpoint, id: &str) -> Result<JobRecord, RedfishError> {
    jobs(req, ep)
        .await?
        .into_iter()
        .find(|j| j.id == id)
        .ok_or_else(|| RedfishError::not_found("DellJob", id))
}

async fn get_job(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let job = find_job(&req, &ep, req.param(0)).await?;
    Ok(Reply::ok(job_json(&job)))
}

async fn delete_job(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let id = req.param(0).to_owned();
    if req
        .app
        .store
        .delete_jobs(ep.system_id.clone(), Some(id.clone()))
        .await?
        == 0
    {
        return Err(RedfishError::not_found("DellJob", &id));
    }
    Ok(Reply::ok(json!({"@Message.ExtendedInfo": [success_message()]})))
}

fn success_message() -> Value {
    json!({"MessageId": "Base.1.12.Success", "Message": "The request completed successfully.",
           "MessageArgs": [], "Severity": "OK", "Resolution": "None"})
}

/// POST `Jobs {"TargetSettingsURI": ".../Bios/Settings"}`: schedules the
/// pending BIOS changes for the next reset.
async fn post_job(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let target = body.string("TargetSettingsURI")?;
    let target = body.required("TargetSettingsURI", target)?;
    let _start = body.string("StartTime")?;
    body.finish()?;
    if target.trim_end_matches('/') != format!("{SYSTEM}/Bios/Settings") {
        return Err(RedfishError::property_value_not_in_list(
            &target,
            "TargetSettingsURI",
        ));
    }
    let job = schedule_bios_job(&req, &ep).await?;
    Ok(Reply::ok(job_json(&job)).with_header(
        "Location",
        hyper::header::HeaderValue::from_str(&format!("{JOBS}/{}", job.id))
            .map_err(|_| RedfishError::internal())?,
    ))
}

async fn schedule_bios_job(req: &Request, ep: &Endpoint) -> Result<JobRecord, RedfishError> {
    let list = jobs(req, ep).await?;
    if list
        .iter()
        .any(|j| j.job_type == "BIOSConfiguration" && j.state == "Scheduled")
    {
        return Err(sys011());
    }
    if pending_bios(req, ep).await?.is_empty() {
        return Err(vendor_error(
            StatusCode::BAD_REQUEST,
            &format!("{MSG}.SYS018"),
            "Unable to create the job because there are no pending attribute changes.",
            &[],
            "Change an attribute, then create the job.",
        ));
    }
    create_job(req, ep, "BIOSConfiguration", "Configure: BIOS.Setup.1-1", false).await
}

fn sys011() -> RedfishError {
    vendor_error(
        StatusCode::BAD_REQUEST,
        &format!("{MSG}.SYS011"),
        "Pending configuration values are already committed, unable to perform another set operation.",
        &[],
        "Wait for the scheduled job to complete or delete the configuration job before attempting more configuration operations.",
    )
}

/// PATCH `Bios/Settings`: the change goes to the one BIOS model; with an
/// `OnReset` apply time iDRAC also schedules the job that applies it (202).
async fn patch_bios_settings(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let body = json_body(&req)?;
    let apply_time = body
        .get("@Redfish.SettingsApplyTime")
        .and_then(|a| a.get("ApplyTime"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if jobs(&req, &ep)
        .await?
        .iter()
        .any(|j| j.job_type == "BIOSConfiguration" && j.state == "Scheduled")
    {
        return Err(sys011());
    }
    // What is current now, as iDRAC shows it, to report until the job runs.
    let before = read(&req, &format!("{}/Bios", system_uri(&ep))).await?;
    let already = req.app.store.persona_attributes(ep.system_id.clone()).await?;
    call(
        &req,
        Method::PATCH,
        &format!("{}/Bios/Settings", system_uri(&ep)),
        Some(body.clone()),
    )
    .await?;
    if let Some(attrs) = body.get("Attributes").and_then(Value::as_object) {
        for (name, value) in attrs {
            let current = already
                .iter()
                .find(|a| &a.name == name && a.pending.is_some())
                .map(|a| a.current.clone())
                .unwrap_or_else(|| text(&before["Attributes"][name.as_str()]));
            let value = text(value);
            let pending = (value != current).then_some(value);
            req.app
                .store
                .set_persona_attribute(
                    ep.system_id.clone(),
                    AttributeRecord {
                        name: name.clone(),
                        current,
                        pending,
                    },
                )
                .await?;
        }
    }
    match apply_time.as_deref() {
        Some("OnReset" | "AtMaintenanceWindowStart" | "InMaintenanceWindowOnReset") => {
            let job = schedule_bios_job(&req, &ep).await?;
            let mut reply = Reply::accepted(&format!("{JOBS}/{}", job.id), job_json(&job));
            if let Reply::Json { body, .. } = &mut reply {
                *body = json!({"@Message.ExtendedInfo": [success_message()]});
            }
            Ok(reply)
        }
        _ => Ok(Reply::ok(json!({"@Message.ExtendedInfo": [success_message(), {
            "MessageId": format!("{MSG}.SYS430"),
            "Message": "The pending values are committed when a configuration job is created and the server restarts.",
            "MessageArgs": [], "Severity": "Informational", "Resolution": "Create a configuration job."}]}))),
    }
}

async fn post_clear_pending(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    Fields::parse(&req.body, Context::Action("DellManager.ClearPending"))?.finish()?;
    // Pending back to current: the one model gets the values from before.
    let attrs = req.app.store.persona_attributes(ep.system_id.clone()).await?;
    let mut back = serde_json::Map::new();
    for a in attrs.into_iter().filter(|a| a.pending.is_some()) {
        back.insert(a.name.clone(), Value::String(a.current.clone()));
        req.app
            .store
            .set_persona_attribute(ep.system_id.clone(), AttributeRecord { pending: None, ..a })
            .await?;
    }
    if !back.is_empty() {
        call(
            &req,
            Method::PATCH,
            &format!("{}/Bios/Settings", system_uri(&ep)),
            Some(json!({"Attributes": back})),
        )
        .await?;
    }
    for j in jobs(&req, &ep).await? {
        if j.job_type == "BIOSConfiguration" && j.state == "Scheduled" {
            req.app
                .store
                .delete_jobs(ep.system_id.clone(), Some(j.id))
                .await?;
        }
    }
    Ok(Reply::ok(json!({"@Message.ExtendedInfo": [success_message()]})))
}

/// `TaskService/Tasks/JID_...` is a job seen as a task: 202 while it runs,
/// 200 once it is done. Other ids are the BMC's own tasks.
async fn get_task(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0).to_owned();
    let ep = endpoint_of(&req)?;
    if !id.starts_with("JID_") {
        return call(
            &req,
            Method::GET,
            &format!("/redfish/v1/TaskService/Tasks/{id}"),
            None,
        )
        .await;
    }
    let job = find_job(&req, &ep, &id).await?;
    let task_state = match job.state.as_str() {
        "Completed" => "Completed",
        "Failed" => "Exception",
        "Running" => "Running",
        _ => "Starting",
    };
    let body = json!({
        "@odata.id": format!("/redfish/v1/TaskService/Tasks/{id}"),
        "@odata.type": "#Task.v1_5_1.Task",
        "Id": id,
        "Name": job.name,
        "TaskState": task_state,
        "TaskStatus": if job.state == "Failed" { "Critical" } else { "OK" },
        "PercentComplete": job.percent,
        "Messages": [{"MessageId": format!("{MSG}.{}", job.message_id), "Message": job.message, "MessageArgs": []}],
        "Oem": {"Dell": job_json(&job)},
    });
    let status = if finished(&job.state) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(Reply::Json {
        status,
        body,
        headers: Vec::new(),
    })
}

// ---- Dell services ---------------------------------------------------------------

async fn get_lc_service(req: Request) -> Result<Reply, RedfishError> {
    endpoint_of(&req)?;
    Ok(Reply::ok(json!({
        "@odata.id": format!("{DELL}/DellLCService"),
        "@odata.type": "#DellLCService.v1_3_0.DellLCService",
        "Id": "DellLCService",
        "Name": "DellLCService",
        "Actions": {"#DellLCService.GetRemoteServicesAPIStatus": {
            "target": format!("{DELL}/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus")}},
    })))
}

async fn post_remote_services_status(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    Fields::parse(
        &req.body,
        Context::Action("DellLCService.GetRemoteServicesAPIStatus"),
    )?
    .finish()?;
    let server = match power_state(&req, &system_uri(&ep)).await?.as_str() {
        "On" => "OutOfPOST",
        "PoweringOn" => "InPOST",
        _ => "PoweredOff",
    };
    Ok(Reply::ok(json!({
        "LCStatus": "Ready", "RTStatus": "Ready", "ServerStatus": server, "Status": "Ready",
        "TelemetryServiceStatus": "Ready",
    })))
}

async fn get_idrac_card_service(req: Request) -> Result<Reply, RedfishError> {
    endpoint_of(&req)?;
    Ok(Reply::ok(json!({
        "@odata.id": format!("{DELL}/DelliDRACCardService"),
        "@odata.type": "#DelliDRACCardService.v1_6_0.DelliDRACCardService",
        "Id": "DelliDRACCardService",
        "Name": "DelliDRACCardService",
        "Actions": {"#DelliDRACCardService.iDRACReset": {
            "target": format!("{DELL}/DelliDRACCardService/Actions/DelliDRACCardService.iDRACReset"),
            "Force@Redfish.AllowableValues": ["Force", "Graceful"]}},
    })))
}

/// `iDRACReset {"Force": "Graceful" | "Force"}` (racadm racreset): the iDRAC
/// reboots, its system does not (see `manager_reset`).
async fn post_idrac_reset(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "DelliDRACCardService.iDRACReset";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    body.enumerated("Force", |f| matches!(f, "Force" | "Graceful").then_some(()))?;
    body.finish()?;
    req.app.manager_resets.reset_system_bmc(&req.app, &ep.system_id);
    Ok(Reply::ok(json!({
        "@Message.ExtendedInfo": [{
            "MessageId": "IDRAC.2.8.RAC064",
            "Message": "iDRAC restart operation initiated successfully.",
            "Severity": "Informational",
            "MessageArgs": [],
            "Resolution": "Wait for the iDRAC to restart before reconnecting.",
        }],
    })))
}

async fn get_job_service(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let n = jobs(&req, &ep).await?.len();
    Ok(Reply::ok(json!({
        "@odata.id": format!("{DELL}/DellJobService"),
        "@odata.type": "#DellJobService.v1_2_0.DellJobService",
        "Id": "Job Service",
        "Name": "DellJobService",
        "CurrentNumberOfJobs": n,
        "MaximumNumberOfJobs": 256,
        "Actions": {"#DellJobService.DeleteJobQueue": {
            "target": format!("{DELL}/DellJobService/Actions/DellJobService.DeleteJobQueue")}},
    })))
}

/// `DeleteJobQueue {"JobID": "JID_CLEARALL" | "JID_CLEARALL_FORCE" | "JID_..."}`.
async fn post_delete_job_queue(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "DellJobService.DeleteJobQueue";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let id = body.string("JobID")?;
    let id = body.required("JobID", id)?;
    body.finish()?;
    if id == "JID_CLEARALL" || id == "JID_CLEARALL_FORCE" {
        req.app.store.delete_jobs(ep.system_id.clone(), None).await?;
    } else if req
        .app
        .store
        .delete_jobs(ep.system_id.clone(), Some(id.clone()))
        .await?
        == 0
    {
        return Err(RedfishError::action_parameter_value_not_in_list(
            &id, "JobID", ACTION,
        ));
    }
    Ok(Reply::ok(json!({"@Message.ExtendedInfo": [success_message()]})))
}

/// The boot attributes of the iDRAC component, from the one boot override.
async fn get_idrac_attributes(req: Request) -> Result<Reply, RedfishError> {
    let ep = endpoint_of(&req)?;
    let system = read(&req, &system_uri(&ep)).await?;
    let boot = &system["Boot"];
    let first = match boot["BootSourceOverrideTarget"].as_str().unwrap_or("None") {
        "Cd" => "VCD-DVD",
        "Usb" => "VFDD",
        "Pxe" => "PXE",
        "Hdd" => "HDD",
        "BiosSetup" => "BIOS",
        _ => "Normal",
    };
    let once = if boot["BootSourceOverrideEnabled"] == "Once" {
        "Enabled"
    } else {
        "Disabled"
    };
    Ok(Reply::ok(json!({
        "@odata.id": format!("{DELL}/DellAttributes/iDRAC.Embedded.1"),
        "@odata.type": "#DellAttributes.v1_0_0.DellAttributes",
        "Id": "iDRACAttributes",
        "Name": "OEMAttributeRegistry",
        "AttributeRegistry": "ManagerAttributeRegistry.v1_0_0",
        "Attributes": {
            "Info.1.HWModel": "iDRAC 9",
            "Info.1.Version": FIRMWARE,
            "ServerBoot.1.BootOnce": once,
            "ServerBoot.1.FirstBootDevice": first,
            "Redfish.1.Enable": "Enabled",
        },
    })))
}

// ---- Server Configuration Profile import ---------------------------------------------

/// The attributes `(component FQDD, name, value)` of an SCP document, XML or JSON.
pub fn scp_attributes(buffer: &str) -> Result<Vec<(String, String, String)>, String> {
    let text = buffer.trim();
    if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("ImportBuffer is not JSON: {e}"))?;
        let mut out = Vec::new();
        for c in v["SystemConfiguration"]["Components"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let fqdd = c["FQDD"].as_str().unwrap_or("").to_owned();
            for a in c["Attributes"].as_array().cloned().unwrap_or_default() {
                let name = a["Name"].as_str().unwrap_or("").to_owned();
                let value = match &a["Value"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push((fqdd.clone(), name, value));
            }
        }
        return Ok(out);
    }
    if !text.contains("<SystemConfiguration") {
        return Err("ImportBuffer holds no SystemConfiguration".into());
    }
    let mut out = Vec::new();
    let mut fqdd = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('>') else { break };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if let Some(attrs) = tag.strip_prefix("Component") {
            fqdd = xml_attribute(attrs, "FQDD").unwrap_or_default();
        } else if let Some(attrs) = tag.strip_prefix("Attribute") {
            let name = xml_attribute(attrs, "Name").ok_or("an Attribute without Name")?;
            let close = rest.find("</Attribute>").ok_or("an Attribute is not closed")?;
            let value = xml_unescape(rest[..close].trim());
            rest = &rest[close + "</Attribute>".len()..];
            out.push((fqdd.clone(), name, value));
        }
    }
    Ok(out)
}

fn xml_attribute(attrs: &str, name: &str) -> Option<String> {
    let at = attrs.find(&format!("{name}="))? + name.len() + 1;
    let rest = &attrs[at..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    let end = body.find(quote)?;
    Some(xml_unescape(&body[..end]))
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// ImportSystemConfiguration: the iDRAC component's `ServerBoot.1#BootOnce`
/// and `#FirstBootDevice` set the one boot override (what Ironic's
/// idrac-redfish-virtual-media boot does); a job that completes at once.
async fn post_import_system_configuration(req: Request) -> Result<Reply, RedfishError> {
    const ACTION: &str = "OemManager.ImportSystemConfiguration";
    let ep = endpoint_of(&req)?;
    let mut body = Fields::parse(&req.body, Context::Action(ACTION))?;
    let buffer = body.string("ImportBuffer")?;
    let buffer = body.required("ImportBuffer", buffer)?;
    let share = body.take("ShareParameters");
    let _ = (
        body.take("ShutdownType"),
        body.take("HostPowerState"),
        body.take("TimeToWait"),
    );
    body.finish()?;
    if let Some(share) = &share {
        let targets: Vec<String> = match &share["Target"] {
            Value::String(s) => s.split(',').map(|t| t.trim().to_owned()).collect(),
            Value::Array(a) => a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
            _ => vec!["ALL".to_owned()],
        };
        if let Some(bad) = targets
            .iter()
            .find(|t| !matches!(t.as_str(), "ALL" | "IDRAC" | "BIOS"))
        {
            return Err(RedfishError::action_parameter_value_not_in_list(
                bad,
                "ShareParameters/Target",
                ACTION,
            ));
        }
    }
    let attrs = scp_attributes(&buffer).map_err(|why| {
        RedfishError::bad_request(
            crate::error::Message::new(
                &crate::registries::base::ACTION_PARAMETER_VALUE_FORMAT_ERROR,
                &["(ImportBuffer)", "ImportBuffer", ACTION],
            )
            .resolution(why),
        )
    })?;
    if jobs(&req, &ep)
        .await?
        .iter()
        .any(|j| j.job_type == "BIOSConfiguration" && j.state == "Scheduled")
    {
        return Err(vendor_error(
            StatusCode::BAD_REQUEST,
            &format!("{MSG}.LC068"),
            "Unable to perform the import or export operation because there are pending attribute changes or a configuration job is in progress.",
            &[],
            "Apply or cancel any pending attribute changes. Changes can be applied by creating a targeted configuration job, or the changes can be cancelled by invoking the DeleteJobQueue method.",
        ));
    }
    let mut once = None;
    let mut device = None;
    for (fqdd, name, value) in &attrs {
        if !fqdd.eq_ignore_ascii_case("iDRAC.Embedded.1") {
            continue;
        }
        match name.as_str() {
            "ServerBoot.1#BootOnce" => once = Some(value.eq_ignore_ascii_case("Enabled")),
            "ServerBoot.1#FirstBootDevice" => device = Some(value.to_ascii_uppercase()),
            _ => {}
        }
    }
    if let Some(device) = device {
        let target = match device.as_str() {
            "VCD-DVD" | "CD-DVD" => Some("Cd"),
            "VFDD" | "FLOPPY" => Some("Usb"),
            "PXE" => Some("Pxe"),
            "HDD" => Some("Hdd"),
            "BIOS" | "F2" => Some("BiosSetup"),
            "NORMAL" => None,
            other => {
                return Err(RedfishError::action_parameter_value_not_in_list(
                    other,
                    "ServerBoot.1#FirstBootDevice",
                    ACTION,
                ))
            }
        };
        let boot = match target {
            Some(t) => json!({"Boot": {
                "BootSourceOverrideTarget": t,
                "BootSourceOverrideEnabled": if once.unwrap_or(true) { "Once" } else { "Continuous" },
            }}),
            None => json!({"Boot": {"BootSourceOverrideEnabled": "Disabled"}}),
        };
        call(&req, Method::PATCH, &system_uri(&ep), Some(boot)).await?;
    }
    let job = create_job(&req, &ep, "ImportConfiguration", "Import Configuration", true).await?;
    Ok(Reply::accepted(
        &format!("/redfish/v1/TaskService/Tasks/{}", job.id),
        json!({}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_xml_as_sushy_and_the_dell_scripts_write_it() {
        let xml = "<SystemConfiguration><Component FQDD=\"iDRAC.Embedded.1\"><Attribute Name=\"ServerBoot.1#BootOnce\">Enabled</Attribute><Attribute Name=\"ServerBoot.1#FirstBootDevice\">VCD-DVD</Attribute></Component></SystemConfiguration>";
        let a = scp_attributes(xml).expect("parses");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1],
            (
                "iDRAC.Embedded.1".into(),
                "ServerBoot.1#FirstBootDevice".into(),
                "VCD-DVD".into()
            )
        );
        let spaced = "<SystemConfiguration>\n  <Component FQDD='iDRAC.Embedded.1'>\n    <Attribute Name=\"ServerBoot.1#FirstBootDevice\"> vFDD </Attribute>\n  </Component>\n</SystemConfiguration>";
        assert_eq!(scp_attributes(spaced).expect("parses")[0].2, "vFDD");
    }

    #[test]
    fn scp_json_and_garbage() {
        let j = r#"{"SystemConfiguration":{"Components":[{"FQDD":"iDRAC.Embedded.1","Attributes":[{"Name":"ServerBoot.1#BootOnce","Value":"Disabled"}]}]}}"#;
        assert_eq!(scp_attributes(j).expect("parses")[0].2, "Disabled");
        assert!(scp_attributes("hello").is_err());
        assert!(scp_attributes("{").is_err());
        assert!(scp_attributes("<SystemConfiguration><Attribute Name=\"x\">unterminated").is_err());
        // Truncated and odd inputs never panic.
        for s in [
            "<",
            "<SystemConfiguration><Component FQDD=",
            "<SystemConfiguration><Attribute Name='",
            "<SystemConfiguration><Attribute>",
        ] {
            let _ = scp_attributes(s);
        }
    }

    #[test]
    fn service_tags_are_seven_characters() {
        assert_eq!(service_tag("6695eb01-f6a4-8304-79aa-97f2502e193f").len(), 7);
    }
}
