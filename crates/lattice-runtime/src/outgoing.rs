//! The outgoing-HTTP grant: which hosts a component's `wasi:http/outgoing-handler` requests
//! may reach (none unless granted at scale time), enforced where wasmtime sends them.

use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

/// Which hosts a component's outgoing requests may reach.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutgoingPolicy {
    /// `host` or `host:port` patterns; `*` allows any host, `*.example.com` any subdomain.
    allowed: Arc<Vec<String>>,
}

impl OutgoingPolicy {
    pub(crate) fn new(allowed: &[String]) -> Self {
        Self {
            allowed: Arc::new(allowed.to_vec()),
        }
    }

    /// Whether a request to `authority` (`host[:port]`) is granted.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.parse::<u16>().is_ok())
            .map_or(authority, |(h, _)| h);
        self.allowed.iter().any(|p| {
            p == "*"
                || p.eq_ignore_ascii_case(authority)
                || p.eq_ignore_ascii_case(host)
                || p.strip_prefix("*.").is_some_and(|suffix| {
                    host.len() > suffix.len() + 1
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                })
        })
    }
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = wasmtime_wasi_http::Result<(
                ::http::Response<WasiBody>,
                Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: ::http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        if !self.allows(&authority) {
            tracing::info!(%authority, "outgoing HTTP request denied: host not granted");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OutgoingPolicy;

    #[test]
    fn outgoing_policy_matches_hosts() {
        let p = OutgoingPolicy::new(&["example.com".into(), "*.svc.local".into()]);
        assert!(p.allows("example.com"));
        assert!(p.allows("example.com:8080"));
        assert!(p.allows("EXAMPLE.com"));
        assert!(p.allows("a.svc.local:80"));
        assert!(!p.allows("svc.local"));
        assert!(!p.allows("evilsvc.local"));
        assert!(!p.allows("example.org"));
        assert!(!OutgoingPolicy::default().allows("example.com"));
        assert!(OutgoingPolicy::new(&["*".into()]).allows("anything:1"));
        let port = OutgoingPolicy::new(&["127.0.0.1:9000".into()]);
        assert!(port.allows("127.0.0.1:9000"));
        assert!(!port.allows("127.0.0.1:9001"));
    }
}
