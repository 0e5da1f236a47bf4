//! Data of one store (one call): WASI context, resource limiter, config snapshot.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::policy::Policy;
use crate::ConfigValues;

pub(crate) struct Ctx {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub limiter: Limiter,
    pub component_id: Arc<str>,
    pub config: Arc<ConfigValues>,
    /// Link names the guest chose (`wasmcloud:bus/lattice.set-link-name`), by
    /// `namespace:package/interface`; unlisted interfaces use `default`.
    pub link_names: std::collections::HashMap<String, String>,
    /// Storage behind `wasi:keyvalue`, if the host has any.
    pub keyvalue: Option<Arc<dyn crate::KeyValue>>,
    /// What carries `wasmcloud:messaging/consumer`, if the host has it.
    pub messaging: Option<Arc<dyn crate::Messaging>>,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    /// Which hosts `wasi:http/outgoing-handler` may reach.
    pub(crate) outgoing: crate::outgoing::OutgoingPolicy,
}

impl Ctx {
    pub fn new(
        policy: &Policy,
        component_id: Arc<str>,
        config: Arc<ConfigValues>,
        services: &crate::services::Services,
        outgoing: crate::outgoing::OutgoingPolicy,
    ) -> Self {
        Self {
            wasi: wasi_ctx(policy),
            table: ResourceTable::new(),
            limiter: Limiter {
                max_memory_bytes: policy.limits.max_memory_bytes,
                memory_limit_hit: false,
            },
            component_id,
            config,
            link_names: Default::default(),
            keyvalue: services.keyvalue.get().cloned(),
            messaging: services.messaging.get().cloned(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            outgoing,
        }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The WASI context a policy allows: nothing but clocks and randomness unless granted.
fn wasi_ctx(policy: &Policy) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    // stdin closed, stdout/stderr discarded, no args: the builder's defaults.
    for (k, v) in &policy.grants.env {
        b.env(k, v);
    }
    for (host, guest, read_only) in &policy.grants.dirs {
        let perms = if *read_only {
            wasmtime_wasi::FsPerms::ReadOnly
        } else {
            wasmtime_wasi::FsPerms::ReadWrite
        };
        if let Err(e) = b.preopened_dir(host, guest, perms) {
            tracing::warn!(host = %host.display(), error = %e, "cannot grant directory");
        }
    }
    let network = policy.grants.network;
    b.allow_tcp(network)
        .allow_udp(network)
        .allow_ip_name_lookup(network)
        .socket_addr_check(move |_, _| Box::pin(async move { network }));
    b.build()
}

/// Enforces the memory limit and remembers that it was hit, so the trap that follows can be
/// reported as "memory limit" rather than a generic trap.
pub(crate) struct Limiter {
    max_memory_bytes: usize,
    pub memory_limit_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.memory_limit_hit = true;
            // An error (not `Ok(false)`) traps at once: guests rarely handle a failed grow.
            wasmtime::bail!(
                "memory limit: growing linear memory to {desired} bytes exceeds the limit of {} bytes",
                self.max_memory_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
