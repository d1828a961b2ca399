//! Redfin's own message registry for the BMC's audit log: one message, the
//! record of a state-changing request (who, from where, what, the answer).
//! Served under `/redfish/v1/Registries/RedfinAudit` like the DMTF ones.

pub use super::base::MessageDef;

pub const PREFIX: &str = "RedfinAudit";
pub const VERSION: &str = "1.0.0";

/// `%1` the account, `%2` the client address, `%3` the method, `%4` the path,
/// `%5` the HTTP status of the answer.
pub const REQUEST_AUDITED: MessageDef = MessageDef {
    key: "RequestAudited",
    description: "A state-changing request, or a login attempt, and how the BMC answered it.",
    message: "%1 from %2: %3 %4 answered %5",
    severity: "OK",
    param_types: &["string", "string", "string", "string", "number"],
    resolution: "None.",
};

pub const ALL: &[MessageDef] = &[REQUEST_AUDITED];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        super::super::check_registry(ALL, named![REQUEST_AUDITED]);
    }
}
