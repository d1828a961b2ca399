//! The client side of bmcd's console socket: redeem a token, hold the
//! connection while the session lives, report the close.

use std::path::Path;
use std::time::Duration;

use redfin_console_protocol::{Answer, Closed, Redeem, Request, MAX_LINE_BYTES};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A granted session's line to bmcd: bmcd counts the session as open until it
/// is dropped.
pub struct Grant {
    stream: UnixStream,
}

impl Grant {
    /// Resolves when bmcd ends the session from its side (it closed the
    /// line, e.g. because it stopped). Cancel-safe.
    pub async fn ended(&mut self) {
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // bmcd sends nothing after its answer; ignore
            }
        }
    }

    /// Tells bmcd why the session ended, then closes the line.
    pub async fn close(mut self, closed: &Closed) {
        if let Ok(mut line) = serde_json::to_vec(closed) {
            line.push(b'\n');
            let _ = tokio::time::timeout(TIMEOUT, self.stream.write_all(&line)).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

/// Asks bmcd to redeem `req`. `Err` means bmcd could not be asked.
pub async fn redeem(socket: &Path, req: &Redeem) -> Result<(Answer, Option<Grant>), String> {
    ask(socket, &Request::Redeem(req.clone())).await
}

/// Sends one request to bmcd and reads its answer; a granted session's line
/// comes back as the [`Grant`]. `Err` means bmcd could not be asked.
pub async fn ask(socket: &Path, req: &Request) -> Result<(Answer, Option<Grant>), String> {
    let work = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot reach bmcd at {}: {e}", socket.display()))?;
        let line = req.to_line()?;
        stream.write_all(&line).await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let mut reader = BufReader::new(&mut stream).take(MAX_LINE_BYTES as u64);
        reader
            .read_until(b'\n', &mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let answer: Answer =
            serde_json::from_slice(&answer).map_err(|e| format!("unreadable answer from bmcd: {e}"))?;
        let grant = matches!(answer, Answer::Granted { .. }).then_some(Grant { stream });
        Ok((answer, grant))
    };
    tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| "bmcd did not answer in time".to_owned())?
}
