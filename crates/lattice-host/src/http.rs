//! HTTP ingress, built into every host (wasmCloud's http-server provider, in-process).
//!
//! A link from the built-in source `http` to a component (namespace `wasi`, package `http`,
//! interface `incoming-handler`) makes every host accept requests for it. The link's source
//! config says which:
//!
//! - `address=IP:PORT`: a listener of its own (wasmCloud's default `address` routing mode);
//! - `path=/prefix`: requests under that path on the shared listener (`--http-address`);
//! - `host=name`: requests whose `Host` header names it, on the shared listener.
//!
//! `path` and `host` may be combined with each other and with `address`. Of wasmCloud's other
//! link config keys, `timeout_ms` (408 when the component has not answered in time),
//! `readonly_mode` (405 for anything but GET and HEAD), `cache_control` (added to responses
//! without one), the `cors_*` keys (CORS on for every origin by default, as there) and
//! `tls_cert_file` / `tls_priv_key_file` (the route's listener speaks HTTPS; renewed files are
//! picked up within a moment) apply. A request goes to
//! the most specific route (host, then longest path); none matches: 404. As in wasmCloud,
//! links are unique per source, interface and link name, so each component routed from
//! `http` has a link name of its own.
//!
//! A request is served by the component in this process when it runs here, else forwarded
//! over wRPC to an instance anywhere in the lattice (`lattice_wrpc::http`), whose response
//! body streams back as the guest writes it. Failures have
//! their status: 502 when no instance answers, 504 past the deadline, 500 when it trapped.
//!
//! Listeners set `SO_REUSEPORT`, so several hosts on one machine can share one address and
//! stopping any of them leaves the others serving it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use lattice_proto::ctl::Link;
use lattice_runtime::http::{full_body, ResponseBody};
use lattice_wrpc::retry::{retry, RetryPolicy};
use lattice_wrpc::transport::BodySource;
use lattice_wrpc::transport::{CALLER_HEADER, SOURCE_HEADER, TRACEPARENT_HEADER};
use lattice_wrpc::{CallError, CallErrorKind};

use crate::host::HostShared;

/// The source id of links that route HTTP requests to a component.
pub const HTTP_SOURCE: &str = "http";
/// Largest request body that goes to another host whole, with the request, when its size
/// is known; any other streams after it.
const INLINE_BODY: u64 = 64 << 10;
/// The budget a forwarded request is sent with. The serving host holds the component to its
/// own execution limit, as it would here, and a host that dies is noticed by the watchdog;
/// so this is only a backstop, long enough for a response that streams for minutes.
const FORWARDED_BUDGET: Duration = Duration::from_secs(3600);
/// How often listeners and routes are brought in line with the links.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Where requests for one component come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub target: String,
    /// Matches this `Host` (port ignored, case-insensitive) only.
    pub host: Option<String>,
    /// Matches paths equal to this or under it (`/api` matches `/api/x`, not `/apix`).
    pub path: Option<String>,
    pub options: RouteOptions,
}

/// How requests on a route are served: the link config keys of wasmCloud's http-server
/// provider that make sense here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteOptions {
    /// `timeout_ms`: how long to wait for the component's response (its head); past it, 408.
    pub timeout: Option<Duration>,
    /// `readonly_mode=true`: only GET and HEAD; others get 405.
    pub readonly: bool,
    /// `cache_control`: a `Cache-Control` header added to responses that have none.
    pub cache_control: Option<http::HeaderValue>,
    pub cors: Cors,
    /// `tls_cert_file` and `tls_priv_key_file` (PEM): the listener of this route speaks
    /// HTTPS. A listener serves TLS when any of its routes asks for it.
    pub tls: Option<TlsFiles>,
}

/// Where a listener's certificate chain and private key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// When the TLS files were last modified: a listener restarts when this changes, so a
/// renewed certificate is picked up without a config change.
type TlsStamp = Option<(std::time::SystemTime, std::time::SystemTime)>;

impl TlsFiles {
    fn stamp(&self) -> TlsStamp {
        let modified = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// A TLS acceptor from the files as they are now.
    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("certificates in {}: {e}", self.cert))?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("private key in {}: {e}", self.key))?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} and {}: {e}", self.cert, self.key))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// Cross-origin resource sharing, answered by the host as wasmCloud's http-server does: on by
/// default for every origin. (`cors_allowed_origins`, `cors_allowed_headers`,
/// `cors_allowed_methods`, `cors_exposed_headers`, `cors_max_age_secs`; lists as JSON arrays
/// or comma-separated.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cors {
    /// Empty: any origin.
    pub origins: Vec<String>,
    pub headers: Vec<String>,
    pub methods: Vec<String>,
    pub exposed: Vec<String>,
    pub max_age_secs: u64,
}

impl Default for Cors {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            origins: Vec::new(),
            headers: list(&[
                "accept",
                "accept-language",
                "content-type",
                "content-language",
            ]),
            methods: list(&["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
            exposed: Vec::new(),
            max_age_secs: 300,
        }
    }
}

/// A list setting: a JSON array of strings, or comma-separated.
fn list_setting(v: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(v).unwrap_or_else(|_| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

impl Cors {
    fn from_config(config: &BTreeMap<String, String>) -> Self {
        let mut cors = Self::default();
        for (key, field) in [
            ("cors_allowed_origins", &mut cors.origins),
            ("cors_allowed_headers", &mut cors.headers),
            ("cors_allowed_methods", &mut cors.methods),
            ("cors_exposed_headers", &mut cors.exposed),
        ] {
            if let Some(v) = config.get(key) {
                *field = list_setting(v);
            }
        }
        if let Some(secs) = config
            .get("cors_max_age_secs")
            .and_then(|v| v.trim().parse().ok())
        {
            cors.max_age_secs = secs;
        }
        cors
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow_origin(&self, origin: &http::HeaderValue) -> Option<http::HeaderValue> {
        if self.origins.is_empty() {
            return Some(http::HeaderValue::from_static("*"));
        }
        let o = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(o))
            .then(|| origin.clone())
    }

    /// The answer to a preflight request from `origin` (the component is not asked).
    fn preflight(&self, origin: &http::HeaderValue) -> Response<ResponseBody> {
        let mut r = Response::new(full_body(Bytes::new()));
        let h = r.headers_mut();
        h.insert(http::header::VARY, http::HeaderValue::from_static("origin"));
        let Some(allow) = self.allow_origin(origin) else {
            return r;
        };
        h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        for (name, items) in [
            (http::header::ACCESS_CONTROL_ALLOW_METHODS, &self.methods),
            (http::header::ACCESS_CONTROL_ALLOW_HEADERS, &self.headers),
        ] {
            if let Ok(v) = http::HeaderValue::from_str(&items.join(", ")) {
                h.insert(name, v);
            }
        }
        h.insert(
            http::header::ACCESS_CONTROL_MAX_AGE,
            http::HeaderValue::from(self.max_age_secs),
        );
        r
    }

    /// Adds the headers an actual cross-origin request's response needs.
    fn decorate(&self, origin: &http::HeaderValue, r: &mut Response<ResponseBody>) {
        let h = r.headers_mut();
        h.append(http::header::VARY, http::HeaderValue::from_static("origin"));
        let Some(allow) = self.allow_origin(origin) else {
            return;
        };
        h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if !self.exposed.is_empty() {
            if let Ok(v) = http::HeaderValue::from_str(&self.exposed.join(", ")) {
                h.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
    }
}

impl RouteOptions {
    /// The options in `config`; a value that does not parse is ignored with a warning.
    fn from_config(target: &str, config: &BTreeMap<String, String>) -> Self {
        let mut options = Self::default();
        if let Some(v) = config.get("timeout_ms") {
            match v.trim().parse::<u64>() {
                Ok(ms) => options.timeout = Some(Duration::from_millis(ms)),
                Err(e) => {
                    tracing::warn!(component_id = %target, timeout_ms = %v, error = %e, "bad timeout_ms in HTTP link config")
                }
            }
        }
        if let Some(v) = config.get("readonly_mode") {
            options.readonly = v.trim().eq_ignore_ascii_case("true");
        }
        if let Some(v) = config.get("cache_control") {
            match http::HeaderValue::from_str(v) {
                Ok(h) => options.cache_control = Some(h),
                Err(e) => {
                    tracing::warn!(component_id = %target, cache_control = %v, error = %e, "bad cache_control in HTTP link config")
                }
            }
        }
        options.cors = Cors::from_config(config);
        match (config.get("tls_cert_file"), config.get("tls_priv_key_file")) {
            (Some(cert), Some(key)) => {
                options.tls = Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => {}
            _ => {
                tracing::warn!(component_id = %target, "HTTP link config has only one of tls_cert_file and tls_priv_key_file; serving plain HTTP")
            }
        }
        options
    }
}

impl Route {
    fn matches(&self, host: Option<&str>, path: &str) -> bool {
        let host_ok = match (&self.host, host) {
            (None, _) => true,
            (Some(want), Some(h)) => {
                let h = h.rsplit_once(':').map_or(h, |(name, _)| name);
                want.eq_ignore_ascii_case(h)
            }
            (Some(_), None) => false,
        };
        let path_ok = match &self.path {
            None => true,
            Some(p) => {
                let p = p.trim_end_matches('/');
                path == p
                    || p.is_empty()
                    || path
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        };
        host_ok && path_ok
    }

    fn specificity(&self) -> (bool, usize) {
        (
            self.host.is_some(),
            self.path.as_ref().map_or(0, |p| p.len()),
        )
    }
}

/// Routes by listener address.
pub(crate) type Routes = HashMap<SocketAddr, Vec<Route>>;

/// The route for a request to listener `addr` with `Host` header `host` and `path`.
pub(crate) fn find<'a>(
    routes: &'a Routes,
    addr: &SocketAddr,
    host: Option<&str>,
    path: &str,
) -> Option<&'a Route> {
    routes
        .get(addr)?
        .iter()
        .filter(|r| r.matches(host, path))
        .max_by_key(|r| r.specificity())
}

/// Turns HTTP links and their configs into routes. A link whose config has a bad address is
/// skipped with a warning.
pub(crate) fn routes_of(
    links: &[(Link, BTreeMap<String, String>)],
    shared_address: SocketAddr,
) -> Routes {
    let mut routes: Routes = HashMap::new();
    for (link, config) in links {
        let addr = match config.get("address") {
            Some(a) => match a.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(component_id = %link.target, address = %a, error = %e, "bad HTTP address in link config");
                    continue;
                }
            },
            None => shared_address,
        };
        let route = Route {
            target: link.target.clone(),
            host: config.get("host").cloned(),
            path: config.get("path").cloned(),
            options: RouteOptions::from_config(&link.target, config),
        };
        // A link with neither host nor path matches every request on its listener.
        let list = routes.entry(addr).or_default();
        if !list.contains(&route) {
            list.push(route);
        }
    }
    routes
}

fn http_links(shared: &HostShared) -> Vec<Link> {
    shared
        .links
        .of_source_for(HTTP_SOURCE, "wasi", "http", "incoming-handler")
}

/// The merged source config of each link (later names win).
async fn with_configs(
    shared: &HostShared,
    links: Vec<Link>,
) -> Vec<(Link, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for link in links {
        let mut merged = BTreeMap::new();
        for name in &link.source_config {
            if let Ok(Some(config)) = shared.config.get(name).await {
                merged.extend(config);
            }
        }
        out.push((link, merged));
    }
    out
}

/// Keeps this host's listeners and routes equal to what the HTTP links ask for. Runs until
/// the host stops.
pub(crate) async fn follow(
    shared: Arc<HostShared>,
    shared_address: SocketAddr,
    table: Arc<RwLock<Arc<Routes>>>,
) {
    let mut listeners: HashMap<SocketAddr, Listener> = HashMap::new();
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    let mut seen = None;
    let mut bind_failed: std::collections::HashSet<SocketAddr> = Default::default();
    loop {
        tick.tick().await;
        let links = http_links(&shared);
        let generation = shared.config_generation.load(Ordering::Relaxed);
        let now = (links, generation);
        let broken = listeners
            .values()
            .any(|l| l.task.is_finished() || l.tls_changed());
        if seen.as_ref() == Some(&now) && !broken && bind_failed.is_empty() {
            continue;
        }
        let routes = routes_of(&with_configs(&shared, now.0.clone()).await, shared_address);
        seen = Some(now);
        let tls_of = |addr: &SocketAddr| {
            routes
                .get(addr)
                .and_then(|list| list.iter().find_map(|r| r.options.tls.clone()))
        };
        listeners.retain(|addr, l| {
            let keep = routes.contains_key(addr)
                && !l.task.is_finished()
                && l.tls.as_ref().map(|(f, _)| f) == tls_of(addr).as_ref()
                && !l.tls_changed();
            if !keep {
                tracing::info!(%addr, "closing HTTP listener");
                l.task.abort();
            }
            keep
        });
        for addr in routes.keys() {
            if listeners.contains_key(addr) {
                continue;
            }
            let tls = tls_of(addr).map(|f| {
                let stamp = f.stamp();
                (f, stamp)
            });
            let acceptor = match tls.as_ref().map(|(f, _)| f.acceptor()).transpose() {
                Ok(a) => a,
                Err(e) => {
                    if bind_failed.insert(*addr) {
                        tracing::warn!(%addr, error = %e, "cannot set up TLS for HTTP listener; retrying");
                    }
                    continue;
                }
            };
            match bind(*addr) {
                Ok(l) => {
                    tracing::info!(%addr, tls = acceptor.is_some(), "HTTP listener open");
                    bind_failed.remove(addr);
                    let accepting = accept_loop(shared.clone(), *addr, l, acceptor, table.clone());
                    let task = tokio::spawn(accepting);
                    listeners.insert(*addr, Listener { task, tls });
                }
                Err(e) => {
                    if bind_failed.insert(*addr) {
                        tracing::warn!(%addr, error = %e, "cannot open HTTP listener; retrying");
                    }
                }
            }
        }
        bind_failed.retain(|a| routes.contains_key(a));
        if let Ok(mut t) = table.write() {
            *t = Arc::new(routes);
        }
    }
}

/// An open listener: its accept loop, and its TLS files as they were when it opened.
struct Listener {
    task: tokio::task::JoinHandle<()>,
    tls: Option<(TlsFiles, TlsStamp)>,
}

impl Listener {
    fn tls_changed(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|(files, stamp)| files.stamp() != *stamp)
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Connections one listener serves at once; more wait in the kernel's backlog.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// How long a client may take to send a request's head (and a TLS handshake) before its
/// connection is closed: a slow-loris client holds a connection slot this long at most.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    shared: Arc<HostShared>,
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    table: Arc<RwLock<Arc<Routes>>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A slot first: at the cap, new connections wait in the backlog instead of costing
        // memory here.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%addr, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let table = table.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let routes = table.read().map(|t| t.clone()).unwrap_or_default();
                async move { Ok::<_, Infallible>(serve(&shared, &routes, addr, req).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let served = match tls {
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await
                }
                Some(tls) => {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<ResponseBody> {
    let mut body = msg.into();
    body.push('\n');
    let mut r = Response::new(full_body(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The status a failed call becomes.
fn status_of(e: &CallError) -> StatusCode {
    match e.kind() {
        CallErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        CallErrorKind::Trapped => StatusCode::INTERNAL_SERVER_ERROR,
        CallErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        CallErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_GATEWAY,
    }
}

async fn serve(
    shared: &HostShared,
    routes: &Routes,
    addr: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Response<ResponseBody> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let Some(route) = find(routes, &addr, host.as_deref(), req.uri().path()) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no component serves {}", req.uri().path()),
        );
    };
    let target = route.target.clone();
    let options = &route.options;
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        if req.method() == http::Method::OPTIONS
            && req
                .headers()
                .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return options.cors.preflight(origin);
        }
    }
    if options.readonly && !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{target} is read-only here: GET and HEAD only"),
        );
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    let local = (!shared.force_remote_calls)
        .then(|| shared.components.get(&target))
        .flatten()
        .filter(|r| r.pool.serves_http());
    let answer = async {
        match local {
            Some(running) => {
                shared.routing.http_local.fetch_add(1, Ordering::Relaxed);
                let req = req.map(lattice_runtime::http::incoming_body);
                running
                    .pool
                    .handle_http(req)
                    .await
                    .map_err(CallError::for_caller)
            }
            None => {
                shared.routing.http_remote.fetch_add(1, Ordering::Relaxed);
                forward(shared, &target, req).await
            }
        }
    };
    let result = match options.timeout {
        None => answer.await,
        Some(t) => match tokio::time::timeout(t, answer).await {
            Ok(r) => r,
            Err(_) => {
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("{target} did not answer within {t:?} (timeout_ms)"),
                )
            }
        },
    };
    let mut response = result.unwrap_or_else(|e| {
        tracing::debug!(component_id = %target, error = %e, "HTTP request failed");
        text(status_of(&e), format!("{target}: {e}"))
    });
    if let Some(cc) = &options.cache_control {
        response
            .headers_mut()
            .entry(http::header::CACHE_CONTROL)
            .or_insert_with(|| cc.clone());
    }
    if let Some(origin) = &origin {
        options.cors.decorate(origin, &mut response);
    }
    response
}

/// Header fields as they travel between hosts.
fn wire_headers(h: &http::HeaderMap) -> lattice_wrpc::http::Headers {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Serves a request with an instance of `target` elsewhere in the lattice.
async fn forward(
    shared: &HostShared,
    target: &str,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<ResponseBody>, CallError> {
    let (parts, body) = req.into_parts();
    // A body known to be small goes whole with the request; any other streams after it.
    let small = hyper::body::Body::is_end_stream(&body)
        || hyper::body::Body::size_hint(&body)
            .exact()
            .is_some_and(|n| n <= INLINE_BODY);
    let (inline, streamed) = if small {
        let whole = body.collect().await.map_err(|e| {
            CallError::new(
                CallErrorKind::Rejected,
                format!("cannot read the request body: {e}"),
            )
        })?;
        (whole.to_bytes().to_vec(), None)
    } else {
        (Vec::new(), Some(BodySource::new(data_chunks(body))))
    };
    let request = lattice_wrpc::http::Request {
        method: parts.method.as_str().to_string(),
        path_with_query: parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string()),
        scheme: Some("http".into()),
        authority: parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
        headers: wire_headers(&parts.headers),
        body: inline,
        body_follows: streamed.is_some(),
    };
    let mut bytes = Vec::with_capacity(request.body.len() + 256);
    request.encode(&mut bytes);
    let bytes = Bytes::from(bytes);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(SOURCE_HEADER, HTTP_SOURCE);
    headers.insert(CALLER_HEADER, shared.id.as_str());
    headers.insert(
        TRACEPARENT_HEADER,
        lattice_wrpc::trace::TraceParent::root()
            .to_string()
            .as_str(),
    );
    let deadline = tokio::time::Instant::now() + FORWARDED_BUDGET;
    let prefix = lattice_proto::wrpc::component_prefix(&shared.lattice, target);
    // RFC 9110's idempotent methods may be sent again when their outcome is unknown.
    let idempotent = matches!(
        parts.method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    );
    // A streamed body is sent once: a call a host took is not sent again.
    let mut policy = RetryPolicy::default().idempotent(idempotent && streamed.is_none());
    if shared.recently_answered(target) {
        policy.no_responders_for = crate::router::MOVING_GRACE;
    }
    let (result, attempts) = retry(&policy, deadline, || {
        shared.wrpc.invoke_streaming(
            &prefix,
            lattice_wrpc::http::HTTP_INSTANCE,
            lattice_wrpc::http::HTTP_FUNC,
            bytes.clone(),
            headers.clone(),
            deadline,
            lattice_wrpc::http::ResponseHead::decode,
            streamed.clone(),
        )
    })
    .await;
    shared.routing.count_retries(&attempts);
    let (head, body) = result?;
    shared.answered(target);
    let mut out = Response::new(streamed_body(body));
    *out.status_mut() = StatusCode::from_u16(head.status).map_err(|_| {
        CallError::new(
            CallErrorKind::Decode,
            format!("component answered with status {}", head.status),
        )
    })?;
    for (name, value) in head.headers {
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(&value),
        ) {
            (Ok(n), Ok(v)) => {
                out.headers_mut().append(n, v);
            }
            _ => tracing::debug!(header = %name, "dropped an invalid response header"),
        }
    }
    Ok(out)
}

/// A response body read chunk by chunk from the host serving the request, as the client
/// takes it (each read returns the credit of the chunk before).
fn streamed_body(rest: lattice_wrpc::transport::ResultStream) -> ResponseBody {
    let chunks = futures::stream::unfold(Some(rest), |rest| async move {
        let mut rest = rest?;
        match rest.next_chunk().await {
            Ok(Some(b)) => Some((Ok(hyper::body::Frame::data(b)), Some(rest))),
            Ok(None) => None,
            // The client sees the response cut short, as from a local guest that failed.
            Err(e) => Some((
                Err(lattice_runtime::http::BodyError::InternalError(Some(
                    e.to_string(),
                ))),
                None,
            )),
        }
    });
    http_body_util::StreamBody::new(chunks).boxed_unsync()
}

/// The data of a body as a stream of chunks, to stream to another host (trailers are not
/// forwarded).
pub(crate) fn data_chunks<B>(
    body: B,
) -> impl futures::Stream<Item = Result<Bytes, lattice_wrpc::transport::BodyError>> + Send
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<lattice_wrpc::transport::BodyError> + Send,
{
    use futures::StreamExt as _;
    http_body_util::BodyStream::new(body).filter_map(|frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok),
            Err(e) => Some(Err(e.into())),
        }
    })
}

/// Serves a request forwarded by another host (see [`forward`]): runs it in a local
/// instance and returns the response head once the guest set it; the body streams on.
pub(crate) async fn serve_forwarded(
    pool: &Arc<lattice_runtime::ComponentPool>,
    request: lattice_wrpc::http::Request,
    rest_of_body: Option<impl futures::Stream<Item = Result<Bytes, CallError>> + Send + 'static>,
    deadline: tokio::time::Instant,
) -> Result<(lattice_wrpc::http::ResponseHead, ResponseBody), CallError> {
    let mut builder = Request::builder()
        .method(request.method.as_str())
        .uri(request.path_with_query.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    if let Some(a) = &request.authority {
        if !request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            builder = builder.header(http::header::HOST, a.as_str());
        }
    }
    let body = match rest_of_body {
        None => full_body(request.body),
        Some(rest) => {
            use futures::StreamExt as _;
            let first = (!request.body.is_empty()).then(|| Ok(Bytes::from(request.body)));
            let chunks = futures::stream::iter(first).chain(rest).map(|chunk| {
                chunk.map(hyper::body::Frame::data).map_err(|e| {
                    lattice_runtime::http::BodyError::InternalError(Some(e.to_string()))
                })
            });
            http_body_util::StreamBody::new(chunks).boxed_unsync()
        }
    };
    let req = builder.body(body).map_err(|e| {
        CallError::new(
            CallErrorKind::Rejected,
            format!("bad forwarded request: {e}"),
        )
    })?;
    let run = async {
        let response = pool.handle_http(req).await.map_err(CallError::for_caller)?;
        let (parts, body) = response.into_parts();
        let head = lattice_wrpc::http::ResponseHead {
            status: parts.status.as_u16(),
            headers: wire_headers(&parts.headers),
        };
        Ok((head, body))
    };
    tokio::time::timeout_at(deadline, run).await.map_err(|_| {
        CallError::new(
            CallErrorKind::DeadlineExceeded,
            "the caller's deadline passed during the request",
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str) -> Link {
        Link::new(HTTP_SOURCE, target, "wasi", "http", &["incoming-handler"])
    }

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn routes_pick_the_most_specific_match() {
        let shared: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let own: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let routes = routes_of(
            &[
                (link("api"), cfg(&[("path", "/api")])),
                (link("api-v2"), cfg(&[("path", "/api/v2")])),
                (link("blog"), cfg(&[("host", "blog.example.com")])),
                (link("own"), cfg(&[("address", "127.0.0.1:9000")])),
                (link("bad"), cfg(&[("address", "nonsense")])),
            ],
            shared,
        );
        let target = |addr, host, path| find(&routes, addr, host, path).map(|r| r.target.as_str());
        assert_eq!(target(&shared, None, "/api"), Some("api"));
        assert_eq!(target(&shared, None, "/api/x"), Some("api"));
        assert_eq!(target(&shared, None, "/api/v2/x"), Some("api-v2"));
        assert_eq!(target(&shared, None, "/apix"), None);
        assert_eq!(
            target(&shared, Some("Blog.Example.com:8000"), "/api"),
            Some("blog")
        );
        assert_eq!(target(&shared, Some("other"), "/"), None);
        assert_eq!(target(&own, None, "/anything"), Some("own"));
        assert_eq!(routes.len(), 2, "the bad address makes no listener");
    }
}
