//! One route: where requests for a component come in, and the options its link's config sets
//! (TLS files, CORS, read-only mode, timeouts, cache control).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use lattice_runtime::http::{full_body, ResponseBody};

/// The source id of links that route HTTP requests to a component.
pub const HTTP_SOURCE: &str = "http";

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
pub(super) type TlsStamp = Option<(std::time::SystemTime, std::time::SystemTime)>;

impl TlsFiles {
    pub(super) fn stamp(&self) -> TlsStamp {
        let modified = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// A TLS acceptor from the files as they are now.
    pub(super) fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
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
pub(super) fn list_setting(v: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(v).unwrap_or_else(|_| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

impl Cors {
    pub(super) fn from_config(config: &BTreeMap<String, String>) -> Self {
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
    pub(super) fn allow_origin(&self, origin: &http::HeaderValue) -> Option<http::HeaderValue> {
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
    pub(super) fn preflight(&self, origin: &http::HeaderValue) -> Response<ResponseBody> {
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
    pub(super) fn decorate(&self, origin: &http::HeaderValue, r: &mut Response<ResponseBody>) {
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
    pub(super) fn from_config(target: &str, config: &BTreeMap<String, String>) -> Self {
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
    pub(super) fn matches(&self, host: Option<&str>, path: &str) -> bool {
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

    pub(super) fn specificity(&self) -> (bool, usize) {
        (
            self.host.is_some(),
            self.path.as_ref().map_or(0, |p| p.len()),
        )
    }
}
