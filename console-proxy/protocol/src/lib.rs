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
//! The SSH serial console uses the same socket: console-proxy sends an
//! [`AuthorizeSerial`] instead of a [`Redeem`] (see [`Request`]).
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

/// console-proxy -> bmcd: may this SSH user open the serial console of
/// `system`? Sent as one line `{"request":"AuthorizeSerial",...}` (a
/// [`Redeem`] line has no `request` member, so both parse unambiguously; see
/// [`Request::parse`]).
///
/// bmcd checks the password with its own login rules (lockout counting, the
/// audit log). Without `system` it answers [`Answer::Authenticated`] (the SSH
/// login) and closes the line; with `system` it also checks the privilege
/// the console token action requires and the account's project, resolves
/// `system` (UUID or domain name) and answers like a [`Redeem`]: after
/// [`Answer::Granted`] the line stays open while the session lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSerial {
    pub user: String,
    pub password: String,
    pub system: Option<String>,
    /// The SSH client's address, for the audit log.
    pub client: String,
}

/// The requests of the console socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Redeem(Redeem),
    AuthorizeSerial(AuthorizeSerial),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "request")]
enum Tagged {
    AuthorizeSerial(AuthorizeSerial),
}

impl Request {
    /// Parses one request line (strictly: unknown members are refused).
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if value.get("request").is_some() {
            match serde_json::from_value::<Tagged>(value).map_err(|e| e.to_string())? {
                Tagged::AuthorizeSerial(a) => Ok(Request::AuthorizeSerial(a)),
            }
        } else {
            serde_json::from_value::<Redeem>(value)
                .map(Request::Redeem)
                .map_err(|e| e.to_string())
        }
    }

    /// The request as one line, with its newline.
    pub fn to_line(&self) -> Result<Vec<u8>, String> {
        let mut line = match self {
            Request::Redeem(r) => serde_json::to_vec(r),
            Request::AuthorizeSerial(a) => serde_json::to_vec(&Tagged::AuthorizeSerial(a.clone())),
        }
        .map_err(|e| e.to_string())?;
        line.push(b'\n');
        Ok(line)
    }
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
    /// (at most 123 bytes), or on the SSH channel.
    Refused { reason: String },
    /// The answer to an [`AuthorizeSerial`] without a system: the password
    /// is right and the account may log in.
    Authenticated { user: String },
    /// The answer to an [`AuthorizeSerial`] whose user name or password is
    /// wrong, or whose account is disabled or locked (one reason for all).
    LoginFailed,
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

    #[test]
    fn requests_round_trip_and_redeem_lines_are_unchanged() {
        let redeem = r#"{"token":"x","system_id":"s","kind":"Serial","client":"c"}"#;
        let Ok(Request::Redeem(r)) = Request::parse(redeem.as_bytes()) else {
            panic!("a redeem line")
        };
        assert_eq!(r.system_id, "s");
        let line = Request::Redeem(r).to_line().expect("line");
        assert_eq!(line, format!("{redeem}\n").into_bytes());
        let a = Request::AuthorizeSerial(AuthorizeSerial {
            user: "op".into(),
            password: "pw".into(),
            system: Some("vm1".into()),
            client: "127.0.0.1".into(),
        });
        let line = a.to_line().expect("line");
        let text = String::from_utf8(line.clone()).expect("utf8");
        assert!(text.starts_with(r#"{"request":"AuthorizeSerial","#), "{text}");
        assert_eq!(Request::parse(&line).expect("parses"), a);
        for bad in [
            r#"{"request":"AuthorizeSerial","user":"u","password":"p","system":null,"client":"c","x":1}"#,
            r#"{"request":"Other","user":"u"}"#,
            r#"{"request":"AuthorizeSerial","user":"u"}"#,
            r#"{"token":"x","system_id":"s","kind":"Serial","client":"c","request":1}"#,
            "[]",
        ] {
            assert!(Request::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let s = serde_json::to_string(&Answer::LoginFailed).expect("json");
        assert_eq!(s, r#"{"result":"LoginFailed"}"#);
    }
}
