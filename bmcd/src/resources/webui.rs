//! The web UI (docs/webui.md): a few static files embedded in the binary,
//! gzip-compressed at build time (build.rs). They hold no data and are open;
//! the page reads and changes everything through the Redfish API with a
//! session token, as any client does.

use hyper::StatusCode;

use crate::error::{Message, RedfishError};
use crate::privilege::Required;
use crate::registries::base;
use crate::route;
use crate::router::{Reply, Request, Route};

/// (name, bytes, gzip-compressed) of every file under `/ui/`.
const FILES: &[(&str, &[u8], bool)] = include!(concat!(env!("OUT_DIR"), "/webui_files.rs"));

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/", Required::Open, get_root),
        route!(GET "/ui", Required::Open, get_index),
        route!(GET "/ui/{file}", Required::Open, get_file),
    ]
}

async fn get_root(_req: Request) -> Result<Reply, RedfishError> {
    Ok(Reply::Moved {
        location: "/ui/".to_owned(),
    })
}

async fn get_index(req: Request) -> Result<Reply, RedfishError> {
    file(&req, "index.html")
}

async fn get_file(req: Request) -> Result<Reply, RedfishError> {
    file(&req, req.param(0))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `Accept-Encoding` admits gzip (no `q=0` for it).
fn accepts_gzip(req: &Request) -> bool {
    req.headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            // `q=0`, `q=0.0`...: refused. (No float parsing: it costs binary size.)
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.starts_with('0') && q.bytes().all(|b| b == b'0' || b == b'.'))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn file(req: &Request, name: &str) -> Result<Reply, RedfishError> {
    let Some(&(name, body, gzip)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(RedfishError::no_such_uri(&req.path));
    };
    if gzip && !accepts_gzip(req) {
        // Every browser takes gzip; the files are embedded in no other form.
        return Err(RedfishError::new(
            StatusCode::NOT_ACCEPTABLE,
            Message::new(&base::HEADER_INVALID, &["Accept-Encoding"]),
        )
        .with_resolution("Accept gzip: the web UI's files are served gzip-compressed."));
    }
    Ok(Reply::Static {
        content_type: content_type(name),
        body,
        gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_embedded_and_small() {
        let total: usize = FILES.iter().map(|(_, b, _)| b.len()).sum();
        assert_eq!(FILES.len(), 3);
        assert!(FILES
            .iter()
            .all(|(n, _, _)| content_type(n) != "application/octet-stream"));
        // The binary's budget (docs/performance.md) leaves little room.
        assert!(total < 24 * 1024, "the web UI embeds {total} bytes");
    }
}
