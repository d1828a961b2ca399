//! Entry points for the fuzz targets (`fuzz/`, see docs/reliability.md): the parsers of
//! outside input that are private to their modules, each called as the request path calls it.
//! Not an API: nothing else uses this module.

use crate::json;
use serde_json::Value;

use crate::error::RedfishError;
use crate::http::server::{self, Expand, Paging};
use crate::outbound::Url;
use crate::router::{percent_decode, Reply};

/// `$top` and `$skip` of a query string.
pub fn paging(query: &str) -> Result<(Option<usize>, Option<usize>), RedfishError> {
    Paging::parse(Some(query)).map(|p| (p.top, p.skip))
}

/// `$expand` of a query string: `*`, `.` or `~`.
pub fn expand(query: &str) -> Result<Option<char>, RedfishError> {
    Ok(Expand::parse(Some(query))?.map(|e| match e {
        Expand::All => '*',
        Expand::NoLinks => '.',
        Expand::Links => '~',
    }))
}

/// The check of a query's options against those a route accepts.
pub fn check_query(query: &str, accepted: &[&str], paging: bool) -> Result<(), RedfishError> {
    server::check_query(Some(query), accepted, paging)
}

/// A collection of `members` members at `path`, cut to the page `query` asks for.
pub fn page(path: &str, query: &str, members: usize) -> Result<Value, RedfishError> {
    let paging = Paging::parse(Some(query))?;
    let body = json!({
        "@odata.id": path,
        "Members@odata.count": members,
        "Members": (0..members).map(|i| json!({"@odata.id": format!("{path}/{i}")})).collect::<Vec<_>>(),
    });
    match paging.apply(path, Some(query), Reply::ok(body))? {
        Reply::Json { body, .. } => Ok(body),
        _ => Err(RedfishError::internal()),
    }
}

/// A `$filter` value as it stands in the query string, decoded as the handlers decode it.
fn filter_text(raw: &str) -> String {
    percent_decode(&raw.replace('+', " ")).unwrap_or_default()
}

/// The clauses of a log entry collection's `$filter`.
pub fn log_filter(raw: &str) -> Result<Vec<(String, String, String)>, String> {
    crate::resources::log_services::EntryFilter::parse(&filter_text(raw)).map(|f| f.0)
}

/// An SSE stream's `$filter`.
pub fn sse_filter(raw: &str) -> Result<crate::events::Filter, String> {
    crate::events::Filter::parse(&filter_text(raw))
}

/// User name and password of an `Authorization` header.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    server::basic_credentials(value)
}

/// Whether an `If-Match`/`If-None-Match` list names the current ETag.
pub fn etag_matches(list: &str, current: Option<&str>) -> bool {
    server::etag_list_matches(list, current)
}

/// Whether a `Content-Type` is accepted for a JSON body.
pub fn is_json(content_type: &str) -> bool {
    server::is_json(content_type)
}

/// The `OData-Version` check, for a header value as hyper hands it over.
pub fn odata_version(value: &[u8]) -> Result<(), RedfishError> {
    let mut headers = hyper::HeaderMap::new();
    if let Ok(v) = hyper::header::HeaderValue::from_bytes(value) {
        headers.insert("odata-version", v);
    }
    server::check_odata_version(&headers)
}

/// An outbound URL (virtual media image, update image, event destination), normalized to
/// `scheme://authority/target`.
pub fn url(input: &str) -> Result<String, String> {
    let u = Url::parse(input).map_err(|e| e.to_string())?;
    Ok(format!("{}://{}{}", u.scheme(), u.authority(), u.target))
}

/// A redirect's `Location` resolved against `base`, normalized as [`url`] does.
pub fn url_join(base: &str, location: &str) -> Result<String, String> {
    let u = Url::parse(base)
        .and_then(|b| b.join(location))
        .map_err(|e| e.to_string())?;
    Ok(format!("{}://{}{}", u.scheme(), u.authority(), u.target))
}
