//! Message registries: the messages bmcd puts in `@Message.ExtendedInfo`, and the
//! registry documents served under `/redfish/v1/Registries`.

pub mod base;

use serde_json::{json, Map, Value};

pub use base::MessageDef;

/// `Base.<version>.<key>`.
pub fn message_id(def: &MessageDef) -> String {
    format!("{}.{}.{}", base::PREFIX, base::VERSION, def.key)
}

/// Substitutes `%1`, `%2`, ... with `args`.
pub fn render(def: &MessageDef, args: &[String]) -> String {
    let mut out = def.message.to_owned();
    // Replace from the highest index down so `%1` does not eat the prefix of `%10`.
    for (i, arg) in args.iter().enumerate().rev() {
        out = out.replace(&format!("%{}", i + 1), arg);
    }
    out
}

/// The Base registry as a `MessageRegistry` resource (the messages bmcd emits).
pub fn base_registry_document() -> Value {
    let mut messages = Map::new();
    for def in base::ALL {
        messages.insert(
            def.key.to_owned(),
            json!({
                "Description": def.description,
                "Message": def.message,
                "Severity": def.severity,
                "MessageSeverity": def.severity,
                "NumberOfArgs": def.param_types.len(),
                "ParamTypes": def.param_types,
                "Resolution": def.resolution,
            }),
        );
    }
    json!({
        "@odata.type": "#MessageRegistry.v1_7_0.MessageRegistry",
        "Id": format!("{}.{}", base::PREFIX, base::VERSION),
        "Name": "Base Message Registry",
        "Language": "en",
        "Description": "The DMTF Base messages that this service emits.",
        "RegistryPrefix": base::PREFIX,
        "RegistryVersion": base::VERSION,
        "OwningEntity": "DMTF",
        "Messages": messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_arguments_in_place() {
        let text = render(&base::RESOURCE_NOT_FOUND, &["ComputerSystem".into(), "x".into()]);
        assert_eq!(
            text,
            "The requested resource of type ComputerSystem named 'x' was not found."
        );
        assert_eq!(
            message_id(&base::SUCCESS),
            format!("Base.{}.Success", base::VERSION)
        );
    }

    #[test]
    fn registry_document_lists_every_message() {
        let doc = base_registry_document();
        let n = doc["Messages"].as_object().map(|m| m.len()).unwrap_or(0);
        assert_eq!(n, base::ALL.len());
    }
}
