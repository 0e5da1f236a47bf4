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

//! # Layout
//! - `route`: one route's settings from its link's config (paths, hosts, TLS, CORS, ...), and
//!   the source id of HTTP links.
//! - `routes`: the routing table, from the links, and the lookup of a request's route.
//! - `listener`: listeners following the links, and the accept loop with its bounds.
//! - `ingress`: serving one request, here or by forwarding it.
//! - `forward`: forwarding a request to another host over wRPC, and serving one forwarded.

mod context;
mod forward;
mod ingress;
mod listener;
mod route;
mod routes;

pub(crate) use context::Ingress;

pub(crate) use forward::{data_chunks, serve_forwarded};
pub(crate) use listener::follow;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use lattice_proto::ctl::Link;

    use super::route::HTTP_SOURCE;
    use super::routes::{find, routes_of};

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
