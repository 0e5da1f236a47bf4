//! `wasmcloud:messaging/consumer` for guests: publishing and requests on NATS subjects, through
//! a [`Messaging`] the host supplies. (Delivering messages *to* components is the host's job:
//! it calls their `handler` export.)

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// A message, as the host's [`Messaging`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: Vec<u8>,
    pub reply_to: Option<String>,
}

/// Why a publish or request failed. The guest sees the text (`wasmcloud:messaging` errors are
/// strings); the host matches on the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagingError {
    /// The component has no grant for this subject; the text names the grant it lacks.
    #[error("denied: {0}")]
    Denied(String),
    /// The host is at a bound (messages in flight, subscriptions); try again later.
    #[error("busy: {0}")]
    Busy(String),
    /// The message is larger than the connection accepts.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A request got no answer in time.
    #[error("no answer from {subject} within {timeout:?}")]
    Timeout { subject: String, timeout: Duration },
    /// The broker could not take or answer the message.
    #[error("{0}")]
    Failed(String),
}

/// Messaging behind `wasmcloud:messaging/consumer`, supplied by the host.
pub trait Messaging: Send + Sync + 'static {
    /// Publishes `msg` on behalf of component `component`.
    fn publish(
        &self,
        component: Arc<str>,
        msg: Message,
    ) -> BoxFuture<'static, Result<(), MessagingError>>;
    /// Sends a request and waits up to `timeout` for one answer.
    fn request(
        &self,
        component: Arc<str>,
        subject: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Message, MessagingError>>;
}
