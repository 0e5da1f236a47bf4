//! Messaging over NATS subjects, built into every host (wasmCloud's `wasmcloud:messaging`).
//!
//! - Sending: components' `consumer.publish` / `consumer.request` go to NATS
//!   ([`NatsMessaging`]) if the component's grant allows the subject (see `grants`), or,
//!   when its consumer link targets anything but the built-in `messaging` (a messaging
//!   provider such as wasmCloud's messaging-nats), to that target over wRPC (`provider`).
//! - All of it travels on the host's messaging connection, not the one that carries control,
//!   heartbeats and calls: application traffic cannot starve the host's own.
//! - Receiving: a link from the built-in source `messaging` to a component (namespace
//!   `wasmcloud`, package `messaging`, interface `handler`) whose source config has
//!   `subscriptions=subj,subj.>` subscribes every host running that component to those
//!   subjects in queue group `{lattice}.{component}.messaging`: each message reaches exactly
//!   one instance, which gets it through its `handler.handle-message` export. [`follow`]
//!   keeps the subscriptions equal to the links and the running components.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_proto::grant;
use lattice_runtime::{Message, Messaging, MessagingError, Val};

use crate::grants::Denied;
use parts::Broker;

pub(crate) mod connections;
pub(crate) mod parts;
mod provider;
pub(crate) mod replies;

/// The source id of links that subscribe a component to subjects.
pub const MESSAGING_SOURCE: &str = grant::MESSAGING;
/// The export messages are delivered to.
const HANDLER: &str = "wasmcloud:messaging/handler@0.2.0";
/// How often subscriptions are brought in line with links and components.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Messages one component may be handling at once on this host; past it, a message is
/// dropped (and a request answered `busy`) rather than queued without bound.
pub(crate) const MAX_DELIVERIES: usize = 256;

/// `wasmcloud:messaging/consumer` of the components on this host: every subject checked
/// against the component's grant before it reaches NATS.
pub(crate) struct NatsMessaging {
    pub broker: Weak<Broker>,
}

fn message(m: async_nats::Message) -> Message {
    Message {
        subject: m.subject.to_string(),
        body: m.payload.to_vec(),
        reply_to: m.reply.map(|r| r.to_string()),
    }
}

fn denied(component: &str, subject: &str, e: Denied) -> MessagingError {
    tracing::warn!(component_id = %component, %subject, error = %e, "messaging denied");
    MessagingError::Denied(e.to_string())
}

fn stopped() -> MessagingError {
    MessagingError::Failed("the host is stopping".into())
}

impl NatsMessaging {
    /// Checks that `component` may send to `subject` (a reply subject it was handed, or a
    /// subject its consumer link grants) and returns the connection to send it on.
    async fn allow(
        broker: &Broker,
        component: &Arc<str>,
        subject: &str,
    ) -> Result<async_nats::Client, MessagingError> {
        if let Some(via) = broker.replies.open_on(component, subject) {
            return Ok(via);
        }
        let grant = broker
            .grants
            .messaging(&broker.state, component)
            .await
            .map_err(|e| denied(component, subject, e))?;
        grant
            .check(component, subject)
            .map_err(|e| denied(component, subject, e))?;
        broker.connections.get(grant.cluster.as_ref()).await
    }
}

impl Messaging for NatsMessaging {
    fn publish(
        &self,
        component: Arc<str>,
        msg: Message,
    ) -> BoxFuture<'static, Result<(), MessagingError>> {
        let broker = self.broker.upgrade();
        Box::pin(async move {
            let broker = broker.ok_or_else(stopped)?;
            if let Some(target) = provider::linked(&broker, &component) {
                return provider::publish(&broker, &component, &target, msg).await;
            }
            let nats = Self::allow(&broker, &component, &msg.subject).await?;
            if let Some(r) = &msg.reply_to {
                // Answers to this message go to `r`: it must be a subject the component
                // could send to itself, or it could aim other parties' replies anywhere.
                Self::allow(&broker, &component, r).await?;
            }
            tracing::trace!(component_id = %component, subject = %msg.subject, "publish");
            let body = Bytes::from(msg.body);
            match msg.reply_to {
                Some(r) => nats.publish_with_reply(msg.subject, r, body).await,
                None => nats.publish(msg.subject, body).await,
            }
            .map_err(|e| match e.kind() {
                async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                    MessagingError::TooLarge(e.to_string())
                }
                _ => MessagingError::Failed(e.to_string()),
            })
        })
    }

    fn request(
        &self,
        component: Arc<str>,
        subject: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, MessagingError>> {
        let broker = self.broker.upgrade();
        Box::pin(async move {
            let broker = broker.ok_or_else(stopped)?;
            if let Some(target) = provider::linked(&broker, &component) {
                return provider::request(&broker, &component, &target, subject, body, timeout)
                    .await;
            }
            let nats = Self::allow(&broker, &component, &subject).await?;
            // A guest's timeout is its wish; the host's call budget is the ceiling.
            let timeout = timeout.min(broker.call_timeout);
            tracing::trace!(component_id = %component, %subject, "request");
            let asked = nats.request(subject.clone(), body.into());
            match tokio::time::timeout(timeout, asked).await {
                Ok(Ok(m)) => Ok(message(m)),
                Ok(Err(e)) => Err(MessagingError::Failed(format!("request to {subject}: {e}"))),
                Err(_) => Err(MessagingError::Timeout { subject, timeout }),
            }
        })
    }
}

/// The messaging links to components running here: all that decides the subscriptions,
/// besides the configs they name.
fn local_links(broker: &Broker) -> Vec<lattice_proto::ctl::Link> {
    let mut links =
        broker
            .state
            .links
            .of_source_for(MESSAGING_SOURCE, "wasmcloud", "messaging", "handler");
    links.retain(|l| broker.components.get(&l.target).is_some());
    links
}

/// A subscription: component, subject, and the servers of the link's own connection (none:
/// the host's messaging connection).
type Wanted = (String, String, Option<Vec<String>>);

/// The subjects each local component should receive, from `links` and their configs.
async fn wanted(
    broker: &Broker,
    links: &[lattice_proto::ctl::Link],
) -> std::collections::HashSet<Wanted> {
    let mut out = std::collections::HashSet::new();
    for link in links {
        let mut config = lattice_proto::ctl::ConfigMap::new();
        for name in &link.source_config {
            if let Ok(Some(values)) = broker.state.config.get(name).await {
                config.extend(values);
            }
        }
        let cluster = match crate::grants::cluster_uris(&config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(component_id = %link.target, error = %e, "subscriptions refused");
                continue;
            }
        };
        let subjects = config
            .get(grant::SUBSCRIPTIONS)
            .cloned()
            .unwrap_or_default();
        for subject in grant::list(&subjects) {
            if let Err(why) = subscribable(subject) {
                tracing::warn!(component_id = %link.target, %subject, error = %why, "subscription refused");
                continue;
            }
            let n = out.iter().filter(|(c, _, _)| *c == link.target).count();
            if n >= grant::MAX_SUBSCRIPTIONS {
                tracing::warn!(component_id = %link.target, %subject, max = grant::MAX_SUBSCRIPTIONS, "subscription refused: too many subscriptions");
                continue;
            }
            out.insert((link.target.clone(), subject.to_string(), cluster.clone()));
        }
    }
    out
}

/// Keeps this host's message subscriptions equal to what the links ask for. Runs until the
/// host stops.
pub(crate) async fn follow(broker: Arc<Broker>) {
    let mut active: HashMap<Wanted, tokio::task::JoinHandle<()>> = HashMap::new();
    // Each component's deliveries in flight, over all its subscriptions.
    let mut in_flight: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    // What the last pass was computed from: configs are read from KV only when it changes.
    let mut seen = None;
    loop {
        tick.tick().await;
        let links = local_links(&broker);
        let generation = broker.state.config_generation();
        let now = (links, generation);
        let broken = active.values().any(|t| t.is_finished());
        if seen.as_ref() == Some(&now) && !broken {
            continue;
        }
        let wanted = wanted(&broker, &now.0).await;
        seen = Some(now);
        active.retain(|key, task| {
            let keep = wanted.contains(key) && !task.is_finished();
            if !keep {
                tracing::info!(component_id = %key.0, subject = %key.1, "unsubscribing");
                task.abort();
            }
            keep
        });
        for key in wanted {
            if active.contains_key(&key) {
                continue;
            }
            let (id, subject, cluster) = key.clone();
            let group = lattice_proto::wrpc::messaging_group(&broker.lattice, &id);
            let nats = match broker.connections.get(cluster.as_ref()).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(component_id = %id, %subject, error = %e, "cannot subscribe");
                    seen = None;
                    continue;
                }
            };
            match nats.queue_subscribe(subject.clone(), group).await {
                Ok(sub) => {
                    tracing::info!(component_id = %id, %subject, "subscribed");
                    let permits = in_flight
                        .entry(id.clone())
                        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES)))
                        .clone();
                    let task = tokio::spawn(deliver(broker.clone(), id, nats, sub, permits));
                    active.insert(key, task);
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

/// Whether a link may subscribe a component to `subject`: well formed, and not written
/// inside a reserved space (what a wildcard reaches there is filtered on delivery).
fn subscribable(subject: &str) -> Result<(), String> {
    grant::validate_subject(subject, true).map_err(|e| e.to_string())?;
    match grant::reserved(subject) {
        Some(space) => Err(format!("{subject:?} is reserved for {space}")),
        None => Ok(()),
    }
}

/// Hands each message of `sub` to component `id`'s handler, concurrently up to the
/// component's `permits` ([`MAX_DELIVERIES`] over all its subscriptions); past that, or past
/// the host's bound of held bytes, a message is dropped, and a request answered with a `busy`
/// service error, so a flood costs bounded memory.
async fn deliver(
    broker: Arc<Broker>,
    id: String,
    nats: async_nats::Client,
    mut sub: async_nats::Subscriber,
    permits: Arc<tokio::sync::Semaphore>,
) {
    let id: Arc<str> = id.into();
    while let Some(m) = sub.next().await {
        let Some(running) = broker.components.get(&id) else {
            return;
        };
        // A wildcard subscription may match the lattice's own subjects: never hand those on.
        if grant::reserved(&m.subject).is_some() {
            tracing::debug!(component_id = %id, subject = %m.subject, "reserved subject not delivered");
            continue;
        }
        // A delivered body becomes one value per byte: count that against the host's bound.
        // (plus the body as received, which the delivery keeps too).
        let size = m
            .payload
            .len()
            .saturating_mul(std::mem::size_of::<Val>() + 1)
            + 1024;
        let held = permits
            .clone()
            .try_acquire_owned()
            .ok()
            .and_then(|p| broker.admission.hold(None, size).ok().map(|h| (p, h)));
        let Some(permit) = held else {
            tracing::debug!(component_id = %id, subject = %m.subject, "busy: message dropped");
            if let Some(reply) = m.reply {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(grant::SERVICE_ERROR, "busy");
                headers.insert(grant::SERVICE_ERROR_CODE, "503");
                let _ = nats
                    .publish_with_headers(reply, headers, Bytes::new())
                    .await;
            }
            continue;
        };
        let id = id.clone();
        let broker = broker.clone();
        let nats = nats.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let msg = message(m);
            let subject = msg.subject.clone();
            let reply = msg.reply_to.clone();
            if let Some(r) = &reply {
                broker.replies.open(&id, r, &nats);
            }
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
            let result = running
                .pool
                .call(Some(HANDLER), "handle-message", &[record])
                .await;
            if let Some(r) = &reply {
                broker.replies.close(&id, r);
            }
            match result {
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
