//! The reconciler's memory between passes: the commands it sent and when (so one is not
//! repeated before the lattice shows its effect or its backoff passes), the config and
//! statuses it wrote, and whom it tells of each command. Not here: deciding what to send
//! (the parent module) and following the lattice (`view`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::AppStatus;

use super::Observer;

/// A command sent and not yet seen to take effect.
pub(super) struct Sent {
    what: String,
    at: Instant,
    backoff: Duration,
}

/// Memory between passes: what was sent (so it is not repeated), what status was written.
#[derive(Default)]
pub(super) struct State {
    pub(super) sent: HashMap<(String, String), Sent>,
    pub(super) configs: HashMap<String, BTreeMap<String, String>>,
    pub(super) statuses: HashMap<String, AppStatus>,
    /// Commands sent in all, for logs.
    pub(super) commands: u64,
    pub(super) observer: Option<std::sync::Arc<dyn Observer>>,
}

/// The kind of a command, from how `may_send` names it (`scale 3`, `update REF`, a link).
fn kind_of(what: &str) -> &'static str {
    match what.split_whitespace().next() {
        Some("scale") => "scale",
        Some("update") => "update",
        Some("stop") => "stop",
        Some("start") => "start",
        _ => "link",
    }
}

pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(3);
/// How often the holder passes over every app while nothing it follows changed: a command
/// that got no answer is sent again no later than its backoff allows.
pub(super) const RESYNC: Duration = FIRST_BACKOFF;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl State {
    /// Whether `what` may be sent for `key` now (not sent, or its backoff passed).
    pub(super) fn may_send(&mut self, key: (String, String), what: String) -> bool {
        match self.sent.get_mut(&key) {
            Some(s) if s.what == what && s.at.elapsed() < s.backoff => false,
            Some(s) if s.what == what => {
                s.at = Instant::now();
                s.backoff = (s.backoff * 2).min(MAX_BACKOFF);
                self.commands += 1;
                if let Some(o) = &self.observer {
                    o.action(kind_of(&what));
                }
                true
            }
            _ => {
                if let Some(o) = &self.observer {
                    o.action(kind_of(&what));
                }
                self.sent.insert(
                    key,
                    Sent {
                        what,
                        at: Instant::now(),
                        backoff: FIRST_BACKOFF,
                    },
                );
                self.commands += 1;
                true
            }
        }
    }

    pub(super) fn settled(&mut self, key: &(String, String)) {
        self.sent.remove(key);
    }
}
