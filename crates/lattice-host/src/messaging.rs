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
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_proto::grant;
use lattice_runtime::{Message, Messaging, MessagingError, Val};

use crate::grants::Denied;
use crate::host::HostShared;

/// The source id of links that subscribe a component to subjects.
pub const MESSAGING_SOURCE: &str = grant::MESSAGING;
/// The export messages are delivered to.
const HANDLER: &str = "wasmcloud:messaging/handler@0.2.0";
/// How often subscriptions are brought in line with links and components.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Messages one component may be handling at once on this host; past it, a message is
/// dropped (and a request answered `busy`) rather than queued without bound.
pub(crate) const MAX_DELIVERIES: usize = 256;

/// Reply subjects of the messages each component is handling now: the one kind of inbox a
/// component may publish to, and only while it handles the message.
#[derive(Default)]
pub(crate) struct Replies {
    open: Mutex<HashMap<(Arc<str>, String), usize>>,
}

impl Replies {
    fn open(&self, component: &Arc<str>, subject: &str) {
        if let Ok(mut o) = self.open.lock() {
            *o.entry((component.clone(), subject.to_string()))
                .or_default() += 1;
        }
    }

    fn close(&self, component: &Arc<str>, subject: &str) {
        if let Ok(mut o) = self.open.lock() {
            let key = (component.clone(), subject.to_string());
            if let Some(n) = o.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    o.remove(&key);
                }
            }
        }
    }

    fn is_open(&self, component: &Arc<str>, subject: &str) -> bool {
        self.open
            .lock()
            .map(|o| o.contains_key(&(component.clone(), subject.to_string())))
            .unwrap_or(false)
    }
}

/// `wasmcloud:messaging/consumer` of the components on this host: every subject checked
/// against the component's grant before it reaches NATS.
pub(crate) struct NatsMessaging {
    pub shared: Weak<HostShared>,
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
    /// Checks that `component` may send to `subject`: a reply subject it was handed, or a
    /// subject its consumer link grants.
    async fn allow(
        shared: &HostShared,
        component: &Arc<str>,
        subject: &str,
    ) -> Result<(), MessagingError> {
        if shared.replies.is_open(component, subject) {
            return Ok(());
        }
        let grant = shared
            .grants
            .messaging(shared, component)
            .await
            .map_err(|e| denied(component, subject, e))?;
        grant
            .check(component, subject)
            .map_err(|e| denied(component, subject, e))
    }
}

impl Messaging for NatsMessaging {
    fn publish(
        &self,
        component: Arc<str>,
        msg: Message,
    ) -> BoxFuture<'static, Result<(), MessagingError>> {
        let shared = self.shared.upgrade();
        Box::pin(async move {
            let shared = shared.ok_or_else(stopped)?;
            Self::allow(&shared, &component, &msg.subject).await?;
            if let Some(r) = &msg.reply_to {
                // Answers to this message go to `r`: it must be a subject the component
                // could send to itself, or it could aim other parties' replies anywhere.
                Self::allow(&shared, &component, r).await?;
            }
            tracing::trace!(component_id = %component, subject = %msg.subject, "publish");
            let body = Bytes::from(msg.body);
            match msg.reply_to {
                Some(r) => shared.nats.publish_with_reply(msg.subject, r, body).await,
                None => shared.nats.publish(msg.subject, body).await,
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
        let shared = self.shared.upgrade();
        Box::pin(async move {
            let shared = shared.ok_or_else(stopped)?;
            Self::allow(&shared, &component, &subject).await?;
            // A guest's timeout is its wish; the host's call budget is the ceiling.
            let timeout = timeout.min(shared.call_timeout);
            tracing::trace!(component_id = %component, %subject, "request");
            let asked = shared.nats.request(subject.clone(), body.into());
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
            let subjects = config
                .get(grant::SUBSCRIPTIONS)
                .cloned()
                .unwrap_or_default();
            for subject in grant::list(&subjects) {
                if let Err(why) = subscribable(subject) {
                    tracing::warn!(component_id = %link.target, %subject, error = %why, "subscription refused");
                    continue;
                }
                let n = out.keys().filter(|(c, _)| *c == link.target).count();
                if n >= grant::MAX_SUBSCRIPTIONS {
                    tracing::warn!(component_id = %link.target, %subject, max = grant::MAX_SUBSCRIPTIONS, "subscription refused: too many subscriptions");
                    continue;
                }
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

/// Whether a link may subscribe a component to `subject`: well formed, and not written
/// inside a reserved space (what a wildcard reaches there is filtered on delivery).
fn subscribable(subject: &str) -> Result<(), String> {
    grant::validate_subject(subject, true).map_err(|e| e.to_string())?;
    match grant::reserved(subject) {
        Some(space) => Err(format!("{subject:?} is reserved for {space}")),
        None => Ok(()),
    }
}

/// Hands each message of `sub` to component `id`'s handler, concurrently up to
/// [`MAX_DELIVERIES`]; past that a message is dropped, and a request answered with a
/// `busy` service error, so a flood costs bounded memory.
async fn deliver(shared: Arc<HostShared>, id: String, mut sub: async_nats::Subscriber) {
    let id: Arc<str> = id.into();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES));
    while let Some(m) = sub.next().await {
        let Some(running) = shared.components.get(&id) else {
            return;
        };
        // A wildcard subscription may match the lattice's own subjects: never hand those on.
        if grant::reserved(&m.subject).is_some() {
            tracing::debug!(component_id = %id, subject = %m.subject, "reserved subject not delivered");
            continue;
        }
        // A delivered body becomes one value per byte: count that against the host's bound.
        let size = m.payload.len().saturating_mul(std::mem::size_of::<Val>()) + 1024;
        let held = permits
            .clone()
            .try_acquire_owned()
            .ok()
            .and_then(|p| shared.admission.hold(size).ok().map(|h| (p, h)));
        let Some(permit) = held else {
            tracing::debug!(component_id = %id, subject = %m.subject, "busy: message dropped");
            if let Some(reply) = m.reply {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(grant::SERVICE_ERROR, "busy");
                headers.insert(grant::SERVICE_ERROR_CODE, "503");
                let _ = shared
                    .nats
                    .publish_with_headers(reply, headers, Bytes::new())
                    .await;
            }
            continue;
        };
        let id = id.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let msg = message(m);
            let subject = msg.subject.clone();
            let reply = msg.reply_to.clone();
            if let Some(r) = &reply {
                shared.replies.open(&id, r);
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
                shared.replies.close(&id, r);
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
