//! DMTF Base message registry (subset bmcd emits), transcribed from DMTF Base.1.20.0.
//!
//! The `Description`, `Message`, `MessageSeverity` (identical to the
//! deprecated `Severity`), `ParamTypes` and `Resolution` texts below are
//! reproduced verbatim from the DMTF-published `Base.1.20.0` message
//! registry (Copyright DMTF).  `LongDescription` and the per-argument
//! descriptions are intentionally omitted.

/// One message of a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageDef {
    /// MessageId key without prefix/version, e.g. "ResourceNotFound".
    pub key: &'static str,
    pub description: &'static str,
    /// Message text with %1, %2 ... placeholders.
    pub message: &'static str,
    /// "OK", "Warning" or "Critical".
    pub severity: &'static str,
    /// ParamTypes: "string" or "number", one per argument.
    pub param_types: &'static [&'static str],
    pub resolution: &'static str,
}

pub const PREFIX: &str = "Base";
pub const VERSION: &str = "1.20.0";

pub const ACCESS_DENIED: MessageDef = MessageDef {
    key: "AccessDenied",
    description: "Indicates that while attempting to access, connect to, or transfer to or from another resource, the service denied access.",
    message: "While attempting to establish a connection to '%1', the service denied access.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Attempt to ensure that the URI is correct and that the service has the appropriate credentials.",
};

/// HTTP 403: valid credentials but not enough privileges.
pub const ACCESS_FORBIDDEN: MessageDef = MessageDef {
    key: "AccessForbidden",
    description: "Indicates that the request contained valid credentials, but the user does not have the necessary privileges to perform the requested operation.",
    message: "Forbidden.",
    severity: "Critical",
    param_types: &[],
    resolution: "Resubmit the request with credentials that contain the necessary privileges to perform the requested operation.",
};

/// HTTP 401: missing or invalid credentials (authentication failure).
pub const ACCESS_UNAUTHORIZED: MessageDef = MessageDef {
    key: "AccessUnauthorized",
    description: "Indicates that the request did not contain valid credentials.",
    message: "Unauthorized.",
    severity: "Critical",
    param_types: &[],
    resolution: "Resubmit the request with valid credentials.",
};

pub const ACCOUNT_MODIFIED: MessageDef = MessageDef {
    key: "AccountModified",
    description: "Indicates that the account was successfully modified.",
    message: "The account was successfully modified.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const ACCOUNT_NOT_MODIFIED: MessageDef = MessageDef {
    key: "AccountNotModified",
    description: "Indicates that the modification requested for the account was not successful.",
    message: "The account modification request failed.",
    severity: "Warning",
    param_types: &[],
    resolution: "The modification may have failed due to permission issues or issues with the request body.",
};

pub const ACCOUNT_REMOVED: MessageDef = MessageDef {
    key: "AccountRemoved",
    description: "Indicates that the account was successfully removed.",
    message: "The account was successfully removed.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const ACTION_NOT_SUPPORTED: MessageDef = MessageDef {
    key: "ActionNotSupported",
    description:
        "Indicates that the action supplied with the `POST` operation is not supported by the resource.",
    message: "The action %1 is not supported by the resource.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Check the Actions property in the resource for the supported actions.",
};

pub const ACTION_PARAMETER_DUPLICATE: MessageDef = MessageDef {
    key: "ActionParameterDuplicate",
    description: "Indicates that the action was supplied with a duplicated action parameter in the request body.",
    message: "The action %1 was submitted with more than one value for the parameter %2.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Resubmit the action with only one instance of the action parameter in the request body if the operation failed.",
};

pub const ACTION_PARAMETER_MISSING: MessageDef = MessageDef {
    key: "ActionParameterMissing",
    description: "Indicates that the action requested was missing an action parameter that is required to process the action.",
    message: "The action %1 requires the parameter %2 to be present in the request body.",
    severity: "Critical",
    param_types: &["string", "string"],
    resolution: "Supply the action with the required parameter in the request body when the request is resubmitted.",
};

pub const ACTION_PARAMETER_NOT_SUPPORTED: MessageDef = MessageDef {
    key: "ActionParameterNotSupported",
    description: "Indicates that the parameter supplied for the action is not supported on the resource.",
    message: "The parameter %1 for the action %2 is not supported on the target resource.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Remove the parameter supplied and resubmit the request if the operation failed.",
};

pub const ACTION_PARAMETER_UNKNOWN: MessageDef = MessageDef {
    key: "ActionParameterUnknown",
    description: "Indicates that an action was submitted but an action parameter supplied did not match any of the known parameters.",
    message: "The action %1 was submitted with the invalid parameter %2.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the invalid action parameter and resubmit the request if the operation failed.",
};

pub const ACTION_PARAMETER_VALUE_ERROR: MessageDef = MessageDef {
    key: "ActionParameterValueError",
    description: "Indicates that a parameter was given an invalid value.",
    message: "The value for the parameter %1 in the action %2 is invalid.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
};

pub const ACTION_PARAMETER_VALUE_FORMAT_ERROR: MessageDef = MessageDef {
    key: "ActionParameterValueFormatError",
    description: "Indicates that a parameter was given the correct value type but the format of the value is not supported.",
    message: "The value '%1' for the parameter %2 in the action %3 is not a format that the parameter can accept.",
    severity: "Warning",
    param_types: &["string", "string", "string"],
    resolution: "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
};

pub const ACTION_PARAMETER_VALUE_NOT_IN_LIST: MessageDef = MessageDef {
    key: "ActionParameterValueNotInList",
    description: "Indicates that a parameter was given the correct value type but the value of that parameter was not supported.  The value is not in an enumeration.",
    message: "The value '%1' for the parameter %2 in the action %3 is not in the list of acceptable values.",
    severity: "Warning",
    param_types: &["string", "string", "string"],
    resolution: "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
};

pub const ACTION_PARAMETER_VALUE_TYPE_ERROR: MessageDef = MessageDef {
    key: "ActionParameterValueTypeError",
    description: "Indicates that a parameter was given the wrong value type, such as when a number is supplied for a parameter that requires a string.",
    message: "The value '%1' for the parameter %2 in the action %3 is not a type that the parameter can accept.",
    severity: "Warning",
    param_types: &["string", "string", "string"],
    resolution: "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
};

pub const CHASSIS_POWER_STATE_OFF_REQUIRED: MessageDef = MessageDef {
    key: "ChassisPowerStateOffRequired",
    description: "Indicates that the request requires a specified chassis to be powered off.",
    message: "The chassis with Id '%1' is required to be powered off to perform this request.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Power off the specified chassis and resubmit the request.",
};

pub const CHASSIS_POWER_STATE_ON_REQUIRED: MessageDef = MessageDef {
    key: "ChassisPowerStateOnRequired",
    description: "Indicates that the request requires a specified chassis to be powered on.",
    message: "The chassis with Id '%1' is required to be powered on to perform this request.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Power on the specified chassis and resubmit the request.",
};

pub const COULD_NOT_ESTABLISH_CONNECTION: MessageDef = MessageDef {
    key: "CouldNotEstablishConnection",
    description: "Indicates that the attempt to access the resource, file, or image at the URI was unsuccessful because a session could not be established.",
    message: "The service failed to establish a connection with the URI '%1'.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Ensure that the URI contains a valid and reachable node name, protocol information, and other URI components.",
};

/// Deprecated by DMTF in favor of `PropertyMissing`; kept for completeness.
pub const CREATE_FAILED_MISSING_REQ_PROPERTIES: MessageDef = MessageDef {
    key: "CreateFailedMissingReqProperties",
    description: "Indicates that a create operation was attempted on a resource but that properties that are required for the create operation were missing from the request.",
    message: "The create operation failed because the required property %1 was missing from the request.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Correct the body to include the required property with a valid value and resubmit the request if the operation failed.",
};

pub const CREATED: MessageDef = MessageDef {
    key: "Created",
    description: "Indicates that all conditions of a successful create operation were met.",
    message: "The resource was created successfully.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const EVENT_SUBSCRIPTION_LIMIT_EXCEEDED: MessageDef = MessageDef {
    key: "EventSubscriptionLimitExceeded",
    description: "Indicates that an event subscription establishment was requested but the operation failed due to the number of simultaneous connections exceeding the limit of the implementation.",
    message: "The event subscription failed due to the number of simultaneous subscriptions exceeding the limit of the implementation.",
    severity: "Critical",
    param_types: &[],
    resolution: "Reduce the number of other subscriptions before trying to establish the event subscription or increase the limit of simultaneous subscriptions, if supported.",
};

pub const GENERAL_ERROR: MessageDef = MessageDef {
    key: "GeneralError",
    description: "Indicates that a general error has occurred.  Use in `@Message.ExtendedInfo` is discouraged.  When used in `@Message.ExtendedInfo`, implementations are expected to include a `Resolution` property with this message and provide a service-defined resolution to indicate how to resolve the error.",
    message: "A general error has occurred.  See Resolution for information on how to resolve the error, or @Message.ExtendedInfo if Resolution is not provided.",
    severity: "Critical",
    param_types: &[],
    resolution: "None.",
};

/// A known request header is invalid (e.g. an unsupported `Content-Type`).
pub const HEADER_INVALID: MessageDef = MessageDef {
    key: "HeaderInvalid",
    description: "Indicates that a request header is invalid.",
    message: "Header '%1' is invalid.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Resubmit the request with a valid request header.",
};

pub const HEADER_MISSING: MessageDef = MessageDef {
    key: "HeaderMissing",
    description: "Indicates that a required request header is missing.",
    message: "Required header '%1' is missing in the request.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Resubmit the request with the required request header.",
};

pub const INSUFFICIENT_PRIVILEGE: MessageDef = MessageDef {
    key: "InsufficientPrivilege",
    description: "Indicates that the credentials associated with the established session do not have sufficient privileges for the requested operation.",
    message: "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.",
    severity: "Critical",
    param_types: &[],
    resolution: "Either abandon the operation or change the associated access rights and resubmit the request if the operation failed.",
};

pub const INSUFFICIENT_STORAGE: MessageDef = MessageDef {
    key: "InsufficientStorage",
    description: "Indicates that the operation could not be completed due to a lack of storage or memory available to the service.",
    message: "Insufficient storage or memory available to complete the request.",
    severity: "Critical",
    param_types: &[],
    resolution: "Increase the free storage space available to the service and resubmit the request.",
};

pub const INTERNAL_ERROR: MessageDef = MessageDef {
    key: "InternalError",
    description: "Indicates that the request failed for an unknown internal error but that the service is still operational.",
    message: "The request failed due to an internal service error.  The service is still operational.",
    severity: "Critical",
    param_types: &[],
    resolution: "Resubmit the request.  If the problem persists, consider resetting the service.",
};

pub const INVALID_OBJECT: MessageDef = MessageDef {
    key: "InvalidObject",
    description: "Indicates that the object in question is invalid according to the implementation.  An example is a firmware update malformed URI.",
    message: "The object at '%1' is invalid.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Either the object is malformed or the URI is not correct.  Correct the condition and resubmit the request if it failed.",
};

pub const INVALID_URI: MessageDef = MessageDef {
    key: "InvalidURI",
    description:
        "Indicates that the operation encountered a URI that does not correspond to a valid resource.",
    message: "The URI %1 was not found.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Provide a valid URI and resubmit the request.",
};

pub const MALFORMED_JSON: MessageDef = MessageDef {
    key: "MalformedJSON",
    description: "Indicates that the request body was malformed JSON.",
    message:
        "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
    severity: "Critical",
    param_types: &[],
    resolution: "Ensure that the request body is valid JSON and resubmit the request.",
};

pub const NO_OPERATION: MessageDef = MessageDef {
    key: "NoOperation",
    description: "Indicates that the requested operation will not perform any changes on the service.",
    message:
        "The request body submitted contain no data to act upon and no changes to the resource took place.",
    severity: "Warning",
    param_types: &[],
    resolution: "Add properties in the JSON object and resubmit the request.",
};

pub const NO_VALID_SESSION: MessageDef = MessageDef {
    key: "NoValidSession",
    description: "Indicates that the operation failed because a valid session is required in order to access any resources.",
    message: "There is no valid session established with the implementation.",
    severity: "Critical",
    param_types: &[],
    resolution: "Establish a session before attempting any operations.",
};

pub const OPERATION_FAILED: MessageDef = MessageDef {
    key: "OperationFailed",
    description: "Indicates that one of the internal operations necessary to complete the request failed.  An example of this is when an internal service provider is unable to complete the request, such as in aggregation or RDE.",
    message: "An error occurred internal to the service as part of the overall request.  Partial results may have been returned.",
    severity: "Warning",
    param_types: &[],
    resolution: "Resubmit the request.  If the problem persists, consider resetting the service or provider.",
};

pub const OPERATION_NOT_ALLOWED: MessageDef = MessageDef {
    key: "OperationNotAllowed",
    description: "Indicates that the HTTP method in the request is not allowed on this resource.",
    message: "The HTTP method is not allowed on this resource.",
    severity: "Critical",
    param_types: &[],
    resolution: "None.",
};

pub const OPERATION_TIMEOUT: MessageDef = MessageDef {
    key: "OperationTimeout",
    description: "Indicates that one of the internal operations necessary to complete the request timed out.  An example of this is when an internal service provider is unable to complete the request, such as in aggregation or RDE.",
    message: "A timeout internal to the service occurred as part of the request.  Partial results may have been returned.",
    severity: "Warning",
    param_types: &[],
    resolution: "Resubmit the request.  If the problem persists, consider resetting the service or provider.",
};

pub const PASSWORD_CHANGE_REQUIRED: MessageDef = MessageDef {
    key: "PasswordChangeRequired",
    description: "Indicates that the password for the account provided must be changed before accessing the service.  The password can be changed with a `PATCH` to the `Password` property in the manager account resource instance.  Implementations that provide a default password for an account may require a password change prior to first access to the service.",
    message: "The password provided for this account must be changed before access is granted.  PATCH the Password property for this account located at the target URI '%1' to complete this process.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Change the password for this account using a PATCH to the Password property at the URI provided.",
};

/// HTTP 413: the request payload exceeds the size the service supports.
pub const PAYLOAD_TOO_LARGE: MessageDef = MessageDef {
    key: "PayloadTooLarge",
    description: "Indicates that the supplied payload is too large to be accepted by the service.",
    message: "The supplied payload exceeds the maximum size supported by the service.",
    severity: "Critical",
    param_types: &[],
    resolution: "Check that the supplied payload is correct and supported by this service.",
};

pub const PRECONDITION_FAILED: MessageDef = MessageDef {
    key: "PreconditionFailed",
    description: "Indicates that the ETag supplied did not match the current ETag of the resource.",
    message: "The ETag supplied did not match the ETag required to change this resource.",
    severity: "Critical",
    param_types: &[],
    resolution: "Try the operation again using the appropriate ETag.",
};

pub const PRECONDITION_REQUIRED: MessageDef = MessageDef {
    key: "PreconditionRequired",
    description: "Indicates that the request did not provide the required precondition such as an `If-Match` or `If-None-Match` header or `@odata.etag` annotations.",
    message: "A precondition header or annotation is required to change this resource.",
    severity: "Critical",
    param_types: &[],
    resolution: "Try the operation again using an If-Match or If-None-Match header and appropriate ETag.",
};

pub const PROPERTY_DUPLICATE: MessageDef = MessageDef {
    key: "PropertyDuplicate",
    description: "Indicates that a duplicate property was included in the request body.",
    message: "The property %1 was duplicated in the request.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Remove the duplicate property from the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_MISSING: MessageDef = MessageDef {
    key: "PropertyMissing",
    description: "Indicates that a required property was not supplied as part of the request.",
    message: "The property %1 is a required property and must be included in the request.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.",
};

pub const PROPERTY_NOT_WRITABLE: MessageDef = MessageDef {
    key: "PropertyNotWritable",
    description: "Indicates that a property was given a value in the request body, but the property is a read-only property.",
    message: "The property %1 is a read-only property and cannot be assigned a value.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Remove the property from the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_UNKNOWN: MessageDef = MessageDef {
    key: "PropertyUnknown",
    description: "Indicates that an unknown property was included in the request body.",
    message: "The property %1 is not in the list of valid properties for the resource.",
    severity: "Warning",
    param_types: &["string"],
    resolution:
        "Remove the unknown property from the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_VALUE_CONFLICT: MessageDef = MessageDef {
    key: "PropertyValueConflict",
    description: "Indicates that the requested write of a property value could not be completed because of a conflict with another property value.",
    message: "The property '%1' could not be written because its value would conflict with the value of the '%2' property.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "None.",
};

pub const PROPERTY_VALUE_ERROR: MessageDef = MessageDef {
    key: "PropertyValueError",
    description: "Indicates that a property was given an invalid value.",
    message: "The value provided for the property %1 is not valid.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Correct the value for the property in the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_VALUE_FORMAT_ERROR: MessageDef = MessageDef {
    key: "PropertyValueFormatError",
    description: "Indicates that a property was given the correct value type but the format of the value is not supported.",
    message: "The value '%1' for the property %2 is not a format that the property can accept.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the property in the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_VALUE_INCORRECT: MessageDef = MessageDef {
    key: "PropertyValueIncorrect",
    description: "Indicates that the requested write of a property value could not be completed because of an incorrect value of the property.  Examples include values that do not match a regular expression requirement or passwords that do not match the implementation constraints.",
    message: "The property '%1' with the requested value of '%2' could not be written because the value does not meet the constraints of the implementation.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "None.",
};

pub const PROPERTY_VALUE_MODIFIED: MessageDef = MessageDef {
    key: "PropertyValueModified",
    description: "Indicates that a property was given the correct value type but the value of that property was modified.  Examples are truncated or rounded values.",
    message: "The property %1 was assigned the value '%2' due to modification by the service.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "None.",
};

pub const PROPERTY_VALUE_NOT_IN_LIST: MessageDef = MessageDef {
    key: "PropertyValueNotInList",
    description: "Indicates that a property was given the correct value type but the value of that property was not supported.  The value is not in an enumeration.",
    message: "The value '%1' for the property %2 is not in the list of acceptable values.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
};

pub const PROPERTY_VALUE_OUT_OF_RANGE: MessageDef = MessageDef {
    key: "PropertyValueOutOfRange",
    description: "Indicates that a property was given the correct value type but the value of that property is outside the supported range.",
    message: "The value '%1' for the property %2 is not in the supported range of acceptable values.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the property in the request body and resubmit the request if the operation failed.",
};

pub const PROPERTY_VALUE_TYPE_ERROR: MessageDef = MessageDef {
    key: "PropertyValueTypeError",
    description: "Indicates that a property was given the wrong value type, such as when a number is supplied for a property that requires a string.",
    message: "The value '%1' for the property %2 is not a type that the property can accept.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the property in the request body and resubmit the request if the operation failed.",
};

pub const QUERY_NOT_SUPPORTED: MessageDef = MessageDef {
    key: "QueryNotSupported",
    description: "Indicates that query is not supported on the implementation.",
    message: "Querying is not supported by the implementation.",
    severity: "Warning",
    param_types: &[],
    resolution: "Remove the query parameters and resubmit the request if the operation failed.",
};

pub const QUERY_NOT_SUPPORTED_ON_RESOURCE: MessageDef = MessageDef {
    key: "QueryNotSupportedOnResource",
    description: "Indicates that query is not supported on the given resource, such as when the `$skip` query is attempted on a resource that is not a collection.",
    message: "Querying is not supported on the requested resource.",
    severity: "Warning",
    param_types: &[],
    resolution: "Remove the query parameters and resubmit the request if the operation failed.",
};

pub const QUERY_PARAMETER_OUT_OF_RANGE: MessageDef = MessageDef {
    key: "QueryParameterOutOfRange",
    description: "Indicates that a query parameter was provided that is out of range for the given resource.  This can happen with values that are too low or that exceed what is possible for the supplied resource, such as when a page is requested that is beyond the last page.",
    message: "The value '%1' for the query parameter %2 is out of range %3.",
    severity: "Warning",
    param_types: &["string", "string", "string"],
    resolution: "Reduce the value for the query parameter to a value that is within range, such as a start or count value that is within bounds of the number of resources in a collection or a page number that is within the range of valid pages.",
};

pub const QUERY_PARAMETER_UNSUPPORTED: MessageDef = MessageDef {
    key: "QueryParameterUnsupported",
    description: "Indicates that a query parameter is not supported.",
    message: "Query parameter '%1' is not supported.",
    severity: "Warning",
    param_types: &["string"],
    resolution: "Correct or remove the query parameter and resubmit the request.",
};

pub const QUERY_PARAMETER_VALUE_FORMAT_ERROR: MessageDef = MessageDef {
    key: "QueryParameterValueFormatError",
    description: "Indicates that a query parameter was given the correct value type but the format of the value is not supported.",
    message: "The value '%1' for the parameter %2 is not a format that the parameter can accept.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the query parameter in the request and resubmit the request if the operation failed.",
};

pub const QUERY_PARAMETER_VALUE_TYPE_ERROR: MessageDef = MessageDef {
    key: "QueryParameterValueTypeError",
    description: "Indicates that a query parameter was given the wrong value type, such as when a number is supplied for a query parameter that requires a string.",
    message: "The value '%1' for the query parameter %2 is not a type that the parameter can accept.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Correct the value for the query parameter in the request and resubmit the request if the operation failed.",
};

pub const RESET_REQUIRED: MessageDef = MessageDef {
    key: "ResetRequired",
    description: "Indicates that a component reset is required for changes, error recovery, or operations to complete.",
    message: "In order to apply changes, recover from errors, or complete the operation, a component reset is required with the Reset action URI '%1' and ResetType '%2'.",
    severity: "Warning",
    param_types: &["string", "string"],
    resolution: "Perform the required reset action on the specified component.",
};

pub const RESOURCE_ALREADY_EXISTS: MessageDef = MessageDef {
    key: "ResourceAlreadyExists",
    description: "Indicates that a resource change or creation was attempted but that the operation cannot proceed because the resource already exists.",
    message: "The requested resource of type %1 with the property %2 with the value '%3' already exists.",
    severity: "Critical",
    param_types: &["string", "string", "string"],
    resolution: "Do not repeat the create operation as the resource was already created.",
};

pub const RESOURCE_CANNOT_BE_DELETED: MessageDef = MessageDef {
    key: "ResourceCannotBeDeleted",
    description: "Indicates that a delete operation was attempted on a resource that cannot be deleted.",
    message: "The delete request failed because the resource requested cannot be deleted.",
    severity: "Critical",
    param_types: &[],
    resolution: "Do not attempt to delete a non-deletable resource.",
};

/// The Base registry's name for resource exhaustion (there is no
/// `ResourceExhaustionOccured` message in Base).
pub const RESOURCE_EXHAUSTION: MessageDef = MessageDef {
    key: "ResourceExhaustion",
    description: "Indicates that a resource could not satisfy the request due to some unavailability of resources.  An example is that available capacity was allocated.",
    message: "The resource '%1' was unable to satisfy the request due to unavailability of resources.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Ensure that the resources are available and resubmit the request.",
};

pub const RESOURCE_IN_USE: MessageDef = MessageDef {
    key: "ResourceInUse",
    description: "Indicates that a change was requested to a resource but the change was rejected due to the resource being in use or transition.",
    message: "The change to the requested resource failed because the resource is in use or in transition.",
    severity: "Warning",
    param_types: &[],
    resolution: "Remove the condition and resubmit the request if the operation failed.",
};

pub const RESOURCE_MISSING_AT_URI: MessageDef = MessageDef {
    key: "ResourceMissingAtURI",
    description: "Indicates that the operation expected an image or other resource at the provided URI but none was found.  Examples of this are in requests that require URIs such as firmware updates.",
    message: "The resource at the URI '%1' was not found.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Place a valid resource at the URI or correct the URI and resubmit the request.",
};

pub const RESOURCE_NOT_FOUND: MessageDef = MessageDef {
    key: "ResourceNotFound",
    description: "Indicates that the operation expected a resource identifier that corresponds to an existing resource but one was not found.",
    message: "The requested resource of type %1 named '%2' was not found.",
    severity: "Critical",
    param_types: &["string", "string"],
    resolution: "Provide a valid resource identifier and resubmit the request.",
};

pub const SERVICE_IN_UNKNOWN_STATE: MessageDef = MessageDef {
    key: "ServiceInUnknownState",
    description: "Indicates that the operation failed because the service is in an unknown state and cannot accept additional requests.",
    message: "The operation failed because the service is in an unknown state and can no longer take incoming requests.",
    severity: "Critical",
    param_types: &[],
    resolution: "Restart the service and resubmit the request if the operation failed.",
};

pub const SERVICE_SHUTTING_DOWN: MessageDef = MessageDef {
    key: "ServiceShuttingDown",
    description: "Indicates that the operation failed because the service is shutting down, such as when the service reboots.",
    message: "The operation failed because the service is shutting down and can no longer take incoming requests.",
    severity: "Critical",
    param_types: &[],
    resolution: "When the service becomes available, resubmit the request if the operation failed.",
};

/// The argument is the retry delay in seconds, passed as a string.
pub const SERVICE_TEMPORARILY_UNAVAILABLE: MessageDef = MessageDef {
    key: "ServiceTemporarilyUnavailable",
    description: "Indicates the service is temporarily unavailable.",
    message: "The service is temporarily unavailable.  Retry in %1 seconds.",
    severity: "Critical",
    param_types: &["string"],
    resolution: "Wait for the indicated retry duration and retry the operation.",
};

pub const SESSION_LIMIT_EXCEEDED: MessageDef = MessageDef {
    key: "SessionLimitExceeded",
    description: "Indicates that a session establishment was requested but the operation failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
    message: "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
    severity: "Critical",
    param_types: &[],
    resolution: "Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions, if supported.",
};

pub const SESSION_TERMINATED: MessageDef = MessageDef {
    key: "SessionTerminated",
    description: "Indicates that the `DELETE` operation on the session resource resulted in the successful termination of the session.",
    message: "The session was successfully terminated.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const SOURCE_DOES_NOT_SUPPORT_PROTOCOL: MessageDef = MessageDef {
    key: "SourceDoesNotSupportProtocol",
    description: "Indicates that while attempting to access, connect to, or transfer a resource, file, or image from another location that the other end of the connection did not support the protocol.",
    message: "The other end of the connection at '%1' does not support the specified protocol %2.",
    severity: "Critical",
    param_types: &["string", "string"],
    resolution: "Change protocols or URIs.",
};

pub const STRING_VALUE_TOO_LONG: MessageDef = MessageDef {
    key: "StringValueTooLong",
    description: "Indicates that a string value passed to the given resource was longer than the maximum allowed length.  An example is when an implementation has imposed a shorter maximum length than that allowed by the specification.",
    message: "The string '%1' exceeds the length limit %2.",
    severity: "Warning",
    param_types: &["string", "number"],
    resolution: "Resubmit the request with an appropriate string length.",
};

pub const SUCCESS: MessageDef = MessageDef {
    key: "Success",
    description: "Indicates that all conditions of a successful operation were met.",
    message: "The request completed successfully.",
    severity: "OK",
    param_types: &[],
    resolution: "None.",
};

pub const UNRECOGNIZED_REQUEST_BODY: MessageDef = MessageDef {
    key: "UnrecognizedRequestBody",
    description: "Indicates that the service encountered an unrecognizable request body that could not even be interpreted as malformed JSON.",
    message: "The service detected a malformed request body that it was unable to interpret.",
    severity: "Warning",
    param_types: &[],
    resolution: "Correct the request body and resubmit the request if it failed.",
};

/// Every message above, sorted by key.
pub const ALL: &[MessageDef] = &[
    ACCESS_DENIED,
    ACCESS_FORBIDDEN,
    ACCESS_UNAUTHORIZED,
    ACCOUNT_MODIFIED,
    ACCOUNT_NOT_MODIFIED,
    ACCOUNT_REMOVED,
    ACTION_NOT_SUPPORTED,
    ACTION_PARAMETER_DUPLICATE,
    ACTION_PARAMETER_MISSING,
    ACTION_PARAMETER_NOT_SUPPORTED,
    ACTION_PARAMETER_UNKNOWN,
    ACTION_PARAMETER_VALUE_ERROR,
    ACTION_PARAMETER_VALUE_FORMAT_ERROR,
    ACTION_PARAMETER_VALUE_NOT_IN_LIST,
    ACTION_PARAMETER_VALUE_TYPE_ERROR,
    CHASSIS_POWER_STATE_OFF_REQUIRED,
    CHASSIS_POWER_STATE_ON_REQUIRED,
    COULD_NOT_ESTABLISH_CONNECTION,
    CREATE_FAILED_MISSING_REQ_PROPERTIES,
    CREATED,
    EVENT_SUBSCRIPTION_LIMIT_EXCEEDED,
    GENERAL_ERROR,
    HEADER_INVALID,
    HEADER_MISSING,
    INSUFFICIENT_PRIVILEGE,
    INSUFFICIENT_STORAGE,
    INTERNAL_ERROR,
    INVALID_OBJECT,
    INVALID_URI,
    MALFORMED_JSON,
    NO_OPERATION,
    NO_VALID_SESSION,
    OPERATION_FAILED,
    OPERATION_NOT_ALLOWED,
    OPERATION_TIMEOUT,
    PASSWORD_CHANGE_REQUIRED,
    PAYLOAD_TOO_LARGE,
    PRECONDITION_FAILED,
    PRECONDITION_REQUIRED,
    PROPERTY_DUPLICATE,
    PROPERTY_MISSING,
    PROPERTY_NOT_WRITABLE,
    PROPERTY_UNKNOWN,
    PROPERTY_VALUE_CONFLICT,
    PROPERTY_VALUE_ERROR,
    PROPERTY_VALUE_FORMAT_ERROR,
    PROPERTY_VALUE_INCORRECT,
    PROPERTY_VALUE_MODIFIED,
    PROPERTY_VALUE_NOT_IN_LIST,
    PROPERTY_VALUE_OUT_OF_RANGE,
    PROPERTY_VALUE_TYPE_ERROR,
    QUERY_NOT_SUPPORTED,
    QUERY_NOT_SUPPORTED_ON_RESOURCE,
    QUERY_PARAMETER_OUT_OF_RANGE,
    QUERY_PARAMETER_UNSUPPORTED,
    QUERY_PARAMETER_VALUE_FORMAT_ERROR,
    QUERY_PARAMETER_VALUE_TYPE_ERROR,
    RESET_REQUIRED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_CANNOT_BE_DELETED,
    RESOURCE_EXHAUSTION,
    RESOURCE_IN_USE,
    RESOURCE_MISSING_AT_URI,
    RESOURCE_NOT_FOUND,
    SERVICE_IN_UNKNOWN_STATE,
    SERVICE_SHUTTING_DOWN,
    SERVICE_TEMPORARILY_UNAVAILABLE,
    SESSION_LIMIT_EXCEEDED,
    SESSION_TERMINATED,
    SOURCE_DOES_NOT_SUPPORT_PROTOCOL,
    STRING_VALUE_TOO_LONG,
    SUCCESS,
    UNRECOGNIZED_REQUEST_BODY,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every named const of this module, with its Rust name.
    const NAMED: &[(&str, MessageDef)] = named![
        ACCESS_DENIED,
        ACCESS_FORBIDDEN,
        ACCESS_UNAUTHORIZED,
        ACCOUNT_MODIFIED,
        ACCOUNT_NOT_MODIFIED,
        ACCOUNT_REMOVED,
        ACTION_NOT_SUPPORTED,
        ACTION_PARAMETER_DUPLICATE,
        ACTION_PARAMETER_MISSING,
        ACTION_PARAMETER_NOT_SUPPORTED,
        ACTION_PARAMETER_UNKNOWN,
        ACTION_PARAMETER_VALUE_ERROR,
        ACTION_PARAMETER_VALUE_FORMAT_ERROR,
        ACTION_PARAMETER_VALUE_NOT_IN_LIST,
        ACTION_PARAMETER_VALUE_TYPE_ERROR,
        CHASSIS_POWER_STATE_OFF_REQUIRED,
        CHASSIS_POWER_STATE_ON_REQUIRED,
        COULD_NOT_ESTABLISH_CONNECTION,
        CREATE_FAILED_MISSING_REQ_PROPERTIES,
        CREATED,
        EVENT_SUBSCRIPTION_LIMIT_EXCEEDED,
        GENERAL_ERROR,
        HEADER_INVALID,
        HEADER_MISSING,
        INSUFFICIENT_PRIVILEGE,
        INSUFFICIENT_STORAGE,
        INTERNAL_ERROR,
        INVALID_OBJECT,
        INVALID_URI,
        MALFORMED_JSON,
        NO_OPERATION,
        NO_VALID_SESSION,
        OPERATION_FAILED,
        OPERATION_NOT_ALLOWED,
        OPERATION_TIMEOUT,
        PASSWORD_CHANGE_REQUIRED,
        PAYLOAD_TOO_LARGE,
        PRECONDITION_FAILED,
        PRECONDITION_REQUIRED,
        PROPERTY_DUPLICATE,
        PROPERTY_MISSING,
        PROPERTY_NOT_WRITABLE,
        PROPERTY_UNKNOWN,
        PROPERTY_VALUE_CONFLICT,
        PROPERTY_VALUE_ERROR,
        PROPERTY_VALUE_FORMAT_ERROR,
        PROPERTY_VALUE_INCORRECT,
        PROPERTY_VALUE_MODIFIED,
        PROPERTY_VALUE_NOT_IN_LIST,
        PROPERTY_VALUE_OUT_OF_RANGE,
        PROPERTY_VALUE_TYPE_ERROR,
        QUERY_NOT_SUPPORTED,
        QUERY_NOT_SUPPORTED_ON_RESOURCE,
        QUERY_PARAMETER_OUT_OF_RANGE,
        QUERY_PARAMETER_UNSUPPORTED,
        QUERY_PARAMETER_VALUE_FORMAT_ERROR,
        QUERY_PARAMETER_VALUE_TYPE_ERROR,
        RESET_REQUIRED,
        RESOURCE_ALREADY_EXISTS,
        RESOURCE_CANNOT_BE_DELETED,
        RESOURCE_EXHAUSTION,
        RESOURCE_IN_USE,
        RESOURCE_MISSING_AT_URI,
        RESOURCE_NOT_FOUND,
        SERVICE_IN_UNKNOWN_STATE,
        SERVICE_SHUTTING_DOWN,
        SERVICE_TEMPORARILY_UNAVAILABLE,
        SESSION_LIMIT_EXCEEDED,
        SESSION_TERMINATED,
        SOURCE_DOES_NOT_SUPPORT_PROTOCOL,
        STRING_VALUE_TOO_LONG,
        SUCCESS,
        UNRECOGNIZED_REQUEST_BODY,
    ];

    #[test]
    fn registry_is_well_formed() {
        crate::registries::check_registry(ALL, NAMED);
    }

    #[test]
    fn registry_identity() {
        assert_eq!(PREFIX, "Base");
        assert_eq!(VERSION.split('.').count(), 3);
        assert_eq!(RESOURCE_NOT_FOUND.key, "ResourceNotFound");
        assert_eq!(
            RESOURCE_NOT_FOUND.message,
            "The requested resource of type %1 named '%2' was not found."
        );
    }
}
