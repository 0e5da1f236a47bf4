//! A NATS supercluster: cluster `east` (two servers) and cluster `west` (one) joined by
//! gateways, every gateway connection through a [`FaultyLink`] so a test can cut and heal
//! the gateway; JetStream on all three (one meta group, domain [`CLUSTER_JS_DOMAIN`]), and a
//! leaf node under `west` whose clients reach JetStream through that domain.
//!
//! With the gateway cut, `east` keeps the JetStream quorum (two of three servers); `west`
//! and the leaf keep their own traffic but not JetStream.

use std::sync::Arc;
use std::time::Duration;

use crate::nats::{jetstream_block, CLUSTER_JS_DOMAIN};
use crate::proxy::{Faults, FaultyLink};
use crate::{free_port, wait, NatsServer, Result};

/// Every member's accounts: the system account gateways and leaf nodes together require,
/// and the account clients (without credentials) and the leaf node use.
const ACCOUNTS: &str = "accounts {\n  SYS: { users: [ { user: sys, password: sys } ] }\n  \
    APP: { jetstream: enabled, users: [ { user: app, password: app } ] }\n}\n\
    system_account: SYS\nno_auth_user: app\n";

pub struct Supercluster {
    pub east: Vec<NatsServer>,
    pub west: NatsServer,
    pub leaf: NatsServer,
    /// One per server's gateway listener: everything crossing the gateway goes through them.
    gateways: Vec<FaultyLink>,
    _dir: Arc<tempfile::TempDir>,
}

/// A server's part in the supercluster, before it starts.
struct Member {
    name: &'static str,
    cluster: &'static str,
    gateway_port: u16,
    route_port: u16,
}

impl Supercluster {
    /// Starts the three servers and the leaf, and waits until the gateways are up.
    pub fn start() -> Result<Self> {
        let dir = Arc::new(tempfile::tempdir()?);
        let members =
            [("e0", "east"), ("e1", "east"), ("w0", "west")].map(|(name, cluster)| Member {
                name,
                cluster,
                gateway_port: free_port(),
                route_port: free_port(),
            });
        let mut gateways = Vec::new();
        for m in &members {
            let target = format!("127.0.0.1:{}", m.gateway_port)
                .parse()
                .map_err(|e| crate::Error::Setup(format!("gateway address: {e}")))?;
            gateways.push(FaultyLink::start(target, Faults::default())?);
        }
        let proxied = |cluster: &str| -> String {
            members
                .iter()
                .zip(&gateways)
                .filter(|(m, _)| m.cluster == cluster)
                .map(|(_, g)| format!("\"nats://{}\"", g.addr()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let leaf_port = free_port();
        let mut servers = Vec::new();
        for (m, proxy) in members.iter().zip(&gateways) {
            let routes = members
                .iter()
                .filter(|o| o.cluster == m.cluster)
                .map(|o| format!("\"nats-route://127.0.0.1:{}\"", o.route_port))
                .collect::<Vec<_>>()
                .join(", ");
            let remote = if m.cluster == "east" { "west" } else { "east" };
            let leafnodes = if m.name == "w0" {
                format!("leafnodes {{\n  listen: \"127.0.0.1:{leaf_port}\"\n}}\n")
            } else {
                String::new()
            };
            // Gateways with leaf nodes need a system account; clients land in APP.
            let body = format!(
                "{ACCOUNTS}{js}cluster {{\n  name: {cluster}\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n\
                 gateway {{\n  name: {cluster}\n  listen: \"127.0.0.1:{gw}\"\n  advertise: \"{adv}\"\n  \
                 gateways: [ {{ name: {remote}, urls: [{urls}] }} ]\n}}\n{leafnodes}",
                js = jetstream_block(dir.path(), m.name).replace(
                    "jetstream {\n",
                    &format!("jetstream {{\n  domain: {CLUSTER_JS_DOMAIN}\n"),
                ),
                cluster = m.cluster,
                route = m.route_port,
                gw = m.gateway_port,
                adv = proxy.addr(),
                urls = proxied(remote),
            );
            servers.push(NatsServer::launch(m.name, free_port(), &body, dir.clone())?);
        }
        for s in &servers {
            s.wait_ready()?;
        }
        let west = servers
            .pop()
            .ok_or_else(|| crate::Error::Setup("no west".into()))?;
        let leaf = NatsServer::launch(
            "leaf",
            free_port(),
            &format!(
                "leafnodes {{\n  remotes: [ {{ urls: [\"nats-leaf://app:app@127.0.0.1:{leaf_port}\"] }} ]\n}}\n"
            ),
            dir.clone(),
        )?;
        leaf.wait_ready()?;
        let sc = Self {
            east: servers,
            west,
            leaf,
            gateways,
            _dir: dir,
        };
        sc.wait_gateways()?;
        wait::until(
            "the leaf to connect to west",
            Duration::from_secs(30),
            Duration::from_millis(25),
            || {
                sc.leaf
                    .monitor("/leafz")
                    .filter(|b| b.contains("\"leafnodes\": 1"))
            },
        )?;
        Ok(sc)
    }

    /// Waits until every server has an outbound gateway connection to the other cluster.
    pub fn wait_gateways(&self) -> Result<()> {
        for s in self.east.iter().chain([&self.west]) {
            wait::until(
                &format!("{} to connect its gateway", s.name),
                Duration::from_secs(30),
                Duration::from_millis(50),
                || {
                    let body = s.monitor("/gatewayz")?;
                    let outbound = body.split_once("\"outbound_gateways\":")?.1;
                    outbound.contains("\"connection\"").then_some(())
                },
            )?;
        }
        Ok(())
    }

    /// Cuts every gateway connection without a goodbye; new ones are refused until healed.
    pub fn cut_gateway(&self) {
        for g in &self.gateways {
            g.cut();
        }
    }

    pub fn heal_gateway(&self) {
        for g in &self.gateways {
            g.heal();
        }
    }
}
