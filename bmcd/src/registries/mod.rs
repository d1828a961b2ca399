//! Message registries: the messages bmcd puts in `@Message.ExtendedInfo`, and the
//! registry documents served under `/redfish/v1/Registries`.

/// Test helper for the registry modules: pairs each listed message const with its Rust
/// name, so `check_registry` can match names against keys.
#[cfg(test)]
macro_rules! named {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name)),*]
    };
}

pub mod audit;
pub mod base;
pub mod resource_event;
pub mod task_event;

use crate::json;
use serde_json::{Map, Value};

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

/// A message registry bmcd serves: prefix, version, messages.
pub struct Registry {
    pub prefix: &'static str,
    pub version: &'static str,
    pub name: &'static str,
    pub messages: &'static [MessageDef],
    /// `DMTF` (published at redfish.dmtf.org) or `Redfin` (this service's own).
    pub owner: &'static str,
}

/// Every message registry bmcd's messages and events come from.
pub const ALL: &[Registry] = &[
    Registry {
        prefix: base::PREFIX,
        version: base::VERSION,
        name: "Base Message Registry",
        messages: base::ALL,
        owner: "DMTF",
    },
    Registry {
        prefix: resource_event::PREFIX,
        version: resource_event::VERSION,
        name: "Resource Event Message Registry",
        messages: resource_event::ALL,
        owner: "DMTF",
    },
    Registry {
        prefix: task_event::PREFIX,
        version: task_event::VERSION,
        name: "Task Event Message Registry",
        messages: task_event::ALL,
        owner: "DMTF",
    },
    Registry {
        prefix: audit::PREFIX,
        version: audit::VERSION,
        name: "Redfin Audit Message Registry",
        messages: audit::ALL,
        owner: "Redfin",
    },
];

pub fn by_prefix(prefix: &str) -> Option<&'static Registry> {
    ALL.iter().find(|r| r.prefix == prefix)
}

/// The Base registry as a `MessageRegistry` resource (the messages bmcd emits).
pub fn base_registry_document() -> Value {
    registry_document(&ALL[0])
}

/// A registry as a `MessageRegistry` resource.
pub fn registry_document(reg: &Registry) -> Value {
    let mut messages = Map::new();
    for def in reg.messages {
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
        "Id": format!("{}.{}", reg.prefix, reg.version),
        "Name": reg.name,
        "Language": "en",
        "Description": format!("The {} {} messages that this service emits.", reg.owner, reg.prefix),
        "RegistryPrefix": reg.prefix,
        "RegistryVersion": reg.version,
        "OwningEntity": reg.owner,
        "Messages": messages,
    })
}

/// Checks a transcribed registry: `all` sorted by key without duplicates,
/// `%N` placeholders numbered 1..=args, known parameter types and severities,
/// no empty text, and every const (`named`: Rust name and value) in `all`
/// under the SCREAMING_SNAKE_CASE of its key.
#[cfg(test)]
pub fn check_registry(all: &[MessageDef], named: &[(&str, MessageDef)]) {
    fn placeholders(message: &str) -> Vec<u32> {
        let bytes = message.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let mut j = i + 1;
                let mut n: u32 = 0;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    n = n * 10 + u32::from(bytes[j] - b'0');
                    j += 1;
                }
                if j > i + 1 {
                    found.push(n);
                }
                i = j;
            } else {
                i += 1;
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
    fn screaming_snake(key: &str) -> String {
        let chars: Vec<char> = key.chars().collect();
        let mut out = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if i > 0 && c.is_ascii_uppercase() {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                if prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_lower) {
                    out.push('_');
                }
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }
    for pair in all.windows(2) {
        assert!(
            pair[0].key < pair[1].key,
            "not sorted at {} / {}",
            pair[0].key,
            pair[1].key
        );
    }
    for m in all {
        let expected: Vec<u32> = (1..=m.param_types.len() as u32).collect();
        assert_eq!(placeholders(m.message), expected, "placeholders of {}", m.key);
        for t in m.param_types {
            assert!(*t == "string" || *t == "number", "{}: {t}", m.key);
        }
        assert!(
            matches!(m.severity, "OK" | "Warning" | "Critical"),
            "{}: {}",
            m.key,
            m.severity
        );
        assert!(!m.key.is_empty());
        assert!(!m.description.is_empty(), "{}", m.key);
        assert!(!m.message.is_empty(), "{}", m.key);
        assert!(!m.resolution.is_empty(), "{}", m.key);
    }
    assert_eq!(named.len(), all.len(), "the const list and ALL differ in size");
    for (name, def) in named {
        assert!(all.contains(def), "{name} missing from ALL");
        assert_eq!(*name, screaming_snake(def.key), "const name of {}", def.key);
    }
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
