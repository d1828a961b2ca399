//! Multipart update bodies (`POST /redfish/v1/UpdateService/update-multipart`): the first line
//! is the `Content-Type`, the rest the body. Parts are found as spans of the file the body was
//! streamed to, and the whole request is read as the handler reads it.
#![no_main]

#[path = "../common/scratch.rs"]
mod scratch;

use bmcd::firmware::package::{multipart_boundary, parse_multipart};
use bmcd::resources::update_service::read_multipart;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default();
    let Some(boundary) = multipart_boundary(content_type) else {
        return;
    };
    let file = scratch::file_with(body);
    let len = body.len() as u64;
    if let Ok(parts) = parse_multipart(file, len, &boundary) {
        assert!(parts.len() <= 8, "{} parts", parts.len());
        let mut end = 0;
        for p in &parts {
            assert!(p.body.offset >= end, "parts overlap");
            end = p.body.offset + p.body.len;
            assert!(end <= len, "a part beyond the body");
        }
    }
    match read_multipart(file, len, &boundary) {
        Ok((_, span)) => assert!(span.len > 0 && span.offset + span.len <= len),
        Err(e) => assert!(e.status.is_client_error(), "{:?}", e.status),
    }
});
