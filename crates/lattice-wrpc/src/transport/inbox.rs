//! A client's shared inbox: the calls in flight, filed under random ids, and how each call
//! gets what arrives for it (plain calls read their own replies off the inbox, see
//! [`Replies`]); and the liveness check made while a call's replies are due.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Message;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::watchdog::{CallState, RoundTrips, Watchdog};
use lattice_proto::wrpc::STREAM_WINDOW;

pub(super) struct ClientInner {
    pub(super) nats: async_nats::Client,
    pub(super) watchdog: Option<Watchdog>,
    pub(super) round_trips: Mutex<RoundTrips>,
    pub(super) calls: Mutex<HashMap<u64, CallRoute>>,
    /// Inbox of plain calls, read by the calls themselves (see [`Replies`]).
    pub(super) inbox: String,
    pub(super) led: tokio::sync::OnceCell<tokio::sync::Mutex<async_nats::Subscriber>>,
    /// Inbox of streamed calls, read by the demultiplexer task: their body's credit must
    /// keep coming while nobody waits for their results.
    pub(super) stream_inbox: String,
    pub(super) demux: tokio::sync::OnceCell<tokio::task::JoinHandle<()>>,
}

impl ClientInner {
    /// Files a new call under a random id: a call's reply subjects (`{inbox}.{id}…`) cannot be
    /// guessed from another call's, so a peer that saw one cannot forge replies or stream
    /// credit for the next.
    pub(super) fn register(&self, route: CallRoute) -> u64 {
        let Ok(mut calls) = self.calls.lock() else {
            return rand::random();
        };
        loop {
            let id = rand::random::<u64>();
            if let std::collections::hash_map::Entry::Vacant(e) = calls.entry(id) {
                e.insert(route);
                return id;
            }
        }
    }

    /// Hands `msg` (received on `{inbox}.>`, `inbox` being `prefix_len - 1` bytes long) to
    /// the call it is for. Returns it instead if that call is `me`. Late replies of calls
    /// that ended are dropped.
    pub(super) fn route(
        &self,
        msg: Message,
        prefix_len: usize,
        me: Option<u64>,
    ) -> Option<Message> {
        let (id, rest) = msg
            .subject
            .get(prefix_len..)
            .map(|rest| rest.split_once('.').unwrap_or((rest, "")))?;
        let id = id.parse::<u64>().ok()?;
        if Some(id) == me {
            return Some(msg);
        }
        let route = self.calls.lock().ok()?.get(&id).cloned()?;
        if rest == "credit" {
            // Never more than a window ahead, whoever sends credit: extra (forged or
            // duplicated) credit cannot make the body outrun its reader.
            if let Some(c) = route
                .credits
                .as_ref()
                .filter(|c| c.available_permits() < STREAM_WINDOW as usize)
            {
                c.add_permits(1)
            }
        } else {
            drop(route.tx.send(msg));
        }
        None
    }

    /// Counts the round trip of a handshake sent at `started` into the watchdog's patience
    /// (see [`Watchdog`]); without a watchdog, reads no clock.
    pub(super) fn observe_round_trip(&self, started: Instant) {
        if self.watchdog.is_some() {
            if let Ok(mut r) = self.round_trips.lock() {
                r.observe(started.elapsed());
            }
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(task) = self.demux.get() {
            task.abort();
        }
    }
}

/// Where the demultiplexer sends what arrives for one call.
#[derive(Clone)]
pub(super) struct CallRoute {
    /// Handshake and results.
    pub(super) tx: mpsc::UnboundedSender<Message>,
    /// Credit for the chunks of the call's body, if it has one (see
    /// [`Client::invoke_streaming`]): counted here, so it keeps flowing while nobody reads the
    /// call's results.
    pub(super) credits: Option<Arc<tokio::sync::Semaphore>>,
}

/// Unregisters a call when it ends, however it ends.
pub(super) struct CallSlot {
    pub(super) inner: Arc<ClientInner>,
    pub(super) id: u64,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if let Ok(mut calls) = self.inner.calls.lock() {
            calls.remove(&self.id);
        }
    }
}

/// What arrives for one call. A streamed call's replies come routed by the client's
/// demultiplexer task. A plain call's are read off the shared inbox by the calls waiting
/// for them: whichever waits first reads for all, handing others theirs, until its own
/// comes; then the next waiting call takes over. A lone call so takes its reply straight
/// from the connection, as a NATS request does, without a task in between (one task hop less
/// per call: `scripts/bench wrpc`'s client -> host p50 fell ~0.05x of a raw request-reply, in
/// alternated runs). Replies that come while no call waits wait in the subscription.
pub(super) struct Replies {
    pub(super) rx: mpsc::UnboundedReceiver<Message>,
    /// For a plain call: its client and its id.
    pub(super) led: Option<(Arc<ClientInner>, u64)>,
}

impl Replies {
    /// The call's next message; `None` once the inbox is closed.
    pub(super) async fn recv(&mut self) -> Option<Message> {
        let Some((inner, me)) = &self.led else {
            return self.rx.recv().await;
        };
        let shared = inner.led.get()?;
        let prefix_len = inner.inbox.len() + 1;
        let mut sub = tokio::select! {
            biased;
            m = self.rx.recv() => return m,
            sub = shared.lock() => sub,
        };
        loop {
            // Handed over by the call that read before.
            if let Ok(m) = self.rx.try_recv() {
                return Some(m);
            }
            if let Some(m) = inner.route(sub.next().await?, prefix_len, Some(*me)) {
                return Some(m);
            }
        }
    }
}

/// Asks `host`, which accepted call `rc`, whether it still runs it, while still taking what
/// arrives (so results racing with the question are not lost). `Ok(Some(msg))`: a message
/// arrived meanwhile; `Ok(None)`: running (or finished once, its results maybe in flight);
/// `Err(why)`: it is gone, or finished without the results ever arriving.
pub(super) async fn check_host(
    w: &Watchdog,
    host: &str,
    rc: &str,
    patience: Duration,
    finished_seen: &mut bool,
    rx: &mut Replies,
) -> Result<Option<Message>, String> {
    let probe = (w.probe)(host.to_string(), rc.to_string(), patience);
    tokio::select! {
        m = rx.recv() => m
            .map(Some)
            .ok_or_else(|| "its reply inbox closed".to_string()),
        state = probe => match state {
            CallState::Running => Ok(None),
            CallState::HostGone => Err("went away before answering".into()),
            // Its results are in flight, or were lost (e.g. with the server the host was
            // connected to): one more round trip.
            CallState::Finished if *finished_seen => {
                Err("finished it, but its results never arrived".into())
            }
            CallState::Finished => {
                *finished_seen = true;
                Ok(None)
            }
        },
    }
}
