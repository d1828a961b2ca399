//! Header values: `Authorization: Basic`, `If-Match`/`If-None-Match` ETag lists, `Content-Type`
//! (JSON bodies, the multipart boundary of an update), `OData-Version`, and console-proxy's
//! token and header lists.
#![no_main]

use base64::Engine as _;
use bmcd::firmware::package::multipart_boundary;
use bmcd::fuzzing;
use console_proxy::fuzzing as proxy;
use libfuzzer_sys::fuzz_target;
use redfin_console_protocol::{is_token_shaped, TOKEN_CHARS};

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::odata_version(data);
    let Ok(v) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((user, pass)) = fuzzing::basic_credentials(v) {
        assert!(!user.contains(':'));
        let again = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        assert_eq!(fuzzing::basic_credentials(&again), Some((user, pass)));
    }
    let etag = bmcd::http::server::etag_of(data);
    let _ = fuzzing::etag_matches(v, Some(&etag));
    let _ = fuzzing::etag_matches(v, None);
    assert!(fuzzing::etag_matches(&format!("{v}, {etag}"), Some(&etag)));
    assert!(!fuzzing::etag_matches(v, None) || v.trim() != "*");
    let _ = fuzzing::is_json(v);
    assert!(fuzzing::is_json(&format!("application/json;{v}")));
    if let Some(b) = multipart_boundary(v) {
        assert!(!b.is_empty() && b.len() <= 70, "{b:?}");
        let again = multipart_boundary(&format!("multipart/form-data; boundary=\"{b}\""));
        assert_eq!(again.as_deref(), Some(b.as_str()));
    }
    if is_token_shaped(v) {
        assert_eq!(v.len(), TOKEN_CHARS);
    }
    if let Some(token) = proxy::query_param(Some(v), "token") {
        assert!(v.contains(&format!("token={token}")));
    }
    assert_eq!(
        proxy::has_token(Some(v), "binary"),
        proxy::has_token(Some(v), "BINARY")
    );
    assert!(proxy::has_token(Some(&format!("{v},binary")), "binary"));
});
