//! Control-interface operations.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use lattice_proto::ctl::{
    ComponentAuctionAck, ComponentAuctionRequest, ConfigMap, Host, HostInventory, HostLabel,
    HostLabelKey, ScaleComponentCommand, StopHostCommand, UpdateComponentCommand,
};
use lattice_proto::event::CloudEvent;
use lattice_proto::op::Op;
use lattice_proto::subject::{event_wildcard, validate_config_name, CtlSubjects};
use lattice_proto::CtlResponse;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::watch::HostWatcher;

/// Default timeout of a request to one host (wasmCloud's client uses the same).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a scatter-gather (`host.ping`) collects replies.
pub const DEFAULT_GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// A scatter-gather ends early once no new reply arrived for this long after the last one.
pub const DEFAULT_GATHER_IDLE: Duration = Duration::from_millis(500);

/// Builds a [`Client`] with non-default timeouts or subject prefix.
pub struct ClientBuilder {
    nats: async_nats::Client,
    lattice: String,
    prefix: String,
    timeout: Duration,
    gather_timeout: Duration,
    gather_idle: Duration,
}

impl ClientBuilder {
    /// Timeout of requests to one host.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Longest a scatter-gather waits, and how long it waits after the last reply.
    pub fn gather(mut self, total: Duration, idle: Duration) -> Self {
        self.gather_timeout = total;
        self.gather_idle = idle;
        self
    }

    /// Control subject prefix (default `wasmbus.ctl`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let subjects = CtlSubjects::with_prefix(&self.prefix, &self.lattice)
            .map_err(|e| Error::caused_by(ErrorKind::InvalidInput, e))?;
        Ok(Client {
            nats: self.nats,
            lattice: self.lattice,
            subjects,
            timeout: self.timeout,
            gather_timeout: self.gather_timeout,
            gather_idle: self.gather_idle,
        })
    }
}

/// A client of one lattice's control interface.
#[derive(Clone)]
pub struct Client {
    nats: async_nats::Client,
    lattice: String,
    subjects: CtlSubjects,
    timeout: Duration,
    gather_timeout: Duration,
    gather_idle: Duration,
}

impl Client {
    /// A client of `lattice` with default timeouts.
    pub fn new(nats: async_nats::Client, lattice: &str) -> Result<Self, Error> {
        Self::builder(nats, lattice).build()
    }

    pub fn builder(nats: async_nats::Client, lattice: &str) -> ClientBuilder {
        ClientBuilder {
            nats,
            lattice: lattice.into(),
            prefix: lattice_proto::subject::DEFAULT_CTL_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
            gather_timeout: DEFAULT_GATHER_TIMEOUT,
            gather_idle: DEFAULT_GATHER_IDLE,
        }
    }

    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Every host that answers `host.ping` within the gather window.
    pub async fn ping_hosts(&self) -> Result<Vec<Host>, Error> {
        let replies = self.gather(self.subjects.host_ping(), Bytes::new()).await?;
        let mut hosts: Vec<Host> = replies
            .iter()
            .filter_map(|r| match open::<Host>(r) {
                Ok(Some(h)) => Some(h),
                other => {
                    tracing::warn!(?other, "ignoring a malformed ping reply");
                    None
                }
            })
            .collect();
        hosts.sort_by(|a, b| a.friendly_name.cmp(&b.friendly_name).then(a.id.cmp(&b.id)));
        hosts.dedup_by(|a, b| a.id == b.id);
        Ok(hosts)
    }

    /// The full inventory of one host.
    pub async fn host_inventory(&self, host_id: &str) -> Result<HostInventory, Error> {
        let subject = self.host_subject(Op::HostGet, host_id)?;
        self.request(subject, Bytes::new())
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Decode, "inventory reply has no body"))
    }

    /// Asks a host to stop, allowing it `timeout` for graceful work.
    pub async fn stop_host(&self, host_id: &str, timeout: Option<Duration>) -> Result<(), Error> {
        let subject = self.host_subject(Op::HostStop, host_id)?;
        let body = json(&StopHostCommand {
            host_id: host_id.into(),
            timeout: timeout.map(|t| t.as_millis() as u64),
        })?;
        self.request::<serde_json::Value>(subject, body)
            .await
            .map(drop)
    }

    pub async fn put_label(&self, host_id: &str, key: &str, value: &str) -> Result<(), Error> {
        let subject = self.host_subject(Op::LabelPut, host_id)?;
        let body = json(&HostLabel {
            key: key.into(),
            value: value.into(),
        })?;
        self.request::<serde_json::Value>(subject, body)
            .await
            .map(drop)
    }

    pub async fn delete_label(&self, host_id: &str, key: &str) -> Result<(), Error> {
        let subject = self.host_subject(Op::LabelDel, host_id)?;
        let body = json(&HostLabelKey { key: key.into() })?;
        self.request::<serde_json::Value>(subject, body)
            .await
            .map(drop)
    }

    /// Stores (replaces) a named config.
    pub async fn put_config(&self, name: &str, values: &ConfigMap) -> Result<(), Error> {
        let subject = self.config_subject(Op::ConfigPut, name)?;
        self.request::<serde_json::Value>(subject, json(values)?)
            .await
            .map(drop)
    }

    /// A named config, or `None` when it does not exist.
    pub async fn get_config(&self, name: &str) -> Result<Option<ConfigMap>, Error> {
        let subject = self.config_subject(Op::ConfigGet, name)?;
        self.request::<BTreeMap<String, String>>(subject, Bytes::new())
            .await
    }

    pub async fn delete_config(&self, name: &str) -> Result<(), Error> {
        let subject = self.config_subject(Op::ConfigDel, name)?;
        self.request::<serde_json::Value>(subject, Bytes::new())
            .await
            .map(drop)
    }

    /// Asks `host_id` to scale a component. The host acknowledges at once; the outcome is a
    /// `component_scaled` or `component_scale_failed` event.
    pub async fn scale_component(
        &self,
        host_id: &str,
        cmd: &ScaleComponentCommand,
    ) -> Result<(), Error> {
        let subject = self.host_subject(Op::ComponentScale, host_id)?;
        self.request::<serde_json::Value>(subject, json(cmd)?)
            .await
            .map(drop)
    }

    /// Asks `host_id` to swap a running component to another reference.
    pub async fn update_component(
        &self,
        host_id: &str,
        cmd: &UpdateComponentCommand,
    ) -> Result<(), Error> {
        let subject = self.host_subject(Op::ComponentUpdate, host_id)?;
        self.request::<serde_json::Value>(subject, json(cmd)?)
            .await
            .map(drop)
    }

    /// Hosts able to run a component (carrying every constraint label, not running the id).
    pub async fn auction_component(
        &self,
        req: &ComponentAuctionRequest,
    ) -> Result<Vec<ComponentAuctionAck>, Error> {
        let replies = self
            .gather(self.subjects.component_auction(), json(req)?)
            .await?;
        Ok(replies
            .iter()
            .filter_map(|r| open::<ComponentAuctionAck>(r).ok().flatten())
            .collect())
    }

    /// Asks `host_id` to start a capability provider; the outcome is a `provider_started` or
    /// `provider_start_failed` event.
    pub async fn start_provider(
        &self,
        host_id: &str,
        cmd: &lattice_proto::provider::StartProviderCommand,
    ) -> Result<(), Error> {
        let subject = self.host_subject(Op::ProviderStart, host_id)?;
        self.request::<serde_json::Value>(subject, json(cmd)?)
            .await
            .map(drop)
    }

    /// Asks `host_id` to stop provider `provider_id`; `provider_stopped` follows.
    pub async fn stop_provider(&self, host_id: &str, provider_id: &str) -> Result<(), Error> {
        let subject = self.host_subject(Op::ProviderStop, host_id)?;
        let cmd = lattice_proto::provider::StopProviderCommand {
            provider_id: provider_id.to_string(),
            host_id: Some(host_id.to_string()),
        };
        self.request::<serde_json::Value>(subject, json(&cmd)?)
            .await
            .map(drop)
    }

    /// Hosts able to run a provider (carrying every constraint label, not running the id).
    pub async fn auction_provider(
        &self,
        req: &lattice_proto::provider::ProviderAuctionRequest,
    ) -> Result<Vec<lattice_proto::provider::ProviderAuctionAck>, Error> {
        let replies = self
            .gather(self.subjects.provider_auction(), json(req)?)
            .await?;
        Ok(replies
            .iter()
            .filter_map(|r| {
                open::<lattice_proto::provider::ProviderAuctionAck>(r)
                    .ok()
                    .flatten()
            })
            .collect())
    }

    /// Gives every host credentials for OCI registries (registry → credentials).
    pub async fn put_registry_credentials(
        &self,
        credentials: &BTreeMap<String, serde_json::Value>,
    ) -> Result<usize, Error> {
        let replies = self
            .gather(self.subjects.registry_put(), json(credentials)?)
            .await?;
        for r in &replies {
            open::<serde_json::Value>(r)?;
        }
        Ok(replies.len())
    }

    /// Stores a link (replacing one with the same source, package, name and interfaces).
    pub async fn put_link(&self, link: &lattice_proto::ctl::Link) -> Result<(), Error> {
        self.request::<serde_json::Value>(self.subjects.lattice_op(Op::LinkPut), json(link)?)
            .await
            .map(drop)
    }

    /// Deletes a link.
    pub async fn delete_link(
        &self,
        req: &lattice_proto::ctl::DeleteLinkRequest,
    ) -> Result<(), Error> {
        self.request::<serde_json::Value>(self.subjects.lattice_op(Op::LinkDel), json(req)?)
            .await
            .map(drop)
    }

    /// Every link of the lattice.
    pub async fn get_links(&self) -> Result<Vec<lattice_proto::ctl::Link>, Error> {
        Ok(self
            .request(self.subjects.lattice_op(Op::LinkGet), Bytes::new())
            .await?
            .unwrap_or_default())
    }

    /// The claims of the lattice's signed components, as wasmCloud lists them (one map per
    /// component); empty on Lattice, whose components are unsigned.
    pub async fn get_claims(
        &self,
    ) -> Result<Vec<std::collections::HashMap<String, String>>, Error> {
        Ok(self
            .request(self.subjects.lattice_op(Op::ClaimsGet), Bytes::new())
            .await?
            .unwrap_or_default())
    }

    /// Parameter and result types of an export of a component running on `host_id`.
    pub async fn signature(
        &self,
        host_id: &str,
        req: &lattice_proto::ctl::SignatureRequest,
    ) -> Result<lattice_wrpc::types::Signature, Error> {
        let subject = self.host_subject(Op::ComponentSignature, host_id)?;
        self.request(subject, json(req)?)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Decode, "signature reply has no body"))
    }

    /// Every lattice event from now on. Malformed events are skipped.
    pub async fn events(
        &self,
    ) -> Result<impl futures::Stream<Item = CloudEvent> + Send + Unpin + 'static, Error> {
        let sub = self
            .nats
            .subscribe(event_wildcard(&self.lattice))
            .await
            .map_err(|e| Error::caused_by(ErrorKind::Transport, e))?;
        // The subscription must be live on the server before the caller acts on it:
        // `flush()` only empties our socket buffer, so echo a message through the server.
        let echo = self.nats.new_inbox();
        let mut probe = self
            .nats
            .subscribe(echo.clone())
            .await
            .map_err(|e| Error::caused_by(ErrorKind::Transport, e))?;
        self.nats
            .publish(echo, Bytes::new())
            .await
            .map_err(|e| Error::caused_by(ErrorKind::Transport, e))?;
        tokio::time::timeout(self.timeout, probe.next())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TimedOut,
                    "the NATS server did not echo within the timeout",
                )
            })?;
        Ok(sub.filter_map(|msg| {
            futures::future::ready(match serde_json::from_slice::<CloudEvent>(&msg.payload) {
                Ok(ev) => Some(ev),
                Err(e) => {
                    tracing::debug!(subject = %msg.subject, error = %e, "skipping malformed event");
                    None
                }
            })
        }))
    }

    /// Follows the lattice's hosts: who joins, who stops and who dies (see [`HostWatcher`]).
    pub async fn watch_hosts(&self) -> Result<HostWatcher, Error> {
        HostWatcher::start(self).await
    }

    fn host_subject(&self, op: Op, host_id: &str) -> Result<String, Error> {
        lattice_proto::subject::validate_token("host id", host_id)
            .map_err(|e| Error::caused_by(ErrorKind::InvalidInput, e))?;
        Ok(self.subjects.host_op(op, host_id))
    }

    fn config_subject(&self, op: Op, name: &str) -> Result<String, Error> {
        validate_config_name(name).map_err(|e| Error::caused_by(ErrorKind::InvalidInput, e))?;
        Ok(self.subjects.config_op(op, name))
    }

    /// One request, one reply, opened from its envelope.
    async fn request<T: DeserializeOwned>(
        &self,
        subject: String,
        body: Bytes,
    ) -> Result<Option<T>, Error> {
        let reply = tokio::time::timeout(self.timeout, self.nats.request(subject.clone(), body))
            .await
            .map_err(|_| timed_out(&subject, self.timeout))?
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::NoResponders => Error::new(
                    ErrorKind::NoResponders,
                    format!(
                        "no responders on {subject}: is the host id right and the host running?"
                    ),
                ),
                async_nats::RequestErrorKind::TimedOut => timed_out(&subject, self.timeout),
                _ => Error::new(
                    ErrorKind::Transport,
                    format!("request on {subject} failed: {e}"),
                ),
            })?;
        open(&reply.payload)
    }

    /// Publishes once and collects every reply until the gather window closes.
    async fn gather(&self, subject: String, body: Bytes) -> Result<Vec<Bytes>, Error> {
        let transport = |e: &dyn std::fmt::Display| Error::new(ErrorKind::Transport, e.to_string());
        let inbox = self.nats.new_inbox();
        let mut sub = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| transport(&e))?;
        self.nats
            .publish_with_reply(subject, inbox, body)
            .await
            .map_err(|e| transport(&e))?;
        self.nats.flush().await.map_err(|e| transport(&e))?;
        let deadline = tokio::time::Instant::now() + self.gather_timeout;
        let mut replies = Vec::new();
        loop {
            let wait = if replies.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + self.gather_idle)
            };
            match tokio::time::timeout_at(wait, sub.next()).await {
                Ok(Some(msg)) if msg.status.is_none() => replies.push(msg.payload),
                // A status message (e.g. no responders) carries no reply.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        Ok(replies)
    }
}

fn timed_out(subject: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::TimedOut,
        format!("no reply on {subject} within {timeout:?}"),
    )
}

fn json<T: Serialize>(value: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::caused_by(ErrorKind::InvalidInput, e))
}

/// Opens a reply envelope: `success:false` becomes [`ErrorKind::Rejected`].
fn open<T: DeserializeOwned>(payload: &[u8]) -> Result<Option<T>, Error> {
    let envelope: CtlResponse<T> = serde_json::from_slice(payload)
        .map_err(|e| Error::new(ErrorKind::Decode, format!("malformed control reply: {e}")))?;
    if !envelope.success {
        return Err(Error::new(ErrorKind::Rejected, envelope.message));
    }
    Ok(envelope.response)
}
