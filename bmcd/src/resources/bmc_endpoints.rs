//! The OEM API for per-VM BMC endpoints:
//! `/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints`. Each endpoint gives one
//! ComputerSystem its own HTTPS listener, persona (Generic, iLO5, iDRAC9) and,
//! optionally, its own account; it is kept in the state database and started
//! again with bmcd.

use crate::json;
use serde_json::Value;

use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::model::HypervisorError;
use crate::personas::PersonaKind;
use crate::privilege::{Required, Role};
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::store::{EndpointRecord, StoreError};
use crate::time::now_unix;

pub const ENDPOINTS: &str = "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints";

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints", Required::CONFIGURE_MANAGER, get_endpoints),
        route!(POST "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints", Required::CONFIGURE_MANAGER, post_endpoint),
        route!(GET "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints/{id}", Required::CONFIGURE_MANAGER, get_endpoint),
        route!(DELETE "/redfish/v1/Managers/BMC/Oem/Redfin/BmcEndpoints/{id}", Required::CONFIGURE_MANAGER, delete_endpoint),
    ]
}

fn endpoint_json(req: &Request, e: &EndpointRecord) -> Value {
    let persona = PersonaKind::parse(&e.persona)
        .map(PersonaKind::display)
        .unwrap_or("Generic");
    let running = req.app.endpoints.address(&e.id);
    json!({
        "@odata.id": format!("{ENDPOINTS}/{}", e.id),
        "Id": e.id,
        "Name": format!("BMC endpoint {}", e.id),
        "SystemId": e.system_id,
        "Persona": persona,
        "Address": e.listen,
        "ListeningOn": running.map(|a| a.to_string()),
        "UserName": e.user_name,
        "Status": if running.is_some() {
            json!({"State": "Enabled", "Health": "OK"})
        } else {
            json!({"State": "Disabled", "Health": "Critical"})
        },
        "Links": {"System": {"@odata.id": format!("/redfish/v1/Systems/{}", e.system_id)}},
    })
}

async fn get_endpoints(req: Request) -> Result<Reply, RedfishError> {
    let all = req.app.store.endpoints().await?;
    Ok(Reply::ok(json!({
        "@odata.id": ENDPOINTS,
        "Name": "Per-VM BMC endpoints",
        "Members": all.iter().map(|e| json!({"@odata.id": format!("{ENDPOINTS}/{}", e.id)})).collect::<Vec<_>>(),
        "Members@odata.count": all.len(),
    })))
}

async fn find(req: &Request) -> Result<EndpointRecord, RedfishError> {
    let id = req.param(0);
    req.app
        .store
        .endpoint(id.to_owned())
        .await?
        .ok_or_else(|| RedfishError::not_found("BmcEndpoint", id))
}

async fn get_endpoint(req: Request) -> Result<Reply, RedfishError> {
    let e = find(&req).await?;
    Ok(Reply::ok(endpoint_json(&req, &e)))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// POST `{"SystemId", "Persona", "Address", "Id"?, "UserName"?, "Password"?, "RoleId"?}`.
async fn post_endpoint(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let system = body.string("SystemId")?;
    let system = body.required("SystemId", system)?;
    let persona = body.string("Persona")?;
    let persona_name = body.required("Persona", persona)?;
    let address = body.string("Address")?;
    let address = body.required("Address", address)?;
    let id = body.string("Id")?;
    let user = body.string("UserName")?;
    let password = body.string("Password")?;
    let role = body.string("RoleId")?;
    body.finish()?;

    let record = create(
        &req.app,
        NewEndpoint {
            id,
            system,
            persona: persona_name,
            address,
            user,
            password,
            role,
        },
    )
    .await?;
    let id = record.id.clone();
    let uri = format!("{ENDPOINTS}/{id}");
    Ok(Reply::created(&uri, endpoint_json(&req, &record)))
}

fn account_error(e: crate::auth::AccountError) -> RedfishError {
    use crate::auth::AccountError as A;
    match e {
        A::BadPassword(why) => RedfishError::property_value_incorrect("Password", "(hidden)", &why),
        A::BadUserName(n) => {
            RedfishError::property_value_incorrect("UserName", &n, "use letters, digits, '.', '_' and '-'")
        }
        A::UserNameTaken(n) => RedfishError::already_exists("ManagerAccount", "UserName", &n),
        A::Store(s) => s.into(),
        _ => RedfishError::internal(),
    }
}

async fn delete_endpoint(req: Request) -> Result<Reply, RedfishError> {
    let e = find(&req).await?;
    req.app.endpoints.stop(&e.id).await;
    req.app
        .auth
        .delete_endpoint_accounts(&e.id)
        .await
        .map_err(account_error)?;
    req.app.store.delete_endpoint(e.id.clone()).await?;
    Ok(Reply::NoContent)
}

/// What a new endpoint needs (from the OEM API or the configuration file).
pub struct NewEndpoint {
    pub id: Option<String>,
    /// The domain's UUID or name.
    pub system: String,
    pub persona: String,
    pub address: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub role: Option<String>,
}

/// Checks, stores and starts an endpoint, with its own account if it has one.
/// Nothing is left behind when a step fails.
pub async fn create(
    app: &std::sync::Arc<crate::app::App>,
    new: NewEndpoint,
) -> Result<EndpointRecord, RedfishError> {
    let NewEndpoint {
        id,
        system,
        persona: persona_name,
        address,
        user,
        password,
        role,
    } = new;
    let persona = PersonaKind::parse(&persona_name)
        .ok_or_else(|| RedfishError::property_value_not_in_list(&persona_name, "Persona"))?;
    let role = match role.as_deref() {
        None => Role::Administrator,
        Some(r) => Role::parse(r).ok_or_else(|| RedfishError::property_value_not_in_list(r, "RoleId"))?,
    };
    if address.parse::<std::net::SocketAddr>().is_err() {
        return Err(RedfishError::property_value_incorrect(
            "Address",
            &address,
            "it must be ADDRESS:PORT, such as 127.0.0.2:443",
        ));
    }
    // The system by UUID or by domain name.
    let sys = match app.hypervisor.system(system.clone()).await {
        Ok(s) => s,
        Err(HypervisorError::SystemNotFound(_)) => {
            match app.hypervisor.system_id_by_name(system.clone()).await? {
                Some(uuid) => app.hypervisor.system(uuid).await?,
                None => {
                    return Err(RedfishError::bad_request(Message::new(
                        &base::RESOURCE_NOT_FOUND,
                        &["ComputerSystem", &system],
                    )))
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let id = id.unwrap_or_else(|| {
        let hex: Vec<char> = sys.id.chars().filter(char::is_ascii_hexdigit).collect();
        let short: String = hex[hex.len().saturating_sub(8)..].iter().collect();
        format!("{}-{short}", persona.as_str())
    });
    if !valid_id(&id) {
        return Err(RedfishError::property_value_incorrect(
            "Id",
            &id,
            "use letters, digits, '-' and '_' (at most 32)",
        ));
    }
    if user.is_some() != password.is_some() {
        return Err(RedfishError::property_missing(if user.is_some() {
            "Password"
        } else {
            "UserName"
        }));
    }
    let record = EndpointRecord {
        id: id.clone(),
        system_id: sys.id.clone(),
        persona: persona.as_str().to_owned(),
        listen: address.clone(),
        user_name: user.clone(),
        created: now_unix(),
    };
    if app.store.endpoint(id.clone()).await?.is_some() {
        return Err(RedfishError::already_exists("BmcEndpoint", "Id", &id));
    }
    if app.store.endpoints().await?.iter().any(|e| e.listen == address) {
        return Err(RedfishError::already_exists("BmcEndpoint", "Address", &address));
    }
    if let (Some(u), Some(p)) = (&user, password) {
        app.auth
            .create_endpoint_account(&id, u, p, role)
            .await
            .map_err(account_error)?;
    }
    if let Err(e) = app.endpoints.start(std::sync::Arc::clone(app), &record).await {
        let _ = app.auth.delete_endpoint_accounts(&id).await;
        return Err(RedfishError::property_value_incorrect(
            "Address",
            &address,
            &e.to_string(),
        ));
    }
    match app.store.insert_endpoint(record.clone()).await {
        Ok(()) => {}
        Err(e) => {
            app.endpoints.stop(&id).await;
            let _ = app.auth.delete_endpoint_accounts(&id).await;
            return Err(match e {
                StoreError::Conflict(_) => RedfishError::already_exists("BmcEndpoint", "Id", &id),
                other => {
                    // The certificate its start made and stored goes too.
                    let _ = app.store.delete_endpoint(id.clone()).await;
                    other.into()
                }
            });
        }
    }
    Ok(record)
}
