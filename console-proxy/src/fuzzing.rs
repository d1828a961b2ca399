//! Entry points for the fuzz targets (`fuzz/`, see docs/reliability.md): what console-proxy
//! parses of a client, called as a session calls it. Not an API: nothing else uses this module.

use std::io::{self, Read, Write};

use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

use crate::{from_client, ws_config, FromClient, MAX_CLIENT_MESSAGE};

/// The largest message a client may send.
pub const MAX_MESSAGE: usize = MAX_CLIENT_MESSAGE;

/// A client connection that sends `input` and swallows what the proxy writes.
struct Replay<'a> {
    input: &'a [u8],
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Replay<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a session makes of a client's bytes after the upgrade.
#[derive(Debug, Default)]
pub struct Session {
    /// The length of each data message passed to the console, in order.
    pub data: Vec<usize>,
    pub controls: usize,
    /// The session ended because the client closed (or its bytes ran out).
    pub closed: bool,
    /// The session ended on a protocol error or an over-large message.
    pub error: bool,
}

/// Reads client frames from `input` with the proxy's WebSocket settings, until the session ends.
pub fn ws_session(input: &[u8]) -> Session {
    let mut ws = WebSocket::from_raw_socket(Replay { input }, Role::Server, Some(ws_config()));
    let mut out = Session::default();
    loop {
        let msg = match ws.read() {
            Err(
                tokio_tungstenite::tungstenite::Error::ConnectionClosed
                | tokio_tungstenite::tungstenite::Error::AlreadyClosed,
            ) => None,
            Err(tokio_tungstenite::tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                None
            }
            other => Some(other),
        };
        match from_client(msg) {
            FromClient::Data(b) => out.data.push(b.len()),
            FromClient::Control => out.controls += 1,
            FromClient::Closed => {
                out.closed = true;
                return out;
            }
            FromClient::Error => {
                out.error = true;
                return out;
            }
        }
    }
}

/// The `token` query parameter of a console URL.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    crate::query_param(query, name)
}

/// Whether a comma-separated header list (`Connection`, `Sec-WebSocket-Protocol`) has `token`.
pub fn has_token(list: Option<&str>, token: &str) -> bool {
    crate::has_token(list, token)
}
