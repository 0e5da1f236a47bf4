//! Messaging over NATS subjects, built into every host (wasmCloud's `wasmcloud:messaging`).
//!
//! - Sending: components' `consumer.publish` / `consumer.request` go straight to NATS
//!   ([`NatsMessaging`]).
//! - Receiving: a link from the built-in source `messaging` to a component (namespace
//!   `wasmcloud`, package `messaging`, interface `handler`) whose source config has
//!   `subscriptions=subj,subj.>` subscribes every host running that component to those
//!   subjects in queue group `{lattice}.{component}.messaging`: each message reaches exactly
//!   one instance, which gets it through its `handler.handle-message` export. [`follow`]
//!   keeps the subscriptions equal to the links and the running components.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_runtime::{Message, Messaging, Val};

use crate::host::HostShared;

/// The source id of links that subscribe a component to subjects.
pub const MESSAGING_SOURCE: &str = "messaging";
/// The export messages are delivered to.
const HANDLER: &str = "wasmcloud:messaging/handler@0.2.0";
/// Config key listing a link's subjects, comma-separated.
const SUBSCRIPTIONS_KEY: &str = "subscriptions";
/// How often subscriptions are brought in line with links and components.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

pub(crate) struct NatsMessaging {
    pub nats: async_nats::Client,
}

fn message(m: async_nats::Message) -> Message {
    Message {
        subject: m.subject.to_string(),
        body: m.payload.to_vec(),
        reply_to: m.reply.map(|r| r.to_string()),
    }
}

impl Messaging for NatsMessaging {
    fn publish(&self, component: Arc<str>, msg: Message) -> BoxFuture<'static, Result<(), String>> {
        let nats = self.nats.clone();
        Box::pin(async move {
            tracing::trace!(component_id = %component, subject = %msg.subject, "publish");
            let body = Bytes::from(msg.body);
            match msg.reply_to {
                Some(r) => nats.publish_with_reply(msg.subject, r, body).await,
                None => nats.publish(msg.subject, body).await,
            }
            .map_err(|e| e.to_string())
        })
    }

    fn request(
        &self,
        component: Arc<str>,
        subject: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, String>> {
        let nats = self.nats.clone();
        Box::pin(async move {
            tracing::trace!(component_id = %component, %subject, "request");
            match tokio::time::timeout(timeout, nats.request(subject.clone(), body.into())).await {
                Ok(Ok(m)) => Ok(message(m)),
                Ok(Err(e)) => Err(format!("request to {subject}: {e}")),
                Err(_) => Err(format!(
                    "request to {subject}: no answer within {timeout:?}"
                )),
            }
        })
    }
}

/// The messaging links to components running here: all that decides the subscriptions,
/// besides the configs they name.
fn local_links(shared: &HostShared) -> Vec<lattice_proto::ctl::Link> {
    let mut links =
        shared
            .links
            .of_source_for(MESSAGING_SOURCE, "wasmcloud", "messaging", "handler");
    links.retain(|l| shared.components.get(&l.target).is_some());
    links
}

/// The subjects each local component should receive, from `links` and their configs.
async fn wanted(
    shared: &HostShared,
    links: &[lattice_proto::ctl::Link],
) -> HashMap<(String, String), ()> {
    let mut out = HashMap::new();
    for link in links {
        for name in &link.source_config {
            let Ok(Some(config)) = shared.config.get(name).await else {
                continue;
            };
            let subjects = config.get(SUBSCRIPTIONS_KEY).cloned().unwrap_or_default();
            for subject in subjects.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                out.insert((link.target.clone(), subject.to_string()), ());
            }
        }
    }
    out
}

/// Keeps this host's message subscriptions equal to what the links ask for. Runs until the
/// host stops.
pub(crate) async fn follow(shared: Arc<HostShared>) {
    let mut active: HashMap<(String, String), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    // What the last pass was computed from: configs are read from KV only when it changes.
    let mut seen = None;
    loop {
        tick.tick().await;
        let links = local_links(&shared);
        let generation = shared
            .config_generation
            .load(std::sync::atomic::Ordering::Relaxed);
        let now = (links, generation);
        let broken = active.values().any(|t| t.is_finished());
        if seen.as_ref() == Some(&now) && !broken {
            continue;
        }
        let wanted = wanted(&shared, &now.0).await;
        seen = Some(now);
        active.retain(|key, task| {
            let keep = wanted.contains_key(key) && !task.is_finished();
            if !keep {
                tracing::info!(component_id = %key.0, subject = %key.1, "unsubscribing");
                task.abort();
            }
            keep
        });
        for key in wanted.into_keys() {
            if active.contains_key(&key) {
                continue;
            }
            let (id, subject) = key.clone();
            let group = format!("{}.{id}.messaging", shared.lattice);
            match shared.nats.queue_subscribe(subject.clone(), group).await {
                Ok(sub) => {
                    tracing::info!(component_id = %id, %subject, "subscribed");
                    active.insert(key, tokio::spawn(deliver(shared.clone(), id, sub)));
                }
                Err(e) => {
                    tracing::warn!(component_id = %id, %subject, error = %e, "cannot subscribe");
                    // Try again next tick.
                    seen = None;
                }
            }
        }
    }
}

/// Hands each message of `sub` to component `id`'s handler, concurrently.
async fn deliver(shared: Arc<HostShared>, id: String, mut sub: async_nats::Subscriber) {
    while let Some(m) = sub.next().await {
        let Some(running) = shared.components.get(&id) else {
            return;
        };
        let id = id.clone();
        tokio::spawn(async move {
            let msg = message(m);
            let subject = msg.subject.clone();
            let record = Val::Record(vec![
                ("subject".into(), Val::String(msg.subject)),
                (
                    "body".into(),
                    Val::List(msg.body.into_iter().map(Val::U8).collect()),
                ),
                (
                    "reply-to".into(),
                    Val::Option(msg.reply_to.map(|r| Box::new(Val::String(r)))),
                ),
            ]);
            match running
                .pool
                .call(Some(HANDLER), "handle-message", &[record])
                .await
            {
                Ok(r) => {
                    if let Some(Val::Result(Err(Some(e)))) = r.first() {
                        tracing::debug!(component_id = %id, %subject, error = ?e, "handler refused a message");
                    }
                }
                Err(e) => {
                    tracing::warn!(component_id = %id, %subject, error = %e, "handler failed")
                }
            }
        });
    }
}
