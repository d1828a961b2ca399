//! Listeners and the request pipeline: TLS accept under a connection limit,
//! route, authenticate, authorize, read the body within bounds, call the handler,
//! and write the response with Redfish's headers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use ring::digest;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::auth::Principal;
use crate::error::RedfishError;
use crate::personas::Endpoint;
use crate::privilege::Required;
use crate::router::{normalize, Match, Reply, Request, Router};

pub type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Bounds on what one client may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Of `max_connections`, how many one client address may hold.
    pub max_connections_per_client: usize,
    pub max_header_bytes: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Open connections per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One client's hold on a connection; released when dropped.
struct ClientSlot {
    counts: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Counts connections closed at accept, and warns at most once a second.
struct Refusals {
    count: u64,
    last_warning: Option<Instant>,
}

impl Refusals {
    fn refused(&mut self, peer: SocketAddr, why: &'static str) {
        self.count += 1;
        if self
            .last_warning
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(client = %peer, refused = self.count, "{why}; closing new connection");
            self.last_warning = Some(Instant::now());
            self.count = 0;
        }
    }
}

/// Serves HTTPS on `listener` until `shutdown` turns true, then drains
/// in-flight requests for at most `limits.shutdown_grace`.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    endpoint: Option<Arc<Endpoint>>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let mut refusals = Refusals {
        count: 0,
        last_warning: None,
    };
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(client_slot) = per_client.take(peer.ip(), limits.max_connections_per_client) else {
                    refusals.refused(peer, "connection limit per client reached");
                    drop(tcp);
                    continue;
                };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    refusals.refused(peer, "connection limit reached");
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let app = Arc::clone(&app);
                let endpoint = endpoint.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = (permit, client_slot);
                    let stream = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(client = %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    // A client certificate rustls verified against the client
                    // CAs names the account the connection's requests act as.
                    let certificate_user: Option<Arc<str>> = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(crate::certificates::client_user_name)
                        .map(Arc::from);
                    let service = service_fn(move |req| {
                        let caller = Caller { address: peer, certificate_user: certificate_user.clone() };
                        handle(Arc::clone(&app), endpoint.clone(), caller, req)
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_read_timeout)
                        .max_buf_size(limits.max_header_bytes.max(8192))
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(client = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

/// Serves plain HTTP that only redirects to the HTTPS listener.
pub async fn serve_redirect(listener: TcpListener, https_port: u16, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(64));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else { continue };
                tokio::spawn(async move {
                    let _permit = permit;
                    let service = service_fn(move |req: hyper::Request<Incoming>| async move {
                        Ok::<_, Infallible>(redirect_response(&req, https_port))
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(tcp), service);
                    let _ = conn.await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

fn redirect_response(req: &hyper::Request<Incoming>, https_port: u16) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            // Drop a port, keeping IPv6 literals whole.
            if h.starts_with('[') {
                h.split(']').next().map(|s| format!("{s}]")).unwrap_or_default()
            } else {
                h.split(':').next().unwrap_or("").to_owned()
            }
        })
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("https://{host}:{https_port}{path}");
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Who is at the other end of a connection.
struct Caller {
    address: SocketAddr,
    /// The account a verified client certificate names.
    certificate_user: Option<Arc<str>>,
}

/// One request, start to end. Never fails: every error becomes a Redfish error body.
async fn handle(
    app: Arc<App>,
    endpoint: Option<Arc<Endpoint>>,
    caller: Caller,
    req: hyper::Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let _in_flight = crate::metrics::InFlight::start();
    let started = std::time::Instant::now();
    let client = caller.address;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let head = method == Method::HEAD;
    let mut template = "unmatched";
    let outcome = dispatch(&app, endpoint.as_ref(), &caller, req, &mut template).await;
    let (resp, user) = match outcome {
        Ok(d) => (
            render(&method, d.router, &d.path, d.reply, d.etag, d.if_none_match),
            d.user,
        ),
        Err((e, user)) => (render_error(e, endpoint.as_deref()), user),
    };
    let status = resp.status();
    crate::metrics::record_request(
        crate::metrics::method_label(&method),
        template,
        status.as_u16(),
        started.elapsed(),
    );
    // Audited: every state-changing request of an authenticated caller, and
    // every login attempt. Anonymous noise is not, so it cannot push real
    // entries out of the retained window.
    let login = method == Method::POST && path.starts_with("/redfish/v1/SessionService/Sessions");
    if method != Method::GET && method != Method::HEAD && (user.is_some() || login) {
        app.logs.audit(
            user.as_deref().unwrap_or("-"),
            &client.ip().to_string(),
            method.as_str(),
            &path,
            status.as_u16(),
        );
    }
    if status.is_server_error() {
        tracing::error!(%method, %path, %client, status = status.as_u16(), user = user.as_deref().unwrap_or("-"), "request failed");
    } else if method != Method::GET && method != Method::HEAD {
        tracing::info!(%method, %path, %client, status = status.as_u16(), user = user.as_deref().unwrap_or("-"), "request");
    } else {
        tracing::debug!(%method, %path, %client, status = status.as_u16(), "request");
    }
    let mut resp = resp;
    if head {
        *resp.body_mut() = full(Bytes::new());
    }
    Ok(resp)
}

/// A handled request, ready to render.
struct Dispatched<'a> {
    reply: Reply,
    /// The router that served it (for `Allow`) and the path it matched.
    router: &'a Router,
    path: String,
    user: Option<String>,
    if_none_match: Option<String>,
    /// The ETag of the canonical representation (a persona's rendering of
    /// a resource carries the same ETag as the canonical one).
    etag: Option<String>,
}

/// The path a request names, and the router that serves it: the persona's
/// own routes first, then the canonical routes through the persona's path map.
fn resolve<'a>(
    app: &'a App,
    endpoint: Option<&Arc<Endpoint>>,
    method: &Method,
    raw: &str,
) -> (String, &'a Router) {
    let norm = normalize(raw);
    let Some(ep) = endpoint else {
        return (norm.to_owned(), &app.router);
    };
    let own = app.personas.of(ep.persona);
    let own_path = if ep.ignores_case() {
        own.canonical_case(norm).unwrap_or_else(|| norm.to_owned())
    } else {
        norm.to_owned()
    };
    if matches!(own.find(method, &own_path), Match::Found(..)) {
        return (own_path, own);
    }
    let mut canonical = ep.to_canonical(norm);
    if ep.ignores_case() {
        if let Some(c) = app.router.canonical_case(&canonical) {
            canonical = c;
        }
    }
    (canonical, &app.router)
}

async fn dispatch<'a>(
    app: &'a Arc<App>,
    endpoint: Option<&Arc<Endpoint>>,
    caller: &Caller,
    req: hyper::Request<Incoming>,
    template: &mut &'static str,
) -> Result<Dispatched<'a>, (RedfishError, Option<String>)> {
    let client = caller.address;
    let certificate_user = caller.certificate_user.as_deref();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_owned();
    let trailing_slash = raw_path.len() > 1 && raw_path.ends_with('/');
    let (path, router) = resolve(app, endpoint, &method, &raw_path);
    let persona_route = !std::ptr::eq(router, &app.router);
    let in_scope = persona_route || endpoint.is_none_or(|ep| ep.in_scope(&path));
    let query = req.uri().query().map(str::to_owned);

    let found = match router.find(&method, &path) {
        Match::Found(route, params) if in_scope => Some((route, params)),
        _ => None,
    };
    let open = matches!(found, Some((route, _)) if route.required == Required::Open);
    if let Some((route, _)) = &found {
        *template = route.path;
    }

    // Rate limits: per address before anything else (login attempts
    // included), per user once the caller is known. Probes are never limited.
    let probe = matches!(*template, "/health" | "/ready");
    if !probe {
        app.rate_limits
            .address
            .check(&client.ip(), std::time::Instant::now())
            .map_err(|secs| {
                crate::metrics::record_rate_limited(crate::metrics::LimitedBy::Address);
                (RedfishError::too_many_requests(secs), None)
            })?;
    }

    // Everything but the open routes needs a caller, even to learn that a URI
    // does not exist.
    let principal = if open {
        // An open resource needs no caller, but an expanded one shows what its
        // references name, as far as the caller may see: credentials count if
        // they are good, and are ignored (anonymous) if not.
        let wants_expand = query.as_deref().is_some_and(|q| q.contains("$expand"));
        let has_credentials = req.headers().contains_key("x-auth-token")
            || req.headers().contains_key(header::AUTHORIZATION)
            || certificate_user.is_some();
        // A persona may show more to a logged-in caller (iLO's root does).
        if (wants_expand || endpoint.is_some()) && has_credentials {
            authenticate(app, endpoint, req.headers(), certificate_user)
                .await
                .ok()
        } else {
            None
        }
    } else {
        Some(
            authenticate(app, endpoint, req.headers(), certificate_user)
                .await
                .map_err(|e| (e, None))?,
        )
    };
    let user = principal.as_ref().map(|p| p.user_name.clone());
    let fail = |e: RedfishError| (e, user.clone());
    if let (Some(name), false) = (&user, probe) {
        app.rate_limits
            .user
            .check(name, std::time::Instant::now())
            .map_err(|secs| {
                crate::metrics::record_rate_limited(crate::metrics::LimitedBy::User);
                fail(RedfishError::too_many_requests(secs))
            })?;
    }

    let (route, params) = match found {
        Some(f) => f,
        None => {
            return Err(fail(match router.find(&method, &path) {
                Match::MethodNotAllowed(allow) if in_scope => RedfishError::method_not_allowed(allow),
                _ => RedfishError::no_such_uri(&raw_path),
            }))
        }
    };

    if let Some(p) = &principal {
        let held = match endpoint {
            // A project member reaches the endpoints of its own systems only.
            Some(ep) => {
                if let Some(project) = &p.project {
                    let owned = crate::tenancy::owned_systems(app, project).await.map_err(fail)?;
                    if !owned.contains(&ep.system_id) {
                        return Err(fail(RedfishError::unauthorized()));
                    }
                }
                p.privileges_on_own_system()
            }
            None => match crate::tenancy::check_route(app, p, route.path, &path)
                .await
                .map_err(fail)?
            {
                crate::tenancy::Reach::OwnSystem => p.privileges_on_own_system(),
                _ => p.privileges(),
            },
        };
        if !route.required.allows(held) {
            return Err(fail(RedfishError::insufficient_privilege()));
        }
        if p.password_change_required && !allowed_before_password_change(&method, route.path, &params, p) {
            return Err(fail(RedfishError::password_change_required(&format!(
                "/redfish/v1/AccountService/Accounts/{}",
                p.account_id
            ))));
        }
    }

    let paging = if method == Method::GET || method == Method::HEAD {
        Paging::parse(query.as_deref()).map_err(fail)?
    } else {
        Paging::default()
    };
    let expansion = if method == Method::GET || method == Method::HEAD {
        Expand::parse(query.as_deref()).map_err(fail)?
    } else {
        None
    };
    let mut accepted: Vec<&str> = route.query.to_vec();
    if expansion.is_some() {
        accepted.push("$expand");
    }
    check_query(query.as_deref(), &accepted, paging.given()).map_err(fail)?;
    check_odata_version(req.headers()).map_err(fail)?;

    let headers = req.headers().clone();
    let (body, upload) = if route.upload {
        (Bytes::new(), Some(read_upload(app, req).await.map_err(fail)?))
    } else {
        (read_body(app, &method, req).await.map_err(fail)?, None)
    };

    // Optimistic concurrency: a write that names an ETag must name the current
    // one, checked and applied under one lock.
    let mut _conditional = None;
    if matches!(
        method,
        Method::PATCH | Method::PUT | Method::DELETE | Method::POST
    ) {
        if let Some(if_match) = headers.get(header::IF_MATCH) {
            _conditional = Some(app.conditional_writes.lock().await);
            let if_match = if_match.to_str().unwrap_or("");
            let current = current_etag(app, client, &path, principal.clone())
                .await
                .map_err(fail)?;
            if !etag_list_matches(if_match, current.as_deref()) {
                return Err(fail(RedfishError::precondition_failed()));
            }
        }
    }

    let query_for_links = query.clone();
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let principal_for_expand = principal.clone();
    let scoped_project = match endpoint {
        None => crate::tenancy::project_of(principal.as_ref()).map(str::to_owned),
        Some(_) => None,
    };
    let route_path = route.path;
    let is_read = method == Method::GET || method == Method::HEAD;
    // What a persona's decoration sees of the request.
    let context = Request {
        app: Arc::clone(app),
        method: method.clone(),
        path: path.clone(),
        params: params.clone(),
        query: None,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        principal: principal.clone(),
        client,
        endpoint: endpoint.cloned(),
        upload: None,
    };
    let request = Request {
        app: Arc::clone(app),
        method,
        path: path.clone(),
        params,
        query,
        headers,
        body,
        principal,
        client,
        endpoint: endpoint.cloned(),
        upload,
    };
    let mut reply = (route.handler)(request).await.map_err(fail)?;
    if let (Some(project), Reply::Json { body, .. }) = (&scoped_project, &mut reply) {
        crate::tenancy::filter_collection(app, project, route_path, body)
            .await
            .map_err(fail)?;
    }
    let mut reply = paging
        .apply(&path, query_for_links.as_deref(), reply)
        .map_err(fail)?;
    let etag = match &mut reply {
        Reply::Json { status, body, .. } if is_read && *status == StatusCode::OK => {
            let etag = etag_of(&serde_json::to_vec(body).unwrap_or_default());
            // The same ETag in the body, as `@odata.etag`, for clients that
            // keep the representation rather than the headers.
            if let Some(o) = body.as_object_mut().filter(|o| o.contains_key("@odata.id")) {
                o.insert("@odata.etag".to_owned(), serde_json::Value::String(etag.clone()));
            }
            Some(etag)
        }
        _ => None,
    };
    if let (Some(how), Reply::Json { body, .. }) = (expansion, &mut reply) {
        expand(app, client, principal_for_expand, body, how)
            .await
            .map_err(fail)?;
    }
    if let Some(ep) = endpoint {
        present(
            &context,
            ep,
            route.path,
            persona_route,
            trailing_slash,
            &mut reply,
        )
        .await;
    }
    Ok(Dispatched {
        reply,
        router,
        path,
        user,
        if_none_match,
        etag,
    })
}

/// A reply as the endpoint's persona shows it: decorated with the vendor's
/// identity and OEM sections, links and `Location` in the persona's spelling.
async fn present(
    context: &Request,
    ep: &Arc<Endpoint>,
    template: &str,
    persona_route: bool,
    trailing_slash: bool,
    reply: &mut Reply,
) {
    match reply {
        Reply::Json { body, headers, .. } => {
            if !persona_route {
                crate::personas::decorate(context, ep, template, body).await;
            }
            ep.present(body, trailing_slash);
            for (name, value) in headers.iter_mut() {
                if name.eq_ignore_ascii_case("location") {
                    if let Some(v) = value
                        .to_str()
                        .ok()
                        .map(|l| ep.to_persona(l))
                        .and_then(|l| HeaderValue::from_str(&l).ok())
                    {
                        *value = v;
                    }
                }
            }
        }
        Reply::Moved { location } => *location = ep.to_persona(location),
        _ => {}
    }
}

fn allowed_before_password_change(method: &Method, template: &str, params: &[String], p: &Principal) -> bool {
    let own_account = params.first().map(String::as_str) == Some(&p.account_id.to_string());
    match (method.as_str(), template) {
        ("GET" | "PATCH", "/redfish/v1/AccountService/Accounts/{id}") => own_account,
        ("GET", "/redfish/v1/AccountService") => true,
        ("DELETE", "/redfish/v1/SessionService/Sessions/{id}") => {
            params.first().map(String::as_str) == p.session_id.as_deref()
        }
        _ => false,
    }
}

/// The caller of a request: a session token or Basic credentials when the
/// request carries them, else the account of a verified client certificate.
async fn authenticate(
    app: &App,
    endpoint: Option<&Arc<Endpoint>>,
    headers: &HeaderMap,
    certificate_user: Option<&str>,
) -> Result<Principal, RedfishError> {
    let scope = endpoint.map(|e| e.id.as_str());
    if let Some(token) = headers.get("x-auth-token") {
        let token = token.to_str().map_err(|_| RedfishError::unauthorized())?;
        let p = app.auth.authenticate_token(token)?;
        // An endpoint's own account works on that endpoint only.
        return match crate::auth::endpoint_of(&p.user_name) {
            Some(ep) if Some(ep) != scope => Err(RedfishError::unauthorized()),
            _ => Ok(p),
        };
    }
    if let Some(authz) = headers.get(header::AUTHORIZATION) {
        let authz = authz.to_str().map_err(|_| RedfishError::unauthorized())?;
        let (user, pass) = basic_credentials(authz).ok_or_else(RedfishError::unauthorized)?;
        return app.auth.authenticate_password_at(scope, &user, &pass).await;
    }
    if let Some(user) = certificate_user {
        return app.auth.authenticate_certificate_at(scope, user);
    }
    Err(RedfishError::unauthorized())
}

/// User name and password of an `Authorization: Basic` value.
pub(crate) fn basic_credentials(authz: &str) -> Option<(String, String)> {
    let (scheme, rest) = authz.split_once(' ').unwrap_or((authz, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(rest.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Query parameters: bmcd supports none of the OData `$` options yet, and says
/// so (501) rather than ignoring them; other parameters are ignored, as Redfish
/// requires.
/// `$top` and `$skip`, which every collection understands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) top: Option<usize>,
    pub(crate) skip: Option<usize>,
}

impl Paging {
    pub(crate) fn parse(query: Option<&str>) -> Result<Paging, RedfishError> {
        let mut p = Paging::default();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "$top" => &mut p.top,
                "$skip" => &mut p.skip,
                _ => continue,
            };
            *slot = Some(
                value
                    .parse()
                    .map_err(|_| RedfishError::query_parameter_value_format(value, name))?,
            );
        }
        Ok(p)
    }

    fn given(&self) -> bool {
        self.top.is_some() || self.skip.is_some()
    }

    /// Cuts a collection's members to the page; `Members@odata.count` stays the
    /// total, and `Members@odata.nextLink` points to the rest.
    pub(crate) fn apply(&self, path: &str, query: Option<&str>, reply: Reply) -> Result<Reply, RedfishError> {
        if !self.given() {
            return Ok(reply);
        }
        let Reply::Json {
            status,
            mut body,
            headers,
        } = reply
        else {
            return Err(RedfishError::query_not_supported_on_resource());
        };
        let Some(members) = body.get_mut("Members").and_then(|m| m.as_array_mut()) else {
            return Err(RedfishError::query_not_supported_on_resource());
        };
        let total = members.len();
        let skip = self.skip.unwrap_or(0).min(total);
        let top = self.top.unwrap_or(total);
        let page: Vec<serde_json::Value> = members.drain(..).skip(skip).take(top).collect();
        let next = skip + page.len();
        *members = page;
        if next < total && top > 0 {
            // The rest of the page's query (a $filter, say) carries over.
            let mut link = format!("{path}?$skip={next}&$top={top}");
            for pair in query.unwrap_or("").split('&') {
                if !pair.is_empty() && !pair.starts_with("$skip") && !pair.starts_with("$top") {
                    link.push('&');
                    link.push_str(pair);
                }
            }
            body["Members@odata.nextLink"] = crate::json!(link);
        }
        Ok(Reply::Json {
            status,
            body,
            headers,
        })
    }
}

pub(crate) fn check_query(query: Option<&str>, accepted: &[&str], paging: bool) -> Result<(), RedfishError> {
    let Some(q) = query else { return Ok(()) };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split_once('=').map(|(n, _)| n).unwrap_or(pair);
        if accepted.contains(&name) || (paging && matches!(name, "$top" | "$skip")) {
            continue;
        }
        if name.starts_with('$') || matches!(name, "only" | "excerpt" | "includeoriginresource") {
            return Err(RedfishError::query_parameter_unsupported(name));
        }
    }
    Ok(())
}

/// Redfish speaks OData 4.0; a client that asks for another version gets 412.
pub(crate) fn check_odata_version(headers: &HeaderMap) -> Result<(), RedfishError> {
    match headers.get("odata-version").map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(v) if v.trim() == "4.0" => Ok(()),
        Some(v) => Err(RedfishError::new(
            StatusCode::PRECONDITION_FAILED,
            crate::error::Message::new(
                &crate::registries::base::HEADER_INVALID,
                &[&format!("OData-Version: {v}")],
            )
            .resolution("This service supports OData-Version 4.0."),
        )),
    }
}

/// Time allowed for a whole upload.
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);
/// Room for the multipart framing and parameters around a package.
const UPLOAD_SLACK: u64 = 64 << 10;

/// Streams an upload route's body to a file in the firmware work directory,
/// within the package limit (plus the multipart framing) and a time limit.
async fn read_upload(
    app: &App,
    req: hyper::Request<Incoming>,
) -> Result<crate::firmware::TempFile, RedfishError> {
    use tokio::io::AsyncWriteExt as _;
    if !app.firmware.enabled() {
        return Err(crate::firmware::not_configured());
    }
    let limit = app.firmware.max_package_bytes().saturating_add(UPLOAD_SLACK);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RedfishError::payload_too_large());
    }
    let dir = app.firmware.work_dir().to_owned();
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, dir = %dir.display(), "cannot create the firmware work directory");
            RedfishError::internal()
        })?;
    let mut nonce = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| RedfishError::internal())?;
    let name: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("upload-{name}"));
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot create an upload file");
            RedfishError::internal()
        })?;
    let guard = crate::firmware::TempFile(path);
    let copy = async move {
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut body = req.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| RedfishError::malformed_json())?;
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > limit {
                    return Err(RedfishError::payload_too_large());
                }
                out.write_all(&data).await.map_err(|e| {
                    tracing::error!(error = %e, "writing an upload failed");
                    RedfishError::new(
                        hyper::StatusCode::INSUFFICIENT_STORAGE,
                        crate::error::Message::new(&crate::registries::base::INSUFFICIENT_STORAGE, &[]),
                    )
                })?;
            }
        }
        out.flush().await.map_err(|_| RedfishError::internal())?;
        Ok(())
    };
    match tokio::time::timeout(UPLOAD_TIMEOUT, copy).await {
        Ok(Ok(())) => Ok(guard),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RedfishError::new(
            hyper::StatusCode::REQUEST_TIMEOUT,
            crate::error::Message::new(&crate::registries::base::OPERATION_TIMEOUT, &[]),
        )),
    }
}

async fn read_body(app: &App, method: &Method, req: hyper::Request<Incoming>) -> Result<Bytes, RedfishError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return Err(RedfishError::payload_too_large());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(req.into_body(), app.max_body_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                RedfishError::payload_too_large()
            } else {
                RedfishError::malformed_json()
            }
        })?
        .to_bytes();
    if !body.is_empty() && matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        if let Some(ct) = content_type.filter(|ct| !is_json(ct)) {
            return Err(RedfishError::unsupported_media_type(&ct));
        }
    }
    Ok(body)
}

/// Whether a `Content-Type` names JSON (`application/json` or a `+json` type).
pub(crate) fn is_json(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || media.ends_with("+json")
}

/// The JSON representation of another resource, read as `principal` would
/// read it; `None` when there is no such resource or the caller may not read it.
async fn read_resource(
    app: &Arc<App>,
    client: SocketAddr,
    path: &str,
    principal: Option<Principal>,
) -> Result<Option<serde_json::Value>, RedfishError> {
    let Match::Found(route, params) = app.router.find(&Method::GET, normalize(path)) else {
        return Ok(None);
    };
    let held = match &principal {
        Some(p) => match crate::tenancy::check_route(app, p, route.path, normalize(path)).await {
            Ok(crate::tenancy::Reach::OwnSystem) => Some(p.privileges_on_own_system()),
            Ok(_) => Some(p.privileges()),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    match &principal {
        Some(_) if !held.is_some_and(|h| route.required.allows(h)) => return Ok(None),
        // Anonymous callers see only what is open to everybody.
        None if route.required != Required::Open => return Ok(None),
        _ => {}
    }
    let principal_read = principal.clone();
    let request = Request {
        app: Arc::clone(app),
        method: Method::GET,
        path: normalize(path).to_owned(),
        params,
        query: None,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        principal,
        client,
        endpoint: None,
        upload: None,
    };
    let project = crate::tenancy::project_of(principal_read.as_ref()).map(str::to_owned);
    match (route.handler)(request).await? {
        Reply::Json { mut body, .. } => {
            if let Some(project) = project {
                crate::tenancy::filter_collection(app, &project, route.path, &mut body).await?;
            }
            Ok(Some(body))
        }
        _ => Ok(None),
    }
}

async fn current_etag(
    app: &Arc<App>,
    client: SocketAddr,
    path: &str,
    principal: Option<Principal>,
) -> Result<Option<String>, RedfishError> {
    Ok(read_resource(app, client, path, principal)
        .await?
        .map(|body| etag_of(&serde_json::to_vec(&body).unwrap_or_default())))
}

/// `$expand`: `*` (everything), `.` (not `Links`) or `~` (only `Links`), one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expand {
    All,
    NoLinks,
    Links,
}

impl Expand {
    pub(crate) fn parse(query: Option<&str>) -> Result<Option<Expand>, RedfishError> {
        for pair in query.unwrap_or("").split('&') {
            let Some(raw) = pair.strip_prefix("$expand=") else {
                continue;
            };
            let value = crate::router::percent_decode(raw).unwrap_or_default();
            let (kind, levels) = match value.split_once('(') {
                Some((k, rest)) => (k, Some(rest.trim_end_matches(')'))),
                None => (value.as_str(), None),
            };
            if let Some(levels) = levels {
                match levels.strip_prefix("$levels=").map(str::parse::<u32>) {
                    Some(Ok(1)) => {}
                    Some(Ok(_)) => {
                        return Err(RedfishError::bad_request(crate::error::Message::new(
                            &crate::registries::base::QUERY_PARAMETER_OUT_OF_RANGE,
                            &[levels, "$expand", "$levels=1"],
                        )))
                    }
                    _ => return Err(RedfishError::query_parameter_value_format(&value, "$expand")),
                }
            }
            return match kind {
                "*" => Ok(Some(Expand::All)),
                "." => Ok(Some(Expand::NoLinks)),
                "~" => Ok(Some(Expand::Links)),
                _ => Err(RedfishError::query_parameter_value_format(&value, "$expand")),
            };
        }
        Ok(None)
    }
}

/// A bare reference: `{"@odata.id": uri}` and nothing else.
fn reference(v: &serde_json::Value) -> Option<String> {
    let o = v.as_object()?;
    (o.len() == 1).then(|| o.get("@odata.id")?.as_str().map(str::to_owned))?
}

/// Replaces references in `body` with the resources they name (one level).
/// A reference the caller may not read, or that is gone, stays a reference;
/// a member that cannot be read now (a 5xx, such as libvirt unavailable)
/// fails the whole answer rather than leaving it silently unexpanded.
async fn expand(
    app: &Arc<App>,
    client: SocketAddr,
    principal: Option<Principal>,
    body: &mut serde_json::Value,
    how: Expand,
) -> Result<(), RedfishError> {
    // Where the references are: (top-level key, index in an array or None).
    let mut targets: Vec<(Vec<String>, Option<usize>, String)> = Vec::new();
    let Some(obj) = body.as_object() else {
        return Ok(());
    };
    let mut collect = |path: Vec<String>, v: &serde_json::Value| {
        if let Some(uri) = reference(v) {
            targets.push((path, None, uri));
        } else if let Some(items) = v.as_array() {
            for (i, item) in items.iter().enumerate() {
                if let Some(uri) = reference(item) {
                    targets.push((path.clone(), Some(i), uri));
                }
            }
        }
    };
    for (k, v) in obj {
        if k == "Links" {
            if how != Expand::NoLinks {
                if let Some(links) = v.as_object() {
                    for (lk, lv) in links {
                        collect(vec![k.clone(), lk.clone()], lv);
                    }
                }
            }
        } else if how != Expand::Links && !k.starts_with('@') && k != "Actions" {
            collect(vec![k.clone()], v);
        }
    }
    let mut reads = tokio::task::JoinSet::new();
    for (n, (_, _, uri)) in targets.iter().enumerate() {
        let (app, principal, uri) = (Arc::clone(app), principal.clone(), uri.clone());
        reads.spawn(async move { (n, read_resource(&app, client, &uri, principal).await) });
    }
    let mut found: Vec<Option<serde_json::Value>> = vec![None; targets.len()];
    while let Some(done) = reads.join_next().await {
        match done {
            Ok((n, Ok(Some(v)))) => found[n] = Some(v),
            Ok((_, Ok(None))) => {}
            Ok((_, Err(e))) if e.status.is_server_error() => return Err(e),
            Ok((_, Err(_))) => {}
            Err(_) => return Err(RedfishError::internal()),
        }
    }
    for ((path, index, _), value) in targets.into_iter().zip(found) {
        let Some(value) = value else { continue };
        let mut slot = &mut *body;
        for key in &path {
            slot = &mut slot[key.as_str()];
        }
        match index {
            Some(i) => slot[i] = value,
            None => *slot = value,
        }
    }
    Ok(())
}

/// A weak validator from the representation's bytes.
pub fn etag_of(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, bytes);
    let hex: String = d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

pub(crate) fn etag_list_matches(list: &str, current: Option<&str>) -> bool {
    let list = list.trim();
    if list == "*" {
        return current.is_some();
    }
    let Some(current) = current else { return false };
    // Weak or strong, quoted or not (sushy sends iLO's BIOS ETag bare).
    let opaque = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_owned();
    list.split(',').any(|t| opaque(t) == opaque(current))
}

/// The JSON schema a resource's `@odata.type` names, for `Link: rel=describedby`.
fn described_by(body: &serde_json::Value) -> Option<String> {
    let t = body.get("@odata.type")?.as_str()?.strip_prefix('#')?;
    let (namespace, _) = t.rsplit_once('.')?;
    let (family, _) = namespace.split_once('.').unwrap_or((namespace, ""));
    // Only schemas /redfish/v1/JsonSchemas lists have a place to point to.
    crate::schemas::by_family(family)?;
    Some(format!("</redfish/v1/JsonSchemas/{family}>; rel=describedby"))
}

fn base_headers(h: &mut HeaderMap) {
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    // A handler may ask for more (`no-store` on answers that carry a secret).
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn render(
    method: &Method,
    router: &Router,
    path: &str,
    reply: Reply,
    etag: Option<String>,
    if_none_match: Option<String>,
) -> Response<Body> {
    let is_read = *method == Method::GET || *method == Method::HEAD;
    let mut resp = match reply {
        Reply::Json {
            status,
            body,
            headers,
        } => {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let etag = (is_read && status == StatusCode::OK).then(|| etag.unwrap_or_else(|| etag_of(&bytes)));
            let not_modified =
                matches!((&etag, &if_none_match), (Some(e), Some(inm)) if etag_list_matches(inm, Some(e)));
            let mut resp = if not_modified {
                let mut r = Response::new(full(Bytes::new()));
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                r
            } else {
                let mut r = Response::new(full(bytes));
                *r.status_mut() = status;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                r
            };
            if let Some(e) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
                resp.headers_mut().insert(header::ETAG, e);
            }
            if is_read {
                if let Some(link) = described_by(&body).and_then(|l| HeaderValue::from_str(&l).ok()) {
                    resp.headers_mut().insert(header::LINK, link);
                }
            }
            for (name, value) in headers {
                resp.headers_mut().insert(name, value);
            }
            resp
        }
        Reply::Raw { content_type, body } => {
            let mut r = Response::new(full(body));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Reply::Static {
            content_type,
            body,
            gzip,
        } => static_file(content_type, body, gzip, if_none_match.as_deref()),
        Reply::EventStream { events, filter } => {
            let mut r = Response::new(event_stream(events, filter));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            r
        }
        Reply::Moved { location } => {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Reply::NoContent => {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    };
    if is_read {
        if let Some(allow) = router.allow(path).and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
    }
    base_headers(resp.headers_mut());
    resp
}

/// The page may load its own files only, talk to this service and to a
/// console WebSocket, and may not be framed.
const WEBUI_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                         frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A web UI file: a strong ETag from its bytes (revalidated on every use),
/// 304 when the client has it.
fn static_file(
    content_type: &'static str,
    body: &'static [u8],
    gzip: bool,
    if_none_match: Option<&str>,
) -> Response<Body> {
    let d = digest::digest(&digest::SHA256, body);
    let hex: String = d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{hex}\"");
    let mut r = if if_none_match.is_some_and(|inm| etag_list_matches(inm, Some(&etag))) {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(full(Bytes::from_static(body)));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if gzip {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WEBUI_CSP),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

/// A body that forwards matching events as SSE frames, with a comment line
/// every 15 s so that a client gone away is noticed and the stream ends.
fn event_stream(
    mut events: tokio::sync::broadcast::Receiver<Arc<crate::events::EventRecord>>,
    filter: crate::events::Filter,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(Duration::from_secs(15));
        loop {
            let frame = tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) if filter.accepts(&ev) => {
                        let data = ev.payload("").to_string();
                        Bytes::from(format!("id: {}\ndata: {data}\n\n", ev.event_id))
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        Bytes::from(format!(": {n} events were dropped for this slow client\n\n"))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(frame).await.is_err() {
                return; // the client went away
            }
        }
    });
    SseBody(rx).boxed()
}

struct SseBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn render_error(e: RedfishError, endpoint: Option<&Endpoint>) -> Response<Body> {
    let (status, body) = match endpoint {
        Some(ep) => ep.error(&e),
        None => (e.status, e.body()),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(allow) = e.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        h.insert(header::ALLOW, allow);
    }
    if let Some(secs) = e.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if e.authenticate {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Redfin BMC\", charset=\"UTF-8\""),
        );
    }
    base_headers(h);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_address_gets_its_share_of_connections() {
        let counts = Arc::new(PerClient::default());
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = counts.take(a, 2).expect("first");
        let second = counts.take(a, 2).expect("second");
        assert!(counts.take(a, 2).is_none(), "a third one of the same address");
        assert!(counts.take(b, 2).is_some(), "another address");
        drop(first);
        let third = counts.take(a, 2).expect("a slot freed");
        drop((second, third));
        assert!(
            counts.0.lock().expect("counts").get(&a).is_none(),
            "no entry left"
        );
    }

    #[test]
    fn etags_compare_weakly_and_accept_star() {
        let e = etag_of(b"{}");
        assert!(e.starts_with("W/\""));
        assert!(etag_list_matches(&e, Some(&e)));
        assert!(etag_list_matches(&e.replace("W/", ""), Some(&e)));
        assert!(etag_list_matches(&format!("\"x\", {e}"), Some(&e)));
        assert!(!etag_list_matches("\"other\"", Some(&e)));
        assert!(etag_list_matches("*", Some(&e)));
        assert!(!etag_list_matches("*", None));
    }

    #[test]
    fn dollar_queries_are_refused_and_others_ignored() {
        assert!(check_query(None, &[], false).is_ok());
        assert!(check_query(Some("foo=bar"), &[], false).is_ok());
        assert!(check_query(Some("$filter=x"), &["$filter"], false).is_ok());
        assert!(check_query(Some("$top=2"), &[], true).is_ok());
        let e = check_query(Some("$expand=."), &["$filter"], false).expect_err("unsupported");
        assert_eq!(e.status, StatusCode::NOT_IMPLEMENTED);
    }

    #[test]
    fn link_header_names_the_schema_family() {
        let body = crate::json!({"@odata.type": "#ComputerSystem.v1_27_0.ComputerSystem"});
        assert_eq!(
            described_by(&body).as_deref(),
            Some("</redfish/v1/JsonSchemas/ComputerSystem>; rel=describedby")
        );
        let body = crate::json!({"@odata.type": "#ComputerSystemCollection.ComputerSystemCollection"});
        assert_eq!(
            described_by(&body).as_deref(),
            Some("</redfish/v1/JsonSchemas/ComputerSystemCollection>; rel=describedby")
        );
    }
}
