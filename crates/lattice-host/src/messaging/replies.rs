//! Reply subjects a component may answer: those of the messages it is handling now, each
//! with the connection the message came in on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lattice_proto::grant;

/// Reply subjects of the messages each component is handling now, with the connection each
/// came in on: the one kind of inbox a component may publish to, and only while it handles
/// the message.
#[derive(Default)]
pub(crate) struct Replies {
    open: Mutex<OpenReplies>,
}

/// By (component, reply subject): how many of its messages with that reply are being
/// handled, and the connection they came in on.
type OpenReplies = HashMap<(Arc<str>, String), (usize, async_nats::Client)>;

impl Replies {
    /// Opens `subject` for `component`'s answer. The sender chose it: only an inbox-like one
    /// (or an ordinary subject) opens, never one of the lattice's own, or a peer could make the
    /// component "answer" a control request (`host.stop`) on its behalf.
    pub(crate) fn open(&self, component: &Arc<str>, subject: &str, via: &async_nats::Client) {
        if grant::reserved(subject).is_some_and(|s| s != grant::Reserved::Inbox) {
            return;
        }
        if let Ok(mut o) = self.open.lock() {
            o.entry((component.clone(), subject.to_string()))
                .or_insert_with(|| (0, via.clone()))
                .0 += 1;
        }
    }

    pub(crate) fn close(&self, component: &Arc<str>, subject: &str) {
        if let Ok(mut o) = self.open.lock() {
            let key = (component.clone(), subject.to_string());
            if let Some((n, _)) = o.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    o.remove(&key);
                }
            }
        }
    }

    /// The connection to answer on, if `subject` is a reply `component` may send now.
    pub(crate) fn open_on(
        &self,
        component: &Arc<str>,
        subject: &str,
    ) -> Option<async_nats::Client> {
        self.open
            .lock()
            .ok()?
            .get(&(component.clone(), subject.to_string()))
            .map(|(_, c)| c.clone())
    }
}
