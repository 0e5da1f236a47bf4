//! What this host serves, apart from the serving loop (`serve`): a task per served
//! component, and the calls running now, which `host.alive` answers about.

use std::sync::Arc;

/// What this host serves: a task per component whose exports it serves, and the reply
/// subjects of the calls running now (for callers asking `host.alive` about theirs).
#[derive(Default)]
pub(crate) struct Serving {
    tasks: std::sync::Mutex<std::collections::HashMap<String, tokio::task::JoinHandle<()>>>,
    in_flight: std::sync::Mutex<std::collections::HashSet<Arc<str>>>,
}

impl Serving {
    pub(crate) fn serves(&self, id: &str) -> bool {
        self.tasks
            .lock()
            .map(|s| s.contains_key(id))
            .unwrap_or(false)
    }

    pub(crate) fn insert(&self, id: &str, task: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            if let Some(old) = tasks.insert(id.to_string(), task) {
                old.abort();
            }
        }
    }

    /// Stops serving component `id` (its queue membership ends with the subscription).
    pub(crate) fn stop(&self, id: &str) {
        if let Some(task) = self.tasks.lock().ok().and_then(|mut s| s.remove(id)) {
            task.abort();
        }
    }

    /// Stops serving everything.
    pub(crate) fn stop_all(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for (_, task) in tasks.drain() {
                task.abort();
            }
        }
    }

    /// Whether the call answering to reply subject `call` is running on this host.
    pub(crate) fn is_running(&self, call: &str) -> bool {
        self.in_flight
            .lock()
            .map(|f| f.contains(call))
            .unwrap_or(false)
    }
}

/// Marks a call as running on this host (see `host.alive`) until dropped, however the call
/// ends.
pub(crate) struct InFlight<'a> {
    serving: &'a Serving,
    /// Shared with the set, so a call allocates its name once.
    reply: Arc<str>,
}

impl<'a> InFlight<'a> {
    pub(crate) fn new(serving: &'a Serving, reply: &str) -> Self {
        let reply: Arc<str> = reply.into();
        if let Ok(mut f) = serving.in_flight.lock() {
            f.insert(reply.clone());
        }
        Self { serving, reply }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.serving.in_flight.lock() {
            f.remove(&*self.reply);
        }
    }
}
