//! Interfaces every host provides in-process: `wasi:logging`, `wasi:config` and
//! `wasmcloud:bus/lattice` (which link a guest's calls go through) here; `wasi:keyvalue` and
//! `wasmcloud:messaging/consumer` in `keyvalue.rs` and `messaging.rs` of this folder, over what
//! the host supplies (the traits in the crate's `keyvalue` and `messaging`).
//!
//! Logging goes to the host's `tracing`, tagged with the component id (target `lattice::guest`).
//! Config is the snapshot of the component's named configs taken when its call started, so a
//! config change in the lattice reaches the very next call.

use crate::store::Ctx;

mod keyvalue;
mod messaging;

wasmtime::component::bindgen!({
    path: "wit",
    world: "lattice:host/builtins",
    with: {
        "wasmcloud:bus/lattice.call-target-interface": CallTargetInterface,
        "wasi:keyvalue/store.bucket": crate::keyvalue::KvBucket,
    },
    // Resource-table failures (a guest holding millions of handles) trap the guest.
    imports: {
        "wasmcloud:bus/lattice": trappable,
        "wasi:keyvalue": async | trappable,
        "wasmcloud:messaging": async | trappable,
    },
});

/// A guest's name for one of its imported interfaces, until it hands it to `set-link-name`.
pub struct CallTargetInterface {
    /// `namespace:package/interface`.
    name: String,
}

use wasi::config::{runtime, store};
use wasi::logging::logging::{self, Level};

/// Whether import `name` (`ns:pkg/iface@version`) is provided by the host itself (WASI, or one
/// of the built-in interfaces) rather than routed to another component through a link.
pub(crate) fn provides(name: &str) -> bool {
    const BUILTIN: [&str; 4] = [
        "wasi:",
        "wasmcloud:bus/",
        "wasmcloud:messaging/consumer@",
        "wasmcloud:messaging/types@",
    ];
    BUILTIN.iter().any(|p| name.starts_with(p))
}

/// Adds the built-in interfaces to `linker`.
pub(crate) fn add_to_linker(linker: &mut wasmtime::component::Linker<Ctx>) -> wasmtime::Result<()> {
    Builtins::add_to_linker::<Ctx, wasmtime::component::HasSelf<Ctx>>(linker, |ctx| ctx)
}

impl logging::Host for Ctx {
    fn log(&mut self, level: Level, context: String, message: String) {
        let id = &*self.component_id;
        // Guests choose the text; cap it so a chatty guest cannot flood the host's logs.
        let message = truncate(&message, 4096);
        let context = truncate(&context, 256);
        // The line names the trace and span of the call it was written in, to find it by.
        let trace = crate::CURRENT_TRACE.try_with(|t| *t).ok().flatten();
        let trace_id = trace.map(|t| t.trace_id_hex());
        let span_id = trace.map(|t| t.parent_id_hex());
        let (trace_id, span_id) = (trace_id.as_deref(), span_id.as_deref());
        macro_rules! log_at {
            ($macro:ident) => {
                tracing::$macro!(target: "lattice::guest", component_id = id, context, trace_id, span_id, "{message}")
            };
        }
        match level {
            Level::Trace => log_at!(trace),
            Level::Debug => log_at!(debug),
            Level::Info => log_at!(info),
            Level::Warn => log_at!(warn),
            Level::Error | Level::Critical => log_at!(error),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl store::Host for Ctx {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        Ok(self.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl runtime::Host for Ctx {
    fn get(&mut self, key: String) -> Result<Option<String>, runtime::ConfigError> {
        Ok(self.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, runtime::ConfigError> {
        Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl wasmcloud::bus::lattice::HostCallTargetInterface for Ctx {
    fn new(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<wasmtime::component::Resource<CallTargetInterface>> {
        let name = format!("{namespace}:{package}/{interface}");
        Ok(self.table.push(CallTargetInterface { name })?)
    }

    fn drop(
        &mut self,
        rep: wasmtime::component::Resource<CallTargetInterface>,
    ) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl wasmcloud::bus::lattice::Host for Ctx {
    fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<wasmtime::component::Resource<CallTargetInterface>>,
    ) -> wasmtime::Result<()> {
        for r in interfaces {
            let target = self.table.delete(r)?;
            self.link_names.insert(target.name, name.clone());
        }
        Ok(())
    }
}
