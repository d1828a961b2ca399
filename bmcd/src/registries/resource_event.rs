//! DMTF ResourceEvent message registry, transcribed from DMTF ResourceEvent.1.5.0 (Release 2026.1).
//!
//! The `Description`, `Message`, `MessageSeverity` (identical to the
//! deprecated `Severity`), `ParamTypes` and `Resolution` texts below are
//! reproduced verbatim from the DMTF-published `ResourceEvent.1.5.0` message
//! registry (Copyright DMTF in cooperation with SNIA).  `LongDescription`,
//! `Example`, `ClearingLogic` and the per-argument descriptions are
//! intentionally omitted.  Every message of the registry is included,
//! the three deprecated `License*` messages too.

pub use super::base::MessageDef;

pub const PREFIX: &str = "ResourceEvent";
pub const VERSION: &str = "1.5.0";

/// `%1`: a `ConnectionMethodType` value; `%2`: where the source is (IP address, service entry point).
pub const AGGREGATION_SOURCE_DISCOVERED: MessageDef = MessageDef {
    key: "AggregationSourceDiscovered",
    description: "Indicates that a new aggregation source was discovered.",
    message: "An aggregation source of connection method '%1' located at '%2' was discovered.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "The aggregation source is available to the service and can be identified using the identified connection method.",
};

/// Deprecated by DMTF in favor of `LicenseAdded` in the License registry; kept for completeness.
pub const LICENSE_ADDED: MessageDef = MessageDef {
    key: "LicenseAdded",
    description: "Indicates that a license was added.",
    message: "A license for '%1' was added.  The following message was returned: '%2'.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "See vendor specific instructions for specific actions.",
};

/// Deprecated by DMTF in favor of `ResourceChanged`; kept for completeness.
pub const LICENSE_CHANGED: MessageDef = MessageDef {
    key: "LicenseChanged",
    description: "Indicates that a license has changed.",
    message: "A license for '%1' has changed.  The following message was returned: '%2'.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "See vendor specific instructions for specific actions.",
};

/// Deprecated by DMTF in favor of `LicenseExpired` in the License registry; kept for completeness.
pub const LICENSE_EXPIRED: MessageDef = MessageDef {
    key: "LicenseExpired",
    description: "Indicates that a license has expired.",
    message: "A license for '%1' has expired.  The following message was returned: '%2'.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "See vendor specific instructions for specific actions.",
};

/// `%1`: the property (RFC 6901 JSON pointer); `%2`: the value a client assigned.
pub const PROPERTY_VALUE_MODIFIED_BY_CLIENT: MessageDef = MessageDef {
    key: "PropertyValueModifiedByClient",
    description: "Indicates that the value of a property was modified by a client.",
    message: "The property '%1' was assigned the value '%2' due to modification by a client.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "No resolution is required.",
};

/// Added in 1.5.0; clears `ResourceUnavailable`.  The DMTF resolution has no final period.
pub const RESOURCE_AVAILABLE: MessageDef = MessageDef {
    key: "ResourceAvailable",
    description: "Indicates that a resource that was previously unavailable due to errors is now available.",
    message: "Resource '%1' is available.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None",
};

/// Generic property change, when no more specific message (state, health, power) applies.
pub const RESOURCE_CHANGED: MessageDef = MessageDef {
    key: "ResourceChanged",
    description: "Indicates that one or more resource properties have changed.  This is not used whenever there is another event message for that specific change, such as when only the state has changed.",
    message: "One or more resource properties have changed.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const RESOURCE_CREATED: MessageDef = MessageDef {
    key: "ResourceCreated",
    description: "Indicates that all conditions of a successful creation operation were met.",
    message: "The resource was created successfully.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

/// `%1`: the property; `%2`: the threshold value.  Clears `ResourceErrorThresholdExceeded`.
pub const RESOURCE_ERROR_THRESHOLD_CLEARED: MessageDef = MessageDef {
    key: "ResourceErrorThresholdCleared",
    description: "Indicates that a specified resource property has cleared its error threshold.  Examples of this are drive I/O errors or network link errors.",
    message: "The resource property '%1' has cleared the error threshold of value %2.",
    severity: "OK",
    param_types: &["string", "number"],
    resolution: "None.",
};

/// `%1`: the property; `%2`: the threshold value.
pub const RESOURCE_ERROR_THRESHOLD_EXCEEDED: MessageDef = MessageDef {
    key: "ResourceErrorThresholdExceeded",
    description: "Indicates that a specified resource property has exceeded its error threshold.  Examples of this are drive I/O errors or network link errors.",
    message: "The resource property '%1' has exceeded error threshold of value %2.",
    severity: "Critical",
    param_types: &["string", "number"],
    resolution: "None.",
};

/// `%1`: the property; `%2`: the type of error.  Clears `ResourceErrorsDetected`.
pub const RESOURCE_ERRORS_CORRECTED: MessageDef = MessageDef {
    key: "ResourceErrorsCorrected",
    description: "Indicates that a specified resource property has corrected errors.  Examples of this are drive I/O errors or network link errors.",
    message: "The resource property '%1' has corrected errors of type '%2'.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "None.",
};

/// `%1`: the property; `%2`: the type of error.
pub const RESOURCE_ERRORS_DETECTED: MessageDef = MessageDef {
    key: "ResourceErrorsDetected",
    description: "Indicates that a specified resource property has detected errors.  Examples of this are drive I/O errors or network link errors.",
    message: "The resource property '%1' has detected errors of type '%2'.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Resolution is dependent upon error type.",
};

/// `PowerState` changed to `Paused`.
pub const RESOURCE_PAUSED: MessageDef = MessageDef {
    key: "ResourcePaused",
    description: "Indicates that the power state of a resource has changed to paused.",
    message: "The resource '%1' was paused.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `PowerState` changed to `Off`.
pub const RESOURCE_POWERED_OFF: MessageDef = MessageDef {
    key: "ResourcePoweredOff",
    description: "Indicates that the power state of a resource has changed to powered off.",
    message: "The resource '%1' has powered off.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `PowerState` changed to `On`.
pub const RESOURCE_POWERED_ON: MessageDef = MessageDef {
    key: "ResourcePoweredOn",
    description: "Indicates that the power state of a resource has changed to powered on.",
    message: "The resource '%1' has powered on.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `PowerState` changed to `PoweringOff`; not for an immediate transition to `Off`.
pub const RESOURCE_POWERING_OFF: MessageDef = MessageDef {
    key: "ResourcePoweringOff",
    description: "Indicates that the power state of a resource has changed to powering off.",
    message: "The resource '%1' is powering off.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

/// `PowerState` changed to `PoweringOn`; not for an immediate transition to `On`.
pub const RESOURCE_POWERING_ON: MessageDef = MessageDef {
    key: "ResourcePoweringOn",
    description: "Indicates that the power state of a resource has changed to powering on.",
    message: "The resource '%1' is powering on.",
    severity: "OK",
    param_types: &["string"],
    resolution: "None.",
};

pub const RESOURCE_REMOVED: MessageDef = MessageDef {
    key: "ResourceRemoved",
    description: "Indicates that all conditions of a successful remove operation were met.",
    message: "The resource was removed successfully.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const RESOURCE_SELF_TEST_COMPLETED: MessageDef = MessageDef {
    key: "ResourceSelfTestCompleted",
    description: "Indicates that a self-test has completed.",
    message: "A self-test has completed.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

/// `%1`: the error message the self-test returned.
pub const RESOURCE_SELF_TEST_FAILED: MessageDef = MessageDef {
    key: "ResourceSelfTestFailed",
    description: "Indicates that a self-test has failed.  Suggested resolution may be provided as OEM data.",
    message: "A self-test has failed.  The following message was returned: '%1'.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "See vendor specific instructions for specific actions.",
};

/// `%2`: a `State` value of the `Resource` schema (`Enabled`, `Disabled`, ...).
pub const RESOURCE_STATE_CHANGED: MessageDef = MessageDef {
    key: "ResourceStateChanged",
    description: "Indicates that the state of a resource has changed.",
    message: "The state of resource '%1' has changed to %2.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "None.",
};

/// `%2`: a `Health` value of the `Resource` schema.
pub const RESOURCE_STATUS_CHANGED_CRITICAL: MessageDef = MessageDef {
    key: "ResourceStatusChangedCritical",
    description: "Indicates that the health of a resource has changed to Critical.",
    message: "The health of resource '%1' has changed to %2.",
    severity: "Critical",
    param_types: &["string", "string"],
    resolution: "None.",
};

/// `%2`: a `Health` value of the `Resource` schema.
pub const RESOURCE_STATUS_CHANGED_OK: MessageDef = MessageDef {
    key: "ResourceStatusChangedOK",
    description: "Indicates that the health of a resource has changed to OK.  This might also be referred to as the health being restored.",
    message: "The health of resource '%1' has changed to %2.",
    severity: "OK",
    param_types: &["string", "string"],
    resolution: "None.",
};

/// `%2`: a `Health` value of the `Resource` schema.
pub const RESOURCE_STATUS_CHANGED_WARNING: MessageDef = MessageDef {
    key: "ResourceStatusChangedWarning",
    description: "Indicates that the health of a resource has changed to Warning.  This might also be referred to as the health being degraded.",
    message: "The health of resource '%1' has changed to %2.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "None.",
};

/// Added in 1.5.0.  The DMTF resolution has no final period.
pub const RESOURCE_UNAVAILABLE: MessageDef = MessageDef {
    key: "ResourceUnavailable",
    description: "Indicates that a resource encountered errors and is now unavailable.",
    message: "Resource '%1' is unavailable due to errors.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Check additional diagnostic data if available",
};

/// `%1`: the software component or package (may include name and version).
pub const RESOURCE_VERSION_INCOMPATIBLE: MessageDef = MessageDef {
    key: "ResourceVersionIncompatible",
    description: "Indicates that an incompatible version of software was detected.  Examples of this are after a component or system-level software update.",
    message: "An incompatible version of software '%1' was detected.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Compare the version of the resource with the compatible version of the software.",
};

/// `%1`: the property; `%2`: the threshold value.  Clears `ResourceWarningThresholdExceeded`.
pub const RESOURCE_WARNING_THRESHOLD_CLEARED: MessageDef = MessageDef {
    key: "ResourceWarningThresholdCleared",
    description: "Indicates that a specified resource property has cleared its warning threshold.  Examples of this are drive I/O errors or network link errors.  Suggested resolution may be provided as OEM data.",
    message: "The resource property '%1' has cleared the warning threshold of value %2.",
    severity: "OK",
    param_types: &["string", "number"],
    resolution: "None.",
};

/// `%1`: the property; `%2`: the threshold value.
pub const RESOURCE_WARNING_THRESHOLD_EXCEEDED: MessageDef = MessageDef {
    key: "ResourceWarningThresholdExceeded",
    description: "Indicates that a specified resource property has exceeded its warning threshold.  Examples of this are drive I/O errors or network link errors.  Suggested resolution may be provided as OEM data.",
    message: "The resource property '%1' has exceeded its warning threshold of value %2.",
    severity: "Warning",
    param_types: &["string", "number"],
    resolution: "None.",
};

/// Validates an event delivery mechanism, such as LogEntry creation or event transmission.
pub const TEST_MESSAGE: MessageDef = MessageDef {
    key: "TestMessage",
    description: "A test message used to validate event delivery mechanisms.",
    message: "Test message.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const URI_FOR_RESOURCE_CHANGED: MessageDef = MessageDef {
    key: "URIForResourceChanged",
    description: "Indicates that the URI for a resource has changed.  Examples of this are physical component replacement or redistribution.",
    message: "The URI for the resource has changed.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

/// Every message of the registry, sorted by key.
pub const ALL: &[MessageDef] = &[
    AGGREGATION_SOURCE_DISCOVERED,
    LICENSE_ADDED,
    LICENSE_CHANGED,
    LICENSE_EXPIRED,
    PROPERTY_VALUE_MODIFIED_BY_CLIENT,
    RESOURCE_AVAILABLE,
    RESOURCE_CHANGED,
    RESOURCE_CREATED,
    RESOURCE_ERROR_THRESHOLD_CLEARED,
    RESOURCE_ERROR_THRESHOLD_EXCEEDED,
    RESOURCE_ERRORS_CORRECTED,
    RESOURCE_ERRORS_DETECTED,
    RESOURCE_PAUSED,
    RESOURCE_POWERED_OFF,
    RESOURCE_POWERED_ON,
    RESOURCE_POWERING_OFF,
    RESOURCE_POWERING_ON,
    RESOURCE_REMOVED,
    RESOURCE_SELF_TEST_COMPLETED,
    RESOURCE_SELF_TEST_FAILED,
    RESOURCE_STATE_CHANGED,
    RESOURCE_STATUS_CHANGED_CRITICAL,
    RESOURCE_STATUS_CHANGED_OK,
    RESOURCE_STATUS_CHANGED_WARNING,
    RESOURCE_UNAVAILABLE,
    RESOURCE_VERSION_INCOMPATIBLE,
    RESOURCE_WARNING_THRESHOLD_CLEARED,
    RESOURCE_WARNING_THRESHOLD_EXCEEDED,
    TEST_MESSAGE,
    URI_FOR_RESOURCE_CHANGED,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named const of this module, with its Rust name.
    const NAMED: &[(&str, MessageDef)] = named![
        AGGREGATION_SOURCE_DISCOVERED,
        LICENSE_ADDED,
        LICENSE_CHANGED,
        LICENSE_EXPIRED,
        PROPERTY_VALUE_MODIFIED_BY_CLIENT,
        RESOURCE_AVAILABLE,
        RESOURCE_CHANGED,
        RESOURCE_CREATED,
        RESOURCE_ERROR_THRESHOLD_CLEARED,
        RESOURCE_ERROR_THRESHOLD_EXCEEDED,
        RESOURCE_ERRORS_CORRECTED,
        RESOURCE_ERRORS_DETECTED,
        RESOURCE_PAUSED,
        RESOURCE_POWERED_OFF,
        RESOURCE_POWERED_ON,
        RESOURCE_POWERING_OFF,
        RESOURCE_POWERING_ON,
        RESOURCE_REMOVED,
        RESOURCE_SELF_TEST_COMPLETED,
        RESOURCE_SELF_TEST_FAILED,
        RESOURCE_STATE_CHANGED,
        RESOURCE_STATUS_CHANGED_CRITICAL,
        RESOURCE_STATUS_CHANGED_OK,
        RESOURCE_STATUS_CHANGED_WARNING,
        RESOURCE_UNAVAILABLE,
        RESOURCE_VERSION_INCOMPATIBLE,
        RESOURCE_WARNING_THRESHOLD_CLEARED,
        RESOURCE_WARNING_THRESHOLD_EXCEEDED,
        TEST_MESSAGE,
        URI_FOR_RESOURCE_CHANGED,
    ];

    #[test]
    fn registry_is_well_formed() {
        crate::registries::check_registry(ALL, NAMED);
    }

    #[test]
    fn health_messages_match_their_severity() {
        for (def, health) in [
            (RESOURCE_STATUS_CHANGED_OK, "OK"),
            (RESOURCE_STATUS_CHANGED_WARNING, "Warning"),
            (RESOURCE_STATUS_CHANGED_CRITICAL, "Critical"),
        ] {
            assert_eq!(def.severity, health, "{}", def.key);
            assert!(def.key.ends_with(health), "{}", def.key);
            assert_eq!(def.message, "The health of resource '%1' has changed to %2.");
        }
    }

    #[test]
    fn registry_identity() {
        assert_eq!(PREFIX, "ResourceEvent");
        assert_eq!(VERSION.split('.').count(), 3);
        assert_eq!(ALL.len(), 30);
        assert_eq!(RESOURCE_POWERED_ON.key, "ResourcePoweredOn");
        assert_eq!(RESOURCE_POWERED_ON.message, "The resource '%1' has powered on.");
        assert_eq!(RESOURCE_CREATED.message, "The resource was created successfully.");
    }
}
