//! Static files (a noVNC copy) served on the proxy's own origin, so that the
//! page and its WebSocket share one origin. Read-only, GET/HEAD only, no
//! directory listings, no `..`, no hidden files.

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};

const MAX_FILE_BYTES: u64 = 8 << 20;

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("oga" | "ogg") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// The file of `root` that a URL path names, if the path is acceptable.
fn resolve(root: &Path, url_path: &str) -> Option<std::path::PathBuf> {
    let rel = url_path.trim_start_matches('/');
    let rel = if rel.is_empty() { "vnc.html" } else { rel };
    let mut file = root.to_path_buf();
    for seg in rel.split('/') {
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['\\', '%', '\0']) {
            return None;
        }
        file.push(seg);
    }
    Some(file)
}

pub async fn serve(root: &Path, url_path: &str, head: bool) -> Response<Full<Bytes>> {
    let not_found = || {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    let Some(file) = resolve(root, url_path) else {
        return not_found();
    };
    match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
        _ => return not_found(),
    }
    let Ok(body) = tokio::fs::read(&file).await else {
        return not_found();
    };
    let mut r = Response::new(Full::new(if head { Bytes::new() } else { Bytes::from(body) }));
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static(content_type(&file.to_string_lossy())),
    );
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv/novnc");
        assert_eq!(resolve(root, "/"), Some(root.join("vnc.html")));
        assert_eq!(resolve(root, "/core/rfb.js"), Some(root.join("core/rfb.js")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/core/../../x"), None);
        assert_eq!(resolve(root, "/%2e%2e/x"), None);
        assert_eq!(resolve(root, "/a//b"), None);
        assert_eq!(resolve(root, "/.git/config"), None);
    }
}
