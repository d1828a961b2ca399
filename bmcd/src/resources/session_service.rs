//! `SessionService` and its `Sessions`: token logins and logouts.

use crate::json;
use hyper::header::HeaderValue;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::auth::{Principal, SESSION_TIMEOUT_RANGE};
use crate::body::{Context, Fields};
use crate::error::{Message, RedfishError};
use crate::privilege::{Privilege, Required};
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::store::SessionRecord;
use crate::time::rfc3339;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/SessionService", Required::LOGIN, get_session_service),
        route!(PATCH "/redfish/v1/SessionService", Required::CONFIGURE_MANAGER, patch_session_service),
        route!(GET "/redfish/v1/SessionService/Sessions", Required::LOGIN, get_session_collection),
        route!(POST "/redfish/v1/SessionService/Sessions", Required::Open, post_session),
        route!(POST "/redfish/v1/SessionService/Sessions/Members", Required::Open, post_session),
        route!(GET "/redfish/v1/SessionService/Sessions/{id}", Required::LOGIN, get_session),
        route!(DELETE "/redfish/v1/SessionService/Sessions/{id}", Required::CONFIGURE_MANAGER_OR_SELF, delete_session),
    ]
}

const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";

fn session_json(s: &SessionRecord, user_name: &str) -> Value {
    json!({
        "@odata.id": format!("{SESSIONS}/{}", s.id),
        "@odata.type": schemas::SESSION.odata_type(),
        "Id": s.id,
        "Name": "User Session",
        "Description": "Redfish login session",
        "UserName": user_name,
        "SessionType": "Redfish",
        "CreatedTime": rfc3339(s.created),
        "ClientOriginIPAddress": s.client_address,
    })
}

/// Managers see every session; everyone else only their own.
fn may_see(who: &Principal, s: &SessionRecord) -> bool {
    who.privileges().contains(Privilege::ConfigureManager) || s.account_id == who.account_id
}

fn user_name(req: &Request, account_id: i64) -> String {
    req.app
        .auth
        .account(account_id)
        .map(|a| a.user_name)
        .unwrap_or_default()
}

async fn get_session_service(req: Request) -> Result<Reply, RedfishError> {
    let policy = req.app.auth.policy();
    Ok(Reply::ok(json!({
        "@odata.id": "/redfish/v1/SessionService",
        "@odata.type": schemas::SESSION_SERVICE.odata_type(),
        "Id": "SessionService",
        "Name": "Session Service",
        "Description": "Redfish login sessions",
        "ServiceEnabled": true,
        "Status": status_ok(),
        "SessionTimeout": policy.session_timeout_s,
        "Sessions": link(SESSIONS),
    })))
}

async fn patch_session_service(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let timeout = body.integer("SessionTimeout")?;
    body.read_only("ServiceEnabled")?;
    body.finish()?;
    let mut policy = req.app.auth.policy();
    if let Some(t) = timeout {
        if !(SESSION_TIMEOUT_RANGE.0..=SESSION_TIMEOUT_RANGE.1).contains(&t) {
            return Err(RedfishError::property_value_out_of_range(
                &t.to_string(),
                "SessionTimeout",
            ));
        }
        policy.session_timeout_s = t;
    }
    req.app.auth.set_policy(policy).await?;
    get_session_service(req).await
}

async fn get_session_collection(req: Request) -> Result<Reply, RedfishError> {
    let who = req.principal()?;
    let members = req
        .app
        .auth
        .sessions()
        .into_iter()
        .filter(|s| may_see(who, s))
        .map(|s| format!("{SESSIONS}/{}", s.id));
    Ok(Reply::ok(collection(
        &schemas::SESSION_COLLECTION,
        SESSIONS,
        "Session Collection",
        members,
    )))
}

async fn post_session(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let user = body.string("UserName")?;
    let password = body.string("Password")?;
    let _context = body.string("Context")?;
    let user = body.required("UserName", user)?;
    let password = body.required("Password", password)?;
    body.finish()?;
    let scope = req.endpoint.as_ref().map(|e| e.id.as_str());
    let who = req
        .app
        .auth
        .authenticate_password_at(scope, &user, &password)
        .await?;
    let (session, token) = req
        .app
        .auth
        .create_session(&who, req.client.ip().to_string())
        .await?;
    tracing::info!(user = %who.user_name, session = %session.id, "session created");
    let uri = format!("{SESSIONS}/{}", session.id);
    let token = HeaderValue::from_str(&token).map_err(|_| RedfishError::internal())?;
    let mut body = session_json(&session, &who.user_name);
    if who.password_change_required {
        // The session works only to change the password; say so.
        let account = format!("/redfish/v1/AccountService/Accounts/{}", who.account_id);
        body["@Message.ExtendedInfo"] =
            json!([Message::new(&base::PASSWORD_CHANGE_REQUIRED, &[&account]).to_json()]);
    }
    Ok(Reply::created(&uri, body).with_header("x-auth-token", token))
}

fn find_visible(req: &Request) -> Result<SessionRecord, RedfishError> {
    let who = req.principal()?;
    let id = req.param(0);
    req.app
        .auth
        .session(id)
        .filter(|s| may_see(who, s))
        .ok_or_else(|| RedfishError::not_found("Session", id))
}

async fn get_session(req: Request) -> Result<Reply, RedfishError> {
    let s = find_visible(&req)?;
    Ok(Reply::ok(session_json(&s, &user_name(&req, s.account_id))))
}

async fn delete_session(req: Request) -> Result<Reply, RedfishError> {
    let s = find_visible(&req)?;
    req.app.auth.delete_session(&s.id).await?;
    tracing::info!(session = %s.id, "session deleted");
    Ok(Reply::NoContent)
}
