//! The route table: literal Redfish path templates, each with its method, the
//! privilege it requires and its handler. Every resource family registers its
//! routes from its own file; [`all_routes`] is the one list.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::app::App;
use crate::auth::Principal;
use crate::error::RedfishError;
use crate::model::BoxFuture;
use crate::privilege::Required;
use crate::resources;

/// What a handler gets.
pub struct Request {
    pub app: Arc<App>,
    pub method: Method,
    /// The normalized path (no trailing slash).
    pub path: String,
    /// Values of the `{...}` segments, in order, percent-decoded.
    pub params: Vec<String>,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `None` only on open routes.
    pub principal: Option<Principal>,
    pub client: SocketAddr,
    /// The per-VM BMC endpoint the request came in on; `None` on the
    /// aggregate listener.
    pub endpoint: Option<Arc<crate::personas::Endpoint>>,
    /// On upload routes: the body, streamed to a file (removed when dropped).
    pub upload: Option<crate::firmware::TempFile>,
}

impl Request {
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }

    /// The authenticated caller. Only open routes run without one, and they do
    /// not call this.
    pub fn principal(&self) -> Result<&Principal, RedfishError> {
        self.principal.as_ref().ok_or_else(RedfishError::unauthorized)
    }
}

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    Json {
        status: StatusCode,
        body: Value,
        headers: Vec<(&'static str, HeaderValue)>,
    },
    /// A body in another media type (`$metadata` is XML).
    Raw {
        content_type: &'static str,
        body: Bytes,
    },
    NoContent,
    /// A file of the web UI, embedded in the binary (gzip-compressed when
    /// `gzip`); served with a strong ETag and the page's security headers.
    Static {
        content_type: &'static str,
        body: &'static [u8],
        gzip: bool,
    },
    /// The resource lives at another URI (308).
    Moved {
        location: String,
    },
    /// A server-sent event stream (`text/event-stream`) of the events the
    /// filter accepts, until the client goes away.
    EventStream {
        events: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::events::EventRecord>>,
        filter: crate::events::Filter,
    },
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::Json {
            status: StatusCode::OK,
            body,
            headers: Vec::new(),
        }
    }

    pub fn created(location: &str, body: Value) -> Reply {
        let mut headers = Vec::new();
        if let Ok(v) = HeaderValue::from_str(location) {
            headers.push(("location", v));
        }
        Reply::Json {
            status: StatusCode::CREATED,
            body,
            headers,
        }
    }

    /// 202 with a task monitor to poll.
    pub fn accepted(monitor: &str, task: Value) -> Reply {
        let mut headers = Vec::new();
        if let Ok(v) = HeaderValue::from_str(monitor) {
            headers.push(("location", v));
        }
        Reply::Json {
            status: StatusCode::ACCEPTED,
            body: task,
            headers,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: HeaderValue) -> Reply {
        if let Reply::Json { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }
}

pub type Handler = fn(Request) -> BoxFuture<'static, Result<Reply, RedfishError>>;

/// One entry of the route table.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub required: Required,
    pub handler: Handler,
    /// The OData `$` query options this route understands.
    pub query: &'static [&'static str],
    /// The body is streamed to a file (firmware packages) instead of being
    /// read into memory under the JSON body limit.
    pub upload: bool,
}

impl Route {
    pub const fn new(method: Method, path: &'static str, required: Required, handler: Handler) -> Route {
        Route {
            method,
            path,
            required,
            handler,
            query: &[],
            upload: false,
        }
    }

    /// Declares an upload route: the body goes to a file, up to the firmware
    /// package limit.
    pub const fn upload(mut self) -> Route {
        self.upload = true;
        self
    }

    /// Declares the `$` query options the handler reads.
    pub const fn accepting(mut self, query: &'static [&'static str]) -> Route {
        self.query = query;
        self
    }
}

/// Declares a route: `route!(GET "/redfish/v1/Systems", Required::LOGIN, get_system_collection)`.
#[macro_export]
macro_rules! route {
    ($method:ident $path:literal, $required:expr, $handler:path) => {
        $crate::router::Route::new(::hyper::Method::$method, $path, $required, |r| {
            ::std::boxed::Box::pin($handler(r))
        })
    };
}

/// Every route bmcd serves.
pub fn all_routes() -> Vec<Route> {
    let mut routes = Vec::new();
    routes.extend(resources::service_root::routes());
    routes.extend(resources::registries::routes());
    routes.extend(resources::json_schemas::routes());
    routes.extend(resources::session_service::routes());
    routes.extend(resources::account_service::routes());
    routes.extend(resources::certificate_service::routes());
    routes.extend(resources::systems::routes());
    routes.extend(resources::storage::routes());
    routes.extend(resources::aggregation_service::routes());
    routes.extend(resources::projects::routes());
    routes.extend(resources::composition::routes());
    routes.extend(resources::consoles::routes());
    routes.extend(resources::bios::routes());
    routes.extend(resources::chassis::routes());
    routes.extend(resources::managers::routes());
    routes.extend(resources::task_service::routes());
    routes.extend(resources::event_service::routes());
    routes.extend(resources::log_services::routes());
    routes.extend(resources::virtual_media::routes());
    routes.extend(resources::bmc_endpoints::routes());
    routes.extend(resources::update_service::routes());
    routes.extend(resources::operations::routes());
    #[cfg(feature = "webui")]
    routes.extend(resources::webui::routes());
    routes
}

enum Segment {
    Literal(&'static str),
    Param,
}

struct Compiled {
    route: Route,
    segments: Vec<Segment>,
}

pub struct Router {
    routes: Vec<Compiled>,
}

/// The outcome of matching a request line.
pub enum Match<'a> {
    Found(&'a Route, Vec<String>),
    /// The path exists but not for this method; the value is the `Allow` list.
    MethodNotAllowed(String),
    NotFound,
}

pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Strips a trailing slash (but keeps `/`).
pub fn normalize(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// The segments of a path; none when it does not start with `/` (it then names no route).
fn segments(path: &str) -> Option<Vec<&str>> {
    Some(normalize(path).strip_prefix('/')?.split('/').collect())
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let routes = routes
            .into_iter()
            .map(|route| {
                let segments = route
                    .path
                    .split('/')
                    .skip(1)
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(s)
                        }
                    })
                    .collect();
                Compiled { route, segments }
            })
            .collect();
        Router { routes }
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|c| &c.route)
    }

    fn captures(c: &Compiled, parts: &[&str]) -> Option<Vec<String>> {
        if c.segments.len() != parts.len() {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in c.segments.iter().zip(parts) {
            match seg {
                Segment::Literal(l) => {
                    if l != part {
                        return None;
                    }
                }
                Segment::Param => {
                    if part.is_empty() {
                        return None;
                    }
                    params.push(percent_decode(part)?);
                }
            }
        }
        Some(params)
    }

    /// The `Allow` value of the template that `path` matches.
    pub fn allow(&self, path: &str) -> Option<String> {
        let parts = segments(path)?;
        let mut methods: Vec<&str> = Vec::new();
        for c in &self.routes {
            if Router::captures(c, &parts).is_some() {
                methods.push(c.route.method.as_str());
                if c.route.method == Method::GET {
                    methods.push("HEAD");
                }
            }
        }
        if methods.is_empty() {
            None
        } else {
            Some(methods.join(", "))
        }
    }

    /// `path` spelled as a route spells its literal segments, when it matches
    /// one ignoring ASCII case (iLO clients write `systems/1/bios`).
    pub fn canonical_case(&self, path: &str) -> Option<String> {
        let parts = segments(path)?;
        self.routes.iter().find_map(|c| {
            if c.segments.len() != parts.len() {
                return None;
            }
            let mut out = String::with_capacity(path.len());
            for (seg, part) in c.segments.iter().zip(&parts) {
                out.push('/');
                match seg {
                    Segment::Literal(l) if l.eq_ignore_ascii_case(part) => out.push_str(l),
                    Segment::Param if !part.is_empty() => out.push_str(part),
                    _ => return None,
                }
            }
            Some(out)
        })
    }

    pub fn find(&self, method: &Method, path: &str) -> Match<'_> {
        let Some(parts) = segments(path) else {
            return Match::NotFound;
        };
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let mut path_exists = false;
        for c in &self.routes {
            if let Some(params) = Router::captures(c, &parts) {
                if c.route.method == *method {
                    return Match::Found(&c.route, params);
                }
                path_exists = true;
            }
        }
        if path_exists {
            Match::MethodNotAllowed(self.allow(path).unwrap_or_default())
        } else {
            Match::NotFound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_well_formed_and_unique() {
        let router = Router::new(all_routes());
        let mut seen = std::collections::HashSet::new();
        for r in router.routes() {
            // Besides the Redfish tree: the operations endpoints and the web UI.
            let operations = matches!(r.path, "/metrics" | "/health" | "/ready");
            let webui = r.path == "/" || r.path.starts_with("/ui");
            assert!(
                r.path.starts_with("/redfish") || operations || webui,
                "{}",
                r.path
            );
            assert!(!r.path.ends_with('/') || r.path == "/", "{}", r.path);
            assert!(
                seen.insert((r.method.clone(), r.path)),
                "duplicate {} {}",
                r.method,
                r.path
            );
            let open = matches!(r.required, Required::Open);
            let may_be_open = matches!(
                (r.method.as_str(), r.path),
                ("GET", "/redfish")
                    | ("GET", "/redfish/v1")
                    | ("GET", "/redfish/v1/odata")
                    | ("GET", "/redfish/v1/$metadata")
                    | ("POST", "/redfish/v1/SessionService/Sessions")
                    | ("POST", "/redfish/v1/SessionService/Sessions/Members")
                    | ("GET", "/health")
                    | ("GET", "/ready")
                    | ("GET", "/")
                    | ("GET", "/ui")
                    | ("GET", "/ui/{file}")
            );
            assert_eq!(open, may_be_open, "{} {} open={open}", r.method, r.path);
        }
    }

    #[test]
    fn matching_captures_params_and_reports_405() {
        let router = Router::new(all_routes());
        match router.find(&Method::GET, "/redfish/v1/Systems/abc%2Ddef/") {
            Match::Found(r, params) => {
                assert_eq!(r.path, "/redfish/v1/Systems/{id}");
                assert_eq!(params, vec!["abc-def".to_owned()]);
            }
            _ => panic!("no match"),
        }
        match router.find(&Method::DELETE, "/redfish/v1") {
            Match::MethodNotAllowed(allow) => assert!(allow.contains("GET")),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            router.find(&Method::GET, "/redfish/v1/Nope"),
            Match::NotFound
        ));
        assert!(matches!(
            router.find(&Method::GET, "/redfish/v1/Systems/%zz"),
            Match::NotFound
        ));
        assert!(matches!(
            router.find(&Method::HEAD, "/redfish/v1"),
            Match::Found(..)
        ));
    }

    // Found by the `path` fuzz target (fuzz/regressions/path): the first segment was skipped
    // whatever it was, so a path without its leading `/` matched as if it had one.
    #[test]
    fn only_absolute_paths_match() {
        let router = Router::new(all_routes());
        assert!(matches!(
            router.find(&Method::GET, "t-/redfish/v1/Systems/abc%2Ddef/"),
            Match::NotFound
        ));
        assert!(router.allow("x/redfish/v1").is_none());
        assert!(router.canonical_case("t-/redfish/v1/systems/1").is_none());
        assert!(router.canonical_case("/redfish/v1/systems/1").is_some());
    }
}
