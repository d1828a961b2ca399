//! `RedfishError`: the one place that chooses an HTTP status and a Base message
//! for every failure, and renders the Redfish error body.

use crate::json;
use hyper::StatusCode;
use serde_json::Value;

use crate::model::{HypervisorError, PowerState};
use crate::registries::{base, message_id, render, MessageDef};
use crate::store::StoreError;

/// One `@Message.ExtendedInfo` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub def: &'static MessageDef,
    pub args: Vec<String>,
    /// JSON pointers of the properties the message is about.
    pub related: Vec<String>,
    /// Replaces the registry's resolution text when the service knows better.
    pub resolution: Option<String>,
    /// A message rendered earlier (a finished task's), repeated as it was.
    pub stored: Option<Value>,
}

impl Message {
    pub fn new(def: &'static MessageDef, args: &[&str]) -> Message {
        Message {
            def,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            related: Vec::new(),
            resolution: None,
            stored: None,
        }
    }

    /// A message kept as JSON (from a task), shown again unchanged.
    pub fn stored(json: Value) -> Message {
        let mut m = Message::new(&base::GENERAL_ERROR, &[]);
        m.stored = Some(json);
        m
    }

    fn id(&self) -> String {
        self.stored
            .as_ref()
            .and_then(|s| s["MessageId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| message_id(self.def))
    }

    fn text(&self) -> String {
        self.stored
            .as_ref()
            .and_then(|s| s["Message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| render(self.def, &self.args))
    }

    pub fn related(mut self, pointer: impl Into<String>) -> Message {
        self.related.push(pointer.into());
        self
    }

    pub fn resolution(mut self, text: impl Into<String>) -> Message {
        self.resolution = Some(text.into());
        self
    }

    pub fn to_json(&self) -> Value {
        if let Some(s) = &self.stored {
            return s.clone();
        }
        let mut m = json!({
            "@odata.type": "#Message.v1_3_0.Message",
            "MessageId": message_id(self.def),
            "Message": render(self.def, &self.args),
            "MessageArgs": self.args,
            "MessageSeverity": self.def.severity,
            "Resolution": self.resolution.as_deref().unwrap_or(self.def.resolution),
        });
        if !self.related.is_empty() {
            m["RelatedProperties"] = json!(self.related);
        }
        m
    }
}

/// A failed request: status, messages and the few headers errors carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishError {
    pub status: StatusCode,
    pub messages: Vec<Message>,
    /// `Allow` for 405.
    pub allow: Option<String>,
    /// `Retry-After` seconds for 503.
    pub retry_after: Option<u32>,
    /// Whether to send `WWW-Authenticate` (401).
    pub authenticate: bool,
}

impl RedfishError {
    pub fn new(status: StatusCode, message: Message) -> RedfishError {
        RedfishError {
            status,
            messages: vec![message],
            allow: None,
            retry_after: None,
            authenticate: false,
        }
    }

    pub fn with(mut self, message: Message) -> RedfishError {
        self.messages.push(message);
        self
    }

    /// Replaces the resolution of the last message.
    pub fn with_resolution(mut self, text: impl Into<String>) -> RedfishError {
        if let Some(m) = self.messages.pop() {
            self.messages.push(m.resolution(text));
        }
        self
    }

    /// For a 415: the media type the route takes.
    pub fn expecting(self, media_type: &str) -> RedfishError {
        self.with_resolution(format!("Send the request body as {media_type}."))
    }

    // ---- 4xx ------------------------------------------------------------

    pub fn not_found(resource_type: &str, id: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::NOT_FOUND,
            Message::new(&base::RESOURCE_NOT_FOUND, &[resource_type, id]),
        )
    }

    pub fn no_such_uri(uri: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::NOT_FOUND,
            Message::new(&base::RESOURCE_MISSING_AT_URI, &[uri]),
        )
    }

    pub fn method_not_allowed(allow: String) -> RedfishError {
        let mut e = RedfishError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Message::new(&base::OPERATION_NOT_ALLOWED, &[]),
        );
        e.allow = Some(allow);
        e
    }

    pub fn unauthorized() -> RedfishError {
        let mut e = RedfishError::new(
            StatusCode::UNAUTHORIZED,
            Message::new(&base::NO_VALID_SESSION, &[]),
        );
        e.authenticate = true;
        e
    }

    /// Login refused: wrong credentials, disabled or locked account. The body
    /// never says which, so it cannot be used to probe for user names.
    pub fn login_failed() -> RedfishError {
        let mut e = RedfishError::new(
            StatusCode::UNAUTHORIZED,
            Message::new(&base::ACCESS_UNAUTHORIZED, &[]).resolution(
                "Check the user name and password. Repeated failures lock the account for \
                 AccountService AccountLockoutDuration seconds.",
            ),
        );
        e.authenticate = true;
        e
    }

    pub fn insufficient_privilege() -> RedfishError {
        RedfishError::new(
            StatusCode::FORBIDDEN,
            Message::new(&base::INSUFFICIENT_PRIVILEGE, &[]),
        )
    }

    pub fn password_change_required(account_uri: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::FORBIDDEN,
            Message::new(&base::PASSWORD_CHANGE_REQUIRED, &[account_uri]),
        )
    }

    pub fn bad_request(message: Message) -> RedfishError {
        RedfishError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn malformed_json() -> RedfishError {
        RedfishError::bad_request(Message::new(&base::MALFORMED_JSON, &[]))
    }

    pub fn property_unknown(name: &str) -> RedfishError {
        RedfishError::bad_request(Message::new(&base::PROPERTY_UNKNOWN, &[name]).related(format!("#/{name}")))
    }

    pub fn property_missing(name: &str) -> RedfishError {
        RedfishError::bad_request(Message::new(&base::PROPERTY_MISSING, &[name]).related(format!("#/{name}")))
    }

    pub fn property_not_writable(name: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::PROPERTY_NOT_WRITABLE, &[name]).related(format!("#/{name}")),
        )
    }

    pub fn property_value_type(value: &str, name: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::PROPERTY_VALUE_TYPE_ERROR, &[value, name]).related(format!("#/{name}")),
        )
    }

    pub fn property_value_not_in_list(value: &str, name: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::PROPERTY_VALUE_NOT_IN_LIST, &[value, name]).related(format!("#/{name}")),
        )
    }

    pub fn property_value_out_of_range(value: &str, name: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::PROPERTY_VALUE_OUT_OF_RANGE, &[value, name]).related(format!("#/{name}")),
        )
    }

    pub fn property_value_incorrect(name: &str, value: &str, why: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::PROPERTY_VALUE_INCORRECT, &[name, value])
                .related(format!("#/{name}"))
                .resolution(why),
        )
    }

    pub fn action_parameter_missing(action: &str, param: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_MISSING, &[action, param]).related(format!("#/{param}")),
        )
    }

    pub fn action_parameter_unknown(action: &str, param: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_UNKNOWN, &[action, param]).related(format!("#/{param}")),
        )
    }

    pub fn action_parameter_value_type(value: &str, param: &str, action: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_VALUE_TYPE_ERROR, &[value, param, action])
                .related(format!("#/{param}")),
        )
    }

    pub fn action_parameter_value_not_in_list(value: &str, param: &str, action: &str) -> RedfishError {
        RedfishError::bad_request(
            Message::new(&base::ACTION_PARAMETER_VALUE_NOT_IN_LIST, &[value, param, action])
                .related(format!("#/{param}")),
        )
    }

    pub fn already_exists(resource_type: &str, property: &str, value: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::CONFLICT,
            Message::new(&base::RESOURCE_ALREADY_EXISTS, &[resource_type, property, value]),
        )
    }

    pub fn cannot_delete(why: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::CONFLICT,
            Message::new(&base::RESOURCE_CANNOT_BE_DELETED, &[]).resolution(why),
        )
    }

    pub fn precondition_failed() -> RedfishError {
        RedfishError::new(
            StatusCode::PRECONDITION_FAILED,
            Message::new(&base::PRECONDITION_FAILED, &[]),
        )
    }

    pub fn payload_too_large() -> RedfishError {
        RedfishError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Message::new(&base::PAYLOAD_TOO_LARGE, &[]),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Message::new(&base::HEADER_INVALID, &[&format!("Content-Type: {content_type}")])
                .resolution("Send the request body as application/json."),
        )
    }

    pub fn query_not_supported_on_resource() -> RedfishError {
        RedfishError::new(
            StatusCode::BAD_REQUEST,
            Message::new(&base::QUERY_NOT_SUPPORTED_ON_RESOURCE, &[]),
        )
    }

    pub fn query_parameter_unsupported(name: &str) -> RedfishError {
        RedfishError::new(
            StatusCode::NOT_IMPLEMENTED,
            Message::new(&base::QUERY_PARAMETER_UNSUPPORTED, &[name]),
        )
    }

    pub fn query_parameter_value_format(value: &str, name: &str) -> RedfishError {
        RedfishError::bad_request(Message::new(
            &base::QUERY_PARAMETER_VALUE_FORMAT_ERROR,
            &[value, name],
        ))
    }

    pub fn session_limit() -> RedfishError {
        RedfishError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Message::new(&base::SESSION_LIMIT_EXCEEDED, &[]),
        )
    }

    // ---- 5xx ------------------------------------------------------------

    pub fn internal() -> RedfishError {
        RedfishError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Message::new(&base::INTERNAL_ERROR, &[]),
        )
    }

    pub fn unavailable(retry_after: u32) -> RedfishError {
        let mut e = RedfishError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Message::new(
                &base::SERVICE_TEMPORARILY_UNAVAILABLE,
                &[&retry_after.to_string()],
            ),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 429: a rate limit refused the request. The Base registry has no
    /// message of its own for it; `ServiceTemporarilyUnavailable` says the
    /// same with the seconds to wait, which `Retry-After` repeats.
    pub fn too_many_requests(retry_after: u32) -> RedfishError {
        let mut e = RedfishError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Message::new(
                &base::SERVICE_TEMPORARILY_UNAVAILABLE,
                &[&retry_after.to_string()],
            )
            .resolution("Too many requests from this client or user; retry after the time given."),
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn body(&self) -> Value {
        let (code, message) = match self.messages.first() {
            Some(first) => (first.id(), first.text()),
            None => (
                message_id(&base::GENERAL_ERROR),
                render(&base::GENERAL_ERROR, &[]),
            ),
        };
        json!({
            "error": {
                "code": code,
                "message": message,
                "@Message.ExtendedInfo": self.messages.iter().map(Message::to_json).collect::<Vec<_>>(),
            }
        })
    }
}

impl From<HypervisorError> for RedfishError {
    fn from(e: HypervisorError) -> Self {
        match e {
            HypervisorError::SystemNotFound(id) => RedfishError::not_found("ComputerSystem", &id),
            HypervisorError::InvalidTransition {
                reset_type,
                power_state,
                reason,
            } => {
                let state = match power_state {
                    PowerState::On => "On",
                    PowerState::Off => "Off",
                    PowerState::PoweringOn => "PoweringOn",
                    PowerState::PoweringOff => "PoweringOff",
                    PowerState::Paused => "Paused",
                };
                RedfishError::new(
                    StatusCode::CONFLICT,
                    Message::new(&base::RESOURCE_IN_USE, &[]).resolution(format!(
                        "ResetType {reset_type} cannot be applied while PowerState is {state}: {reason}."
                    )),
                )
            }
            HypervisorError::NotFound(kind, id) => RedfishError::not_found(kind, &id),
            HypervisorError::AlreadyExists(kind, id) => RedfishError::already_exists(kind, "Name", &id),
            HypervisorError::InUse(what) => RedfishError::new(
                StatusCode::CONFLICT,
                Message::new(&base::RESOURCE_IN_USE, &[]).resolution(format!("{what}.")),
            ),
            HypervisorError::Unsupported(what) => RedfishError::bad_request(
                Message::new(&base::ACTION_NOT_SUPPORTED, &[&what])
                    .resolution("The hypervisor behind this BMC cannot perform this operation."),
            ),
            // Why (libvirtd unreachable, which host is down) helps the
            // operator more than the retry alone.
            HypervisorError::Unavailable(why) => RedfishError::unavailable(5).with_resolution(format!(
                "The hypervisor is unavailable: {why}. Wait for the indicated retry duration and retry the operation."
            )),
            HypervisorError::Failed(what) => RedfishError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Message::new(&base::OPERATION_FAILED, &[])
                    .resolution(format!("The hypervisor reported: {what}")),
            ),
        }
    }
}

impl From<StoreError> for RedfishError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => RedfishError::unavailable(2),
            StoreError::Full => RedfishError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                Message::new(&base::INSUFFICIENT_STORAGE, &[]),
            ),
            StoreError::Conflict(_) | StoreError::NotFound | StoreError::Io(_) => RedfishError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResetType;

    #[test]
    fn body_has_redfish_error_shape() {
        let e = RedfishError::not_found("ComputerSystem", "nope");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let b = e.body();
        let info = &b["error"]["@Message.ExtendedInfo"][0];
        assert_eq!(b["error"]["code"], info["MessageId"]);
        assert!(info["MessageId"]
            .as_str()
            .is_some_and(|m| m.ends_with(".ResourceNotFound")));
        assert_eq!(info["MessageArgs"], json!(["ComputerSystem", "nope"]));
        assert!(info["Message"].as_str().is_some_and(|m| m.contains("'nope'")));
    }

    #[test]
    fn a_full_state_directory_is_insufficient_storage() {
        let e = RedfishError::from(StoreError::Full);
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(e.body()["error"]["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .is_some_and(|m| m.ends_with(".InsufficientStorage")));
        let full =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        assert_eq!(StoreError::from(full), StoreError::Full);
    }

    #[test]
    fn every_hypervisor_error_maps_to_a_specific_status() {
        let cases = [
            (HypervisorError::SystemNotFound("x".into()), StatusCode::NOT_FOUND),
            (
                HypervisorError::InvalidTransition {
                    reset_type: ResetType::Nmi,
                    power_state: PowerState::Off,
                    reason: "off",
                },
                StatusCode::CONFLICT,
            ),
            (
                HypervisorError::Unsupported("nmi".into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                HypervisorError::Unavailable("down".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                HypervisorError::Failed("boom".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            let r = RedfishError::from(e);
            assert_eq!(r.status, status);
            assert!(!r.body()["error"]["@Message.ExtendedInfo"][0]["Message"].is_null());
        }
        assert_eq!(RedfishError::unavailable(5).retry_after, Some(5));
    }
}
