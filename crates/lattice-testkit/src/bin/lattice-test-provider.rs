//! A capability provider for Lattice's own tests, speaking the protocol of wasmCloud v1's
//! provider SDK (host data on stdin, health, shutdown, links on its xkey subject) and nothing
//! else, so the host's supervision can be tested without building the real providers.
//!
//! It answers [`lattice_testkit::provider::state_subject`] with its pid, config and the
//! links it holds. With config `exit_at_once=CODE` it exits with CODE right after reading
//! its host data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::StreamExt;
use lattice_proto::provider::{
    health_subject, link_del_subject, link_put_subject, shutdown_subject, HostData,
    InterfaceLinkDefinition, ShutdownRequest,
};
use lattice_testkit::provider::{state_subject, ProviderState};

type Links = Arc<Mutex<BTreeMap<String, InterfaceLinkDefinition>>>;

fn key(l: &InterfaceLinkDefinition) -> String {
    format!(
        "{}>{}:{}:{}:{}",
        l.source_id, l.target, l.wit_namespace, l.wit_package, l.name
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        std::process::exit(2);
    }
    let Ok(json) = base64::engine::general_purpose::STANDARD.decode(line.trim()) else {
        eprintln!("host data is not base64");
        std::process::exit(2);
    };
    let data: HostData = match serde_json::from_slice(&json) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("host data is not valid: {e}");
            std::process::exit(2);
        }
    };
    if let Some(code) = data.config.get("exit_at_once") {
        eprintln!("exiting at once as configured");
        std::process::exit(code.parse().unwrap_or(1));
    }
    let Ok(xkey) = nkeys::XKey::from_seed(&data.provider_xkey_private_key) else {
        eprintln!("no usable provider xkey");
        std::process::exit(2);
    };
    let nats = match async_nats::connect(data.lattice_rpc_url.as_str()).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            std::process::exit(2);
        }
    };
    let lattice = data.lattice_rpc_prefix.clone();
    let id = data.provider_key.clone();
    let links: Links = Arc::new(Mutex::new(
        data.link_definitions
            .iter()
            .map(|l| (key(l), l.clone()))
            .collect(),
    ));
    let sub = |s: String| {
        let nats = nats.clone();
        async move { nats.subscribe(s).await.expect("subscribe") }
    };
    let mut health = sub(health_subject(&lattice, &id)).await;
    let mut shutdown = sub(shutdown_subject(&lattice, &id)).await;
    let mut puts = sub(link_put_subject(&lattice, &xkey.public_key())).await;
    let mut dels = sub(link_del_subject(&lattice, &id)).await;
    let mut state = sub(state_subject(&lattice, &id)).await;
    loop {
        tokio::select! {
            Some(m) = health.next() => {
                if let Some(r) = m.reply {
                    let _ = nats.publish(r, r#"{"healthy":true}"#.into()).await;
                }
            }
            Some(m) = shutdown.next() => {
                let asked: Option<ShutdownRequest> = serde_json::from_slice(&m.payload).ok();
                if asked.is_some_and(|a| a.host_id == data.host_id) {
                    if let Some(r) = m.reply {
                        let _ = nats.publish(r, "{}".into()).await;
                        let _ = nats.flush().await;
                    }
                    std::process::exit(0);
                }
            }
            Some(m) = puts.next() => {
                if let Ok(l) = serde_json::from_slice::<InterfaceLinkDefinition>(&m.payload) {
                    links.lock().unwrap().insert(key(&l), l);
                }
            }
            Some(m) = dels.next() => {
                if let Ok(l) = serde_json::from_slice::<InterfaceLinkDefinition>(&m.payload) {
                    links.lock().unwrap().remove(&key(&l));
                }
            }
            Some(m) = state.next() => {
                let s = ProviderState {
                    pid: std::process::id(),
                    host_id: data.host_id.clone(),
                    config: data.config.clone().into_iter().collect(),
                    links: links.lock().unwrap().values().cloned().collect(),
                };
                if let Some(r) = m.reply {
                    let _ = nats.publish(r, serde_json::to_vec(&s).unwrap().into()).await;
                }
            }
            else => break,
        }
    }
}
