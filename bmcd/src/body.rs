//! Strict parsing of request bodies: every property is taken with its expected
//! type, and whatever is left over is refused, each failure with its own Base
//! message (PropertyUnknown, PropertyValueTypeError, ActionParameterMissing...).

use serde_json::{Map, Value};

use crate::error::RedfishError;

/// Whether the body is a resource (PATCH/POST to a collection) or action parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Resource,
    Action(&'static str),
}

pub struct Fields {
    map: Map<String, Value>,
    context: Context,
    /// JSON pointer prefix for nested objects (`Boot/`).
    prefix: String,
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 64 {
        let cut: String = s.chars().take(64).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Fields {
    /// Parses a body that must be one JSON object.
    pub fn parse(bytes: &[u8], context: Context) -> Result<Fields, RedfishError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields {
                map: Map::new(),
                context,
                prefix: String::new(),
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|_| RedfishError::malformed_json())?;
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                context,
                prefix: String::new(),
            }),
            _ => Err(RedfishError::bad_request(crate::error::Message::new(
                &crate::registries::base::UNRECOGNIZED_REQUEST_BODY,
                &[],
            ))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.keys().all(|k| k.starts_with("@odata."))
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn type_error(&self, key: &str, v: &Value) -> RedfishError {
        match self.context {
            Context::Resource => RedfishError::property_value_type(&short(v), &self.name(key)),
            Context::Action(a) => RedfishError::action_parameter_value_type(&short(v), &self.name(key), a),
        }
    }

    /// Error for a value outside the allowed set.
    pub fn not_in_list(&self, key: &str, value: &str) -> RedfishError {
        match self.context {
            Context::Resource => RedfishError::property_value_not_in_list(value, &self.name(key)),
            Context::Action(a) => RedfishError::action_parameter_value_not_in_list(value, &self.name(key), a),
        }
    }

    pub fn missing(&self, key: &str) -> RedfishError {
        match self.context {
            Context::Resource => RedfishError::property_missing(&self.name(key)),
            Context::Action(a) => RedfishError::action_parameter_missing(a, &self.name(key)),
        }
    }

    /// Removes a property whatever its type (for read-only checks).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// Refuses a read-only property if the body carries it.
    pub fn read_only(&mut self, key: &str) -> Result<(), RedfishError> {
        match self.take(key) {
            None => Ok(()),
            Some(_) => Err(RedfishError::property_not_writable(&self.name(key))),
        }
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, RedfishError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.type_error(key, &v)),
        }
    }

    /// An array of strings.
    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, RedfishError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Some(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            )),
            Some(v) => Err(self.type_error(key, &v)),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, RedfishError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(self.type_error(key, &v)),
        }
    }

    pub fn integer(&mut self, key: &str) -> Result<Option<i64>, RedfishError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(v) => Err(self.type_error(key, &v)),
        }
    }

    /// A string that must name one of an enumeration's members.
    pub fn enumerated<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, RedfishError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| self.not_in_list(key, &s)),
        }
    }

    /// A nested object, parsed with the same rules.
    pub fn object(&mut self, key: &str) -> Result<Option<Fields>, RedfishError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields {
                map,
                context: self.context,
                prefix: format!("{}{key}/", self.prefix),
            })),
            Some(v) => Err(self.type_error(key, &v)),
        }
    }

    /// Turns an absent required value into the right "missing" error.
    pub fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, RedfishError> {
        value.ok_or_else(|| self.missing(key))
    }

    /// Refuses properties nobody took. OData control annotations are ignored.
    pub fn finish(self) -> Result<(), RedfishError> {
        let mut unknown = self.map.keys().filter(|k| !k.starts_with("@odata."));
        let Some(first) = unknown.next() else {
            return Ok(());
        };
        let name = format!("{}{first}", self.prefix);
        let mut err = match self.context {
            Context::Resource => RedfishError::property_unknown(&name),
            Context::Action(a) => RedfishError::action_parameter_unknown(a, &name),
        };
        for other in unknown {
            let name = format!("{}{other}", self.prefix);
            let more = match self.context {
                Context::Resource => RedfishError::property_unknown(&name),
                Context::Action(a) => RedfishError::action_parameter_unknown(a, &name),
            };
            err.messages.extend(more.messages);
        }
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    fn id(e: &RedfishError) -> String {
        e.body()["error"]["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn typed_fields_and_leftovers() {
        let mut f = Fields::parse(
            br#"{"A": "x", "B": true, "C": 3, "D": {"E": "y"}}"#,
            Context::Resource,
        )
        .expect("parses");
        assert_eq!(f.string("A").expect("a"), Some("x".into()));
        assert_eq!(f.bool("B").expect("b"), Some(true));
        assert_eq!(f.integer("C").expect("c"), Some(3));
        let mut d = f.object("D").expect("d").expect("present");
        assert_eq!(d.string("E").expect("e"), Some("y".into()));
        d.finish().expect("nothing left");
        f.finish().expect("nothing left");
    }

    #[test]
    fn each_failure_has_its_message() {
        let e = Fields::parse(b"{nope", Context::Resource)
            .err()
            .expect("malformed");
        assert!(id(&e).ends_with("MalformedJSON"));
        let e = Fields::parse(b"[1]", Context::Resource)
            .err()
            .expect("not an object");
        assert!(id(&e).ends_with("UnrecognizedRequestBody"));

        let mut f = Fields::parse(br#"{"A": 1, "Z": 2}"#, Context::Resource).expect("parses");
        let e = f.string("A").expect_err("type");
        assert!(id(&e).ends_with("PropertyValueTypeError"));
        let e = f.finish().expect_err("unknown");
        assert!(id(&e).ends_with("PropertyUnknown"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);

        let mut f = Fields::parse(
            br#"{"ResetType": "Explode"}"#,
            Context::Action("ComputerSystem.Reset"),
        )
        .expect("parses");
        let e = f
            .enumerated("ResetType", |_| None::<()>)
            .expect_err("not in list");
        assert!(id(&e).ends_with("ActionParameterValueNotInList"));
        let f = Fields::parse(b"{}", Context::Action("ComputerSystem.Reset")).expect("parses");
        let e = f.required::<String>("ResetType", None).expect_err("missing");
        assert!(id(&e).ends_with("ActionParameterMissing"));
    }

    #[test]
    fn empty_body_and_odata_annotations_are_empty() {
        assert!(Fields::parse(b"", Context::Resource).expect("empty").is_empty());
        let f = Fields::parse(br#"{"@odata.etag": "x"}"#, Context::Resource).expect("parses");
        assert!(f.is_empty());
        f.finish().expect("annotations are not properties");
    }
}
