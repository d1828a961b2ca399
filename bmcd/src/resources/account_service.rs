//! `AccountService`, its `Accounts` and `Roles`.

use crate::json;
use serde_json::Value;

use super::{collection, link, status_ok};
use crate::auth::{AccountChanges, NewAccount, Principal, MAX_USER_NAME_LENGTH};
use crate::body::{Context, Fields};
use crate::config::ClientAuth;
use crate::error::RedfishError;
use crate::privilege::{Privilege, Required, Role};
use crate::route;
use crate::router::{Reply, Request, Route};
use crate::schemas;
use crate::store::AccountRecord;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/redfish/v1/AccountService", Required::LOGIN, get_account_service),
        route!(PATCH "/redfish/v1/AccountService", Required::CONFIGURE_USERS, patch_account_service),
        route!(GET "/redfish/v1/AccountService/Accounts", Required::LOGIN, get_account_collection),
        route!(POST "/redfish/v1/AccountService/Accounts", Required::CONFIGURE_USERS, post_account),
        route!(GET "/redfish/v1/AccountService/Accounts/{id}", Required::CONFIGURE_USERS_OR_SELF, get_account),
        route!(PATCH "/redfish/v1/AccountService/Accounts/{id}", Required::CONFIGURE_USERS_OR_SELF, patch_account),
        route!(DELETE "/redfish/v1/AccountService/Accounts/{id}", Required::CONFIGURE_USERS, delete_account),
        route!(GET "/redfish/v1/AccountService/Roles", Required::LOGIN, get_role_collection),
        route!(GET "/redfish/v1/AccountService/Roles/{id}", Required::LOGIN, get_role),
    ]
}

const ACCOUNTS: &str = "/redfish/v1/AccountService/Accounts";
const ROLES: &str = "/redfish/v1/AccountService/Roles";

fn is_user_manager(who: &Principal) -> bool {
    who.privileges().contains(Privilege::ConfigureUsers)
}

fn account_json(req: &Request, a: &AccountRecord) -> Value {
    json!({
        "@odata.id": format!("{ACCOUNTS}/{}", a.id),
        "@odata.type": schemas::MANAGER_ACCOUNT.odata_type(),
        "Id": a.id.to_string(),
        "Name": "User Account",
        "Description": "BMC user account",
        "UserName": a.user_name,
        "RoleId": a.role_id,
        "Enabled": a.enabled,
        "Locked": req.app.auth.is_locked(a),
        "Password": null,
        "PasswordChangeRequired": a.password_change_required,
        "AccountTypes": ["Redfish"],
        "Links": { "Role": link(&format!("{ROLES}/{}", a.role_id)) },
        "Oem": { "Redfin": {
            "Project": a.project.as_ref().map(|p| link(&format!("{}/{p}", super::projects::PROJECTS))),
        } },
    })
}

/// `Oem.Redfin.Project` of an account body: a project's id or URI, or null
/// (`Some(None)`); the project must exist.
async fn parse_project(req: &Request, body: &mut Fields) -> Result<Option<Option<String>>, RedfishError> {
    let Some(mut oem) = body.object("Oem")? else {
        return Ok(None);
    };
    let Some(mut redfin) = oem.object("Redfin")? else {
        oem.finish()?;
        return Ok(None);
    };
    let project = match redfin.take("Project") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(p)) => {
            let id = p.rsplit('/').next().unwrap_or_default().to_owned();
            if req.app.store.project(id.clone()).await?.is_none() {
                return Err(RedfishError::property_value_not_in_list(&p, "Oem/Redfin/Project"));
            }
            Some(Some(id))
        }
        Some(other) => {
            return Err(RedfishError::property_value_type(
                &other.to_string(),
                "Oem/Redfin/Project",
            ))
        }
    };
    redfin.finish()?;
    oem.finish()?;
    Ok(project)
}

async fn get_account_service(req: Request) -> Result<Reply, RedfishError> {
    let p = req.app.auth.policy();
    let client_cas = req.app.certificates.client_cas();
    Ok(Reply::ok(json!({
        "@odata.id": "/redfish/v1/AccountService",
        "@odata.type": schemas::ACCOUNT_SERVICE.odata_type(),
        "Id": "AccountService",
        "Name": "Account Service",
        "Description": "BMC user accounts and roles",
        "ServiceEnabled": true,
        "Status": status_ok(),
        "LocalAccountAuth": "Enabled",
        "SupportedAccountTypes": ["Redfish"],
        "HTTPBasicAuth": "Enabled",
        "MinPasswordLength": p.min_password_length,
        "MaxPasswordLength": p.max_password_length,
        "AccountLockoutThreshold": p.lockout_threshold,
        "AccountLockoutDuration": p.lockout_duration_s,
        "AccountLockoutCounterResetAfter": p.lockout_counter_reset_after_s,
        "AccountLockoutCounterResetEnabled": true,
        "AuthFailureLoggingThreshold": 1,
        "Accounts": link(ACCOUNTS),
        "Roles": link(ROLES),
        "MultiFactorAuth": {
            "ClientCertificate": {
                "Enabled": client_cas.is_some(),
                "RespondToUnauthenticatedClients": client_cas.is_none_or(|c| c.mode == ClientAuth::Optional),
                "CertificateMappingAttribute": "CommonName",
                "Certificates": link(super::certificate_service::CLIENT_CAS),
            },
        },
    })))
}

async fn patch_account_service(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let mut p = req.app.auth.policy();
    let range = |v: i64, lo: i64, hi: i64, name: &str| -> Result<i64, RedfishError> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(RedfishError::property_value_out_of_range(&v.to_string(), name))
        }
    };
    if let Some(v) = body.integer("MinPasswordLength")? {
        p.min_password_length = range(v, 1, 64, "MinPasswordLength")? as usize;
    }
    if let Some(v) = body.integer("MaxPasswordLength")? {
        p.max_password_length = range(v, 1, 256, "MaxPasswordLength")? as usize;
    }
    if let Some(v) = body.integer("AccountLockoutThreshold")? {
        p.lockout_threshold = range(v, 0, 1000, "AccountLockoutThreshold")? as u32;
    }
    if let Some(v) = body.integer("AccountLockoutDuration")? {
        p.lockout_duration_s = range(v, 0, 86_400, "AccountLockoutDuration")?;
    }
    if let Some(v) = body.integer("AccountLockoutCounterResetAfter")? {
        p.lockout_counter_reset_after_s = range(v, 1, 86_400, "AccountLockoutCounterResetAfter")?;
    }
    for read_only in [
        "ServiceEnabled",
        "LocalAccountAuth",
        "HTTPBasicAuth",
        "AccountLockoutCounterResetEnabled",
        "MultiFactorAuth",
    ] {
        body.read_only(read_only)?;
    }
    body.finish()?;
    if p.min_password_length > p.max_password_length {
        return Err(RedfishError::bad_request(crate::error::Message::new(
            &crate::registries::base::PROPERTY_VALUE_CONFLICT,
            &["MinPasswordLength", "MaxPasswordLength"],
        )));
    }
    if p.lockout_duration_s != 0 && p.lockout_counter_reset_after_s > p.lockout_duration_s {
        return Err(RedfishError::bad_request(crate::error::Message::new(
            &crate::registries::base::PROPERTY_VALUE_CONFLICT,
            &["AccountLockoutCounterResetAfter", "AccountLockoutDuration"],
        )));
    }
    req.app.auth.set_policy(p).await?;
    get_account_service(req).await
}

async fn get_account_collection(req: Request) -> Result<Reply, RedfishError> {
    let who = req.principal()?;
    let all = is_user_manager(who);
    let members = req
        .app
        .auth
        .accounts()
        .into_iter()
        .filter(|a| all || a.id == who.account_id)
        .map(|a| format!("{ACCOUNTS}/{}", a.id));
    Ok(Reply::ok(collection(
        &schemas::MANAGER_ACCOUNT_COLLECTION,
        ACCOUNTS,
        "Accounts Collection",
        members,
    )))
}

fn parse_role(body: &mut Fields) -> Result<Option<Role>, RedfishError> {
    body.enumerated("RoleId", Role::parse)
}

/// Accounts are Redfish accounts; a client may restate that, nothing else.
fn check_account_types(body: &mut Fields) -> Result<(), RedfishError> {
    match body.take("AccountTypes") {
        None => Ok(()),
        Some(v) if v == json!(["Redfish"]) => Ok(()),
        Some(v) => Err(RedfishError::property_value_not_in_list(
            &v.to_string(),
            "AccountTypes",
        )),
    }
}

async fn post_account(req: Request) -> Result<Reply, RedfishError> {
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let user_name = body.string("UserName")?;
    let password = body.string("Password")?;
    let role = parse_role(&mut body)?;
    let enabled = body.bool("Enabled")?.unwrap_or(true);
    if body.bool("Locked")? == Some(true) {
        return Err(RedfishError::property_value_incorrect(
            "Locked",
            "true",
            "Only the service locks accounts.",
        ));
    }
    check_account_types(&mut body)?;
    let project = parse_project(&req, &mut body).await?.flatten();
    let user_name = body.required("UserName", user_name)?;
    let password = body.required("Password", password)?;
    let role = body.required("RoleId", role)?;
    body.finish()?;
    if user_name.len() > MAX_USER_NAME_LENGTH {
        return Err(RedfishError::bad_request(crate::error::Message::new(
            &crate::registries::base::STRING_VALUE_TOO_LONG,
            &[&user_name, &MAX_USER_NAME_LENGTH.to_string()],
        )));
    }
    let account = req
        .app
        .auth
        .create_account(NewAccount {
            user_name,
            password,
            role,
            enabled,
            project,
        })
        .await?;
    tracing::info!(user = %account.user_name, role = %account.role_id, "account created");
    let uri = format!("{ACCOUNTS}/{}", account.id);
    Ok(Reply::created(&uri, account_json(&req, &account)))
}

fn find_visible(req: &Request) -> Result<AccountRecord, RedfishError> {
    let who = req.principal()?;
    let id = req.param(0);
    let account = id
        .parse::<i64>()
        .ok()
        .and_then(|n| req.app.auth.account(n))
        .ok_or_else(|| RedfishError::not_found("ManagerAccount", id))?;
    if is_user_manager(who) || account.id == who.account_id {
        Ok(account)
    } else {
        Err(RedfishError::insufficient_privilege())
    }
}

async fn get_account(req: Request) -> Result<Reply, RedfishError> {
    let a = find_visible(&req)?;
    Ok(Reply::ok(account_json(&req, &a)))
}

async fn patch_account(req: Request) -> Result<Reply, RedfishError> {
    let a = find_visible(&req)?;
    let who = req.principal()?;
    let manager = is_user_manager(who);
    let mut body = Fields::parse(&req.body, Context::Resource)?;
    let changes = AccountChanges {
        user_name: body.string("UserName")?,
        password: body.string("Password")?,
        role: parse_role(&mut body)?,
        enabled: body.bool("Enabled")?,
        locked: body.bool("Locked")?,
        password_change_required: body.bool("PasswordChangeRequired")?,
        project: parse_project(&req, &mut body).await?,
    };
    check_account_types(&mut body)?;
    body.finish()?;
    let touches_more_than_password = changes.user_name.is_some()
        || changes.role.is_some()
        || changes.enabled.is_some()
        || changes.locked.is_some()
        || changes.password_change_required.is_some()
        || changes.project.is_some();
    if !manager && touches_more_than_password {
        // ConfigureSelf covers one's own password only.
        return Err(RedfishError::insufficient_privilege());
    }
    let keep = who.session_id.clone();
    let updated = req
        .app
        .auth
        .update_account(a.id, changes, keep.as_deref())
        .await?;
    tracing::info!(user = %updated.user_name, "account modified");
    Ok(Reply::ok(account_json(&req, &updated)))
}

async fn delete_account(req: Request) -> Result<Reply, RedfishError> {
    let a = find_visible(&req)?;
    req.app.auth.delete_account(a.id).await?;
    tracing::info!(user = %a.user_name, "account removed");
    Ok(Reply::NoContent)
}

async fn get_role_collection(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::ok(collection(
        &schemas::ROLE_COLLECTION,
        ROLES,
        "Roles Collection",
        Role::ALL.iter().map(|r| format!("{ROLES}/{}", r.id())),
    )))
}

async fn get_role(req: Request) -> Result<Reply, RedfishError> {
    let id = req.param(0);
    let role = Role::parse(id).ok_or_else(|| RedfishError::not_found("Role", id))?;
    let privileges: Vec<&str> = role.privileges().iter().map(Privilege::as_str).collect();
    Ok(Reply::ok(json!({
        "@odata.id": format!("{ROLES}/{}", role.id()),
        "@odata.type": schemas::ROLE.odata_type(),
        "Id": role.id(),
        "Name": format!("{} Role", role.id()),
        "Description": format!("Predefined {} role", role.id()),
        "RoleId": role.id(),
        "IsPredefined": true,
        "AssignedPrivileges": privileges,
        "OemPrivileges": [],
    })))
}
