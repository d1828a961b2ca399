//! The part of TOML that bmcd's configuration file uses, read into a JSON
//! value that serde then turns into the typed configuration (with its
//! unknown-key checks). Replaces the `toml` crate, which cost about 90 KiB
//! of the binary (docs/performance.md).
//!
//! Understood: comments; `key = value` with bare keys; basic ("...", with
//! escapes) and literal ('...') strings; integers (`_` separators, sign);
//! booleans; arrays of those (over several lines, trailing comma allowed);
//! `[table]` and `[[array-of-tables]]` headers with bare names. Anything else
//! (floats, dates, inline tables, dotted or quoted keys, multi-line strings)
//! is refused with its line number, never guessed.

use serde_json::{Map, Value};

/// A parse error: line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for TomlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    /// Arrays open around the value being read.
    depth: usize,
}

/// Arrays nest at most this deep (the configuration needs one level): a deeper document is
/// refused rather than read by recursion until the stack runs out.
const MAX_DEPTH: usize = 16;

fn bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Parser<'_> {
    fn err<T>(&self, what: impl Into<String>) -> Result<T, TomlError> {
        Err(TomlError {
            line: self.line,
            what: what.into(),
        })
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// Skips spaces and tabs (not newlines).
    fn blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.next();
        }
    }

    /// Skips blanks, newlines and comments.
    fn space(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n') => {
                    self.next();
                }
                Some('#') => self.comment(),
                _ => return,
            }
        }
    }

    fn comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                return;
            }
            self.next();
        }
    }

    /// After a value or header: blanks, an optional comment, then a newline or the end.
    fn end_of_line(&mut self) -> Result<(), TomlError> {
        self.blanks();
        if self.peek() == Some('#') {
            self.comment();
        }
        match self.peek() {
            None => Ok(()),
            Some('\r') => {
                self.next();
                if self.next() == Some('\n') {
                    Ok(())
                } else {
                    self.err("a carriage return not followed by a newline")
                }
            }
            Some('\n') => {
                self.next();
                Ok(())
            }
            Some(c) => self.err(format!("unexpected '{c}' after the value")),
        }
    }

    fn key(&mut self) -> Result<String, TomlError> {
        let mut k = String::new();
        while let Some(c) = self.peek().filter(|c| bare(*c)) {
            k.push(c);
            self.next();
        }
        if k.is_empty() {
            return self.err("a key must be a bare key (letters, digits, '_', '-')");
        }
        Ok(k)
    }

    fn value(&mut self) -> Result<Value, TomlError> {
        match self.peek() {
            Some('"') => self.basic_string().map(Value::String),
            Some('\'') => self.literal_string().map(Value::String),
            Some('[') => self.array(),
            Some('t' | 'f') => {
                let word = self.word();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => self.err(format!("'{word}' is not a value")),
                }
            }
            Some(c) if c.is_ascii_digit() || c == '+' || c == '-' => {
                let word = self.word();
                let body = word.strip_prefix(['+', '-']).unwrap_or(&word);
                let well_formed = !body.is_empty()
                    && body.chars().all(|c| c.is_ascii_digit() || c == '_')
                    && !body.starts_with('_')
                    && !body.ends_with('_')
                    && !body.contains("__");
                let digits: String = word.chars().filter(|c| *c != '_').collect();
                match digits.parse::<i64>() {
                    Ok(n) if well_formed => Ok(Value::from(n)),
                    _ => self.err(format!(
                        "'{word}' is not an integer (floats and dates are not supported)"
                    )),
                }
            }
            Some('{') => self.err("inline tables are not supported"),
            Some(c) => self.err(format!("unexpected '{c}'")),
            None => self.err("a value is missing"),
        }
    }

    /// Characters up to a delimiter (space, comma, bracket, comment, newline).
    fn word(&mut self) -> String {
        let mut w = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | ']' | '#') {
                break;
            }
            w.push(c);
            self.next();
        }
        w
    }

    fn basic_string(&mut self) -> Result<String, TomlError> {
        self.next();
        if self.peek() == Some('"') {
            self.next();
            if self.peek() == Some('"') {
                return self.err("multi-line strings are not supported");
            }
            return Ok(String::new());
        }
        let mut s = String::new();
        loop {
            match self.next() {
                None | Some('\n') => return self.err("a string is not closed on its line"),
                Some('"') => return Ok(s),
                Some('\\') => {
                    let c = match self.next() {
                        Some('b') => '\u{8}',
                        Some('t') => '\t',
                        Some('n') => '\n',
                        Some('f') => '\u{c}',
                        Some('r') => '\r',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some(u @ ('u' | 'U')) => {
                            let n = if u == 'u' { 4 } else { 8 };
                            let hex: String = (0..n).filter_map(|_| self.next()).collect();
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(c) if hex.len() == n => c,
                                _ => return self.err(format!("'\\{u}{hex}' is not a character")),
                            }
                        }
                        other => {
                            return self.err(format!("unknown escape '\\{}'", other.unwrap_or(' ')));
                        }
                    };
                    s.push(c);
                }
                Some(c) if c.is_control() && c != '\t' => {
                    return self.err("control characters must be escaped in strings");
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn literal_string(&mut self) -> Result<String, TomlError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                None | Some('\n') => return self.err("a string is not closed on its line"),
                Some('\'') => {
                    if s.is_empty() && self.peek() == Some('\'') {
                        return self.err("multi-line strings are not supported");
                    }
                    return Ok(s);
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn array(&mut self) -> Result<Value, TomlError> {
        if self.depth >= MAX_DEPTH {
            return self.err(format!("arrays nested deeper than {MAX_DEPTH} are not supported"));
        }
        self.depth += 1;
        let items = self.items();
        self.depth -= 1;
        items
    }

    fn items(&mut self) -> Result<Value, TomlError> {
        self.next();
        let mut items = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(']') {
                self.next();
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            self.space();
            match self.next() {
                Some(',') => {}
                Some(']') => return Ok(Value::Array(items)),
                Some(c) => return self.err(format!("expected ',' or ']' in an array, found '{c}'")),
                None => return self.err("an array is not closed"),
            }
        }
    }
}

/// Parses the document into a JSON object.
pub fn parse(text: &str) -> Result<Value, TomlError> {
    let mut p = Parser {
        chars: text.chars().peekable(),
        line: 1,
        depth: 0,
    };
    let mut root = Map::new();
    // The table keys go to: None = the root; Some((name, is_array)).
    let mut current: Option<(String, bool)> = None;
    loop {
        p.space();
        match p.peek() {
            None => break,
            Some('[') => {
                p.next();
                let array = p.peek() == Some('[');
                if array {
                    p.next();
                }
                p.blanks();
                let name = p.key()?;
                p.blanks();
                let closing = if array { "]]" } else { "]" };
                for _ in 0..closing.len() {
                    if p.next() != Some(']') {
                        return p.err(format!(
                            "a table header must be [name] or [[name]] with a bare name (after '{name}')"
                        ));
                    }
                }
                p.end_of_line()?;
                match (root.get_mut(&name), array) {
                    (None, false) => {
                        root.insert(name.clone(), Value::Object(Map::new()));
                    }
                    (None, true) => {
                        root.insert(name.clone(), Value::Array(vec![Value::Object(Map::new())]));
                    }
                    (Some(Value::Array(list)), true) => list.push(Value::Object(Map::new())),
                    _ => return p.err(format!("'{name}' is defined twice")),
                }
                current = Some((name, array));
            }
            Some(_) => {
                let key = p.key()?;
                p.blanks();
                if p.next() != Some('=') {
                    return p.err(format!(
                        "expected '=' after '{key}' (dotted and quoted keys are not supported)"
                    ));
                }
                p.blanks();
                let value = p.value()?;
                p.end_of_line()?;
                let table = match &current {
                    None => &mut root,
                    Some((name, array)) => {
                        let slot = root.get_mut(name);
                        let t = match (slot, array) {
                            (Some(Value::Array(list)), true) => list.last_mut(),
                            (Some(t), false) => Some(t),
                            _ => None,
                        };
                        match t.and_then(Value::as_object_mut) {
                            Some(t) => t,
                            None => return p.err("internal: table vanished"),
                        }
                    }
                };
                if table.contains_key(&key) {
                    return p.err(format!("'{key}' is set twice"));
                }
                table.insert(key, value);
            }
        }
    }
    Ok(Value::Object(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Found while writing the `config` fuzz target (fuzz/regressions/config): each `[` of a
    // value recursed once more, so a long run of them overflowed the stack.
    #[test]
    fn deeply_nested_arrays_are_refused() {
        let text = format!("a = {}", "[".repeat(100_000));
        let e = parse(&text).expect_err("too deep");
        assert!(e.to_string().contains("nested deeper"), "{e}");
        let ok = format!("a = {}1{}", "[".repeat(16), "]".repeat(16));
        assert!(parse(&ok).is_ok());
        assert!(parse(&format!("a = {}1{}", "[".repeat(17), "]".repeat(17))).is_err());
    }

    #[test]
    fn reads_what_the_configuration_uses() {
        let doc = r#"
# comment
listen = "127.0.0.1:8443"   # trailing comment
max-connections = 1_024
negative = -5
redirect = true
path = 'C:\no\escapes'
escaped = "tab\there \"q\" \u00e9 \U0001F600"
outbound-allow = [
  "10.0.0.0/8",   # a comment in an array
  "::1/128",
]
empty = []

[firmware]
bank-a = "/dev/vda2"

[[endpoint]]
id = "n1"
[[endpoint]]
id = "n2"
"#;
        let v = parse(doc).expect("parses");
        assert_eq!(
            v,
            json!({
                "listen": "127.0.0.1:8443", "max-connections": 1024, "negative": -5, "redirect": true,
                "path": "C:\\no\\escapes", "escaped": "tab\there \"q\" é 😀",
                "outbound-allow": ["10.0.0.0/8", "::1/128"], "empty": [],
                "firmware": {"bank-a": "/dev/vda2"},
                "endpoint": [{"id": "n1"}, {"id": "n2"}],
            })
        );
        assert_eq!(parse("").expect("empty"), json!({}));
        assert_eq!(parse("a = 1\r\nb = 2").expect("crlf"), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn refuses_what_it_does_not_know_with_the_line() {
        for (doc, line) in [
            ("a = 1.5", 1),
            ("\na = 1979-05-27", 2),
            ("a = {b = 1}", 1),
            ("a.b = 1", 1),
            ("\"a\" = 1", 1),
            ("a = \"\"\"x\"\"\"", 1),
            ("a = \"open", 1),
            ("a = 1\na = 2", 2),
            ("[t]\n[t]", 2),
            ("a = [1, 2", 1),
            ("a = 1 2", 1),
            ("a = yes", 1),
            ("a = \"\\q\"", 1),
            ("a = \"\\u12\"", 1),
            ("a = 1__0", 1),
            ("a = _1", 1),
            ("a = 1-2", 1),
            ("[t.u]", 1),
            ("[[t]", 1),
            ("a", 1),
            ("a = ", 1),
            ("a = 99999999999999999999", 1),
        ] {
            let e = parse(doc).expect_err(doc);
            assert_eq!(e.line, line, "{doc}: {e}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "[", "]", "[[", "=", "\"", "'", "\\", "#", "\n", "a", "1", ",", " ", "\r", "é", "\u{0}",
        ];
        let mut seed: u64 = 7;
        for _ in 0..3000 {
            let mut doc = String::new();
            for _ in 0..12 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                doc.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let _ = parse(&doc);
        }
    }
}
