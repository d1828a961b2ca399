//! What bmcd and console-proxy agree on: the console kinds, the shape of a
//! console token, the URL path console-proxy serves, and the redeem protocol
//! spoken over bmcd's console Unix socket.
//!
//! The redeem protocol is one JSON object per line. console-proxy opens a
//! connection per WebSocket session and sends a [`Redeem`]; bmcd answers one
//! [`Answer`]. After [`Answer::Granted`] the connection stays open for as long
//! as the session lives: bmcd counts the session as open (for its limits) until
//! the connection closes, and writes the audit entry for the close then.
//! Before closing, console-proxy may send one [`Closed`] line with the reason.
//!
//! The dependency goes one way: bmcd and console-proxy depend on this crate,
//! never the reverse.

use serde::{Deserialize, Serialize};

/// The largest line either side sends or accepts on the console socket.
pub const MAX_LINE_BYTES: usize = 4096;

/// A console token is 32 random bytes in unpadded base64url: 43 characters.
pub const TOKEN_CHARS: usize = 43;

/// Whether `s` has the shape of a console token (length and alphabet). Only
/// such strings are sent to bmcd to redeem.
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == TOKEN_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The kinds of console, with their Redfish `ConsoleType` name and the path
/// segment console-proxy serves them under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsoleKind {
    /// VNC (RFB), `KVMIP` in Redfish.
    #[serde(rename = "KVMIP")]
    Kvmip,
    #[serde(rename = "Spice")]
    Spice,
    #[serde(rename = "Serial")]
    Serial,
}

impl ConsoleKind {
    pub const ALL: [ConsoleKind; 3] = [ConsoleKind::Kvmip, ConsoleKind::Spice, ConsoleKind::Serial];

    /// The Redfish `ConsoleType` value.
    pub fn redfish_name(self) -> &'static str {
        match self {
            ConsoleKind::Kvmip => "KVMIP",
            ConsoleKind::Spice => "Spice",
            ConsoleKind::Serial => "Serial",
        }
    }

    pub fn from_redfish_name(s: &str) -> Option<ConsoleKind> {
        ConsoleKind::ALL.into_iter().find(|k| k.redfish_name() == s)
    }

    /// The last segment of the WebSocket path: `vnc`, `spice` or `serial`.
    pub fn path_segment(self) -> &'static str {
        match self {
            ConsoleKind::Kvmip => "vnc",
            ConsoleKind::Spice => "spice",
            ConsoleKind::Serial => "serial",
        }
    }

    pub fn from_path_segment(s: &str) -> Option<ConsoleKind> {
        ConsoleKind::ALL.into_iter().find(|k| k.path_segment() == s)
    }
}

/// The WebSocket path of a system's console: `/consoles/{system}/{vnc|spice|serial}`.
pub fn console_path(system_id: &str, kind: ConsoleKind) -> String {
    format!("/consoles/{system_id}/{}", kind.path_segment())
}

/// Splits a console path into system id and kind.
pub fn parse_console_path(path: &str) -> Option<(&str, ConsoleKind)> {
    let rest = path.strip_prefix("/consoles/")?;
    let (system, kind) = rest.split_once('/')?;
    if system.is_empty() || system.contains('/') {
        return None;
    }
    Some((system, ConsoleKind::from_path_segment(kind)?))
}

/// console-proxy -> bmcd: redeem a token for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub token: String,
    /// The system and console kind named by the WebSocket path: the token
    /// must have been issued for exactly these.
    pub system_id: String,
    pub kind: ConsoleKind,
    /// The WebSocket client's address, for the audit log.
    pub client: String,
}

/// Where the console's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "type")]
pub enum Target {
    /// A TCP server of the hypervisor (QEMU's VNC or SPICE port).
    Tcp { host: String, port: u16 },
    /// The domain's serial console, opened through libvirt
    /// (`virDomainOpenConsole`) on console-proxy's own libvirt connection.
    LibvirtConsole { domain_uuid: String },
}

/// bmcd -> console-proxy: the answer to a [`Redeem`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "result")]
pub enum Answer {
    Granted {
        /// bmcd's id of this session (for logs).
        session: u64,
        user: String,
        target: Target,
        /// Unix time at which the session must end, whatever happens.
        deadline: i64,
    },
    /// The reason is shown to the client as the WebSocket close reason
    /// (at most 123 bytes).
    Refused { reason: String },
}

/// console-proxy -> bmcd, optional, just before closing a granted session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closed {
    pub reason: String,
    pub bytes_to_client: u64,
    pub bytes_from_client: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for k in ConsoleKind::ALL {
            let p = console_path("abc", k);
            assert_eq!(parse_console_path(&p), Some(("abc", k)));
            assert_eq!(ConsoleKind::from_redfish_name(k.redfish_name()), Some(k));
        }
        assert_eq!(parse_console_path("/consoles/a/b/vnc"), None);
        assert_eq!(parse_console_path("/consoles//vnc"), None);
        assert_eq!(parse_console_path("/other/a/vnc"), None);
    }

    #[test]
    fn token_shape() {
        assert!(is_token_shaped(&"a".repeat(43)));
        assert!(!is_token_shaped(&"a".repeat(42)));
        assert!(!is_token_shaped(&format!("{}=", "a".repeat(42))));
    }

    #[test]
    fn wire_format() {
        let a = Answer::Granted {
            session: 1,
            user: "admin".into(),
            target: Target::Tcp {
                host: "127.0.0.1".into(),
                port: 5900,
            },
            deadline: 10,
        };
        let s = serde_json::to_string(&a).expect("json");
        assert!(s.contains("\"result\":\"Granted\""), "{s}");
        assert_eq!(serde_json::from_str::<Answer>(&s).expect("parse"), a);
        assert!(serde_json::from_str::<Redeem>(
            r#"{"token":"x","system_id":"s","kind":"KVMIP","client":"c","extra":1}"#
        )
        .is_err());
    }
}
