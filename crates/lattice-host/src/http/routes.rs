//! The routing table of a host's listeners, built from the `http` links and their configs,
//! and the lookup of the most specific route for a request.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use lattice_proto::ctl::Link;

use crate::state::LatticeState;

use super::route::HTTP_SOURCE;
use super::route::{Route, RouteOptions};

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

pub(super) fn http_links(state: &LatticeState) -> Vec<Link> {
    state
        .links
        .of_source_for(HTTP_SOURCE, "wasi", "http", "incoming-handler")
}

/// The merged source config of each link (later names win).
pub(super) async fn with_configs(
    state: &LatticeState,
    links: Vec<Link>,
) -> Vec<(Link, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for link in links {
        let mut merged = BTreeMap::new();
        for name in &link.source_config {
            if let Ok(Some(config)) = state.config.get(name).await {
                merged.extend(config);
            }
        }
        out.push((link, merged));
    }
    out
}
