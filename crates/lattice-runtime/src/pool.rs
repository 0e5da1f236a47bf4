//! A prepared component and the calls it serves.
//!
//! **One fresh instance per call.** Instantiating from a pre-linked `InstancePre` costs
//! microseconds (see the runtime bench), isolates calls from each other (no state leaks
//! between callers, a trap poisons nothing), and makes `max_instances` mean exactly "calls
//! running at once". Calls beyond `max_instances` wait for a free slot, in order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Val};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::error::{CallError, CallErrorKind};
use crate::store::Ctx;
use crate::{ConfigValues, Policy};

/// Counters of one component's calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Calls completed (successfully or not).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Instances alive right now.
    pub active: u32,
    /// Most instances ever alive at once.
    pub peak: u32,
    /// The current concurrency bound.
    pub max_instances: u32,
}

/// Marker error raised by the epoch callback when a call runs out of time.
#[derive(Debug)]
struct DeadlineHit;

impl std::fmt::Display for DeadlineHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("max execution time exceeded")
    }
}

impl std::error::Error for DeadlineHit {}

/// A compiled, pre-linked component serving calls under its policy.
pub struct ComponentPool {
    id: Arc<str>,
    digest: String,
    component: Component,
    pre: InstancePre<Ctx>,
    /// The `wasi:http` view of `pre`, if the component serves HTTP.
    proxy_pre: Option<wasmtime_wasi_http::p2::bindings::ProxyPre<Ctx>>,
    /// The policy's outgoing-HTTP grant, built once (each call's store shares it).
    outgoing: crate::http::OutgoingPolicy,
    policy: Policy,
    engine: Engine,
    permits: Arc<Semaphore>,
    max_instances: AtomicU32,
    config: RwLock<Arc<ConfigValues>>,
    exports: RwLock<HashMap<(String, String), ComponentExportIndex>>,
    services: Arc<crate::engine::Services>,
    calls: AtomicU64,
    failures: AtomicU64,
    active: AtomicU32,
    peak: AtomicU32,
}

impl ComponentPool {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: &str,
        digest: String,
        component: Component,
        pre: InstancePre<Ctx>,
        policy: Policy,
        max_instances: u32,
        config: ConfigValues,
        engine: Engine,
        services: Arc<crate::engine::Services>,
    ) -> Self {
        Self {
            services,
            id: id.into(),
            digest,
            component,
            proxy_pre: crate::http::proxy_pre(&pre),
            outgoing: crate::http::OutgoingPolicy::new(&policy.grants.http_hosts),
            pre,
            policy,
            engine,
            permits: Arc::new(Semaphore::new(max_instances as usize)),
            max_instances: AtomicU32::new(max_instances),
            config: RwLock::new(Arc::new(config)),
            exports: RwLock::new(HashMap::new()),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            active: AtomicU32::new(0),
            peak: AtomicU32::new(0),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `sha256:…` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The compiled component (for its export types).
    pub fn component(&self) -> &Component {
        &self.component
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            max_instances: self.max_instances(),
        }
    }

    pub fn max_instances(&self) -> u32 {
        self.max_instances.load(Ordering::Relaxed)
    }

    /// Changes the concurrency bound. Shrinking takes effect as running calls finish: the
    /// surplus slots are claimed (in queue order) and retired.
    pub fn set_max_instances(&self, max: u32) {
        let old = self.max_instances.swap(max, Ordering::SeqCst);
        if max > old {
            self.permits.add_permits((max - old) as usize);
        } else if max < old {
            let permits = self.permits.clone();
            let surplus = old - max;
            tokio::spawn(async move {
                if let Ok(p) = permits.acquire_many(surplus).await {
                    p.forget();
                }
            });
        }
    }

    /// Replaces the config the next calls see.
    pub fn set_config(&self, config: ConfigValues) {
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
    }

    pub fn config(&self) -> Arc<ConfigValues> {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Parameter and result types of exported function `func` of `interface` (`None`: a
    /// root-level function), or `None` if the component exports no such function.
    pub fn export_types(
        &self,
        interface: Option<&str>,
        func: &str,
    ) -> Option<(
        Vec<wasmtime::component::Type>,
        Vec<wasmtime::component::Type>,
    )> {
        use wasmtime::component::types::ComponentItem;
        let ty = self.component.component_type();
        let item = match interface {
            Some(i) => match ty.get_export(&self.engine, i)?.ty {
                ComponentItem::ComponentInstance(inst) => inst.get_export(&self.engine, func)?.ty,
                _ => return None,
            },
            None => ty.get_export(&self.engine, func)?.ty,
        };
        match item {
            ComponentItem::ComponentFunc(f) => {
                Some((f.params().map(|(_, t)| t).collect(), f.results().collect()))
            }
            _ => None,
        }
    }

    /// Stops serving: calls waiting for an instance fail with [`CallErrorKind::Stopped`];
    /// running calls finish.
    pub fn close(&self) {
        self.permits.close();
    }

    /// Calls `func` of exported interface `interface` (`None` for a root-level function) with
    /// `params`, in a fresh instance, within the component's limits.
    pub async fn call(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let permit = self.acquire().await?;
        let limit = self.policy.limits.max_execution_time;
        // The epoch callback interrupts guest code; the timeout also covers time a guest spends
        // waiting in host calls (sleeps, I/O), where no guest code runs.
        let result =
            match tokio::time::timeout(limit, self.call_in_new_instance(interface, func, params))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(CallError::deadline(limit)),
            };
        self.finish(permit, result.as_ref().err());
        if let Err(e) = &result {
            tracing::debug!(component_id = %self.id, func, error = %e, "call failed");
        }
        result
    }

    /// Waits for a free instance slot and counts the instance as active.
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, CallError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
            CallError::new(
                CallErrorKind::Stopped,
                format!("component {} was stopped", self.id),
            )
        })?;
        let active = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(active, Ordering::SeqCst);
        Ok(permit)
    }

    /// Frees the slot `acquire` gave and counts the call.
    pub(crate) fn finish(&self, permit: OwnedSemaphorePermit, error: Option<&CallError>) {
        drop(permit);
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if error.is_some() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn proxy_pre(&self) -> Option<&wasmtime_wasi_http::p2::bindings::ProxyPre<Ctx>> {
        self.proxy_pre.as_ref()
    }

    async fn call_in_new_instance(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let (mut store, f) = self.instantiate(interface, func).await?;
        let ty = f.ty(&store);
        if ty.params().len() != params.len() {
            return Err(CallError::new(
                CallErrorKind::BadArguments,
                format!(
                    "{func} takes {} arguments, {} given",
                    ty.params().len(),
                    params.len()
                ),
            ));
        }
        let mut results = vec![Val::Bool(false); ty.results().len()];
        f.call_async(&mut store, params, &mut results)
            .await
            .map_err(|e| self.classify(&store, e, CallErrorKind::Trapped))?;
        Ok(results)
    }

    /// A fresh instance in its own store, and its export `func` of `interface`.
    async fn instantiate(
        &self,
        interface: Option<&str>,
        func: &str,
    ) -> Result<(Store<Ctx>, wasmtime::component::Func), CallError> {
        let index = self.export_index(interface, func)?;
        let mut store = self.new_store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.classify(&store, e, CallErrorKind::Instantiate))?;
        let f = instance.get_func(&mut store, index).ok_or_else(|| {
            CallError::new(
                CallErrorKind::NoSuchFunction,
                format!("{func} is not a function"),
            )
        })?;
        Ok((store, f))
    }

    /// A store for one instance: the component's limits, its config snapshot, and an epoch
    /// deadline that yields every tick and interrupts the guest once its time is up.
    pub(crate) fn new_store(&self) -> Store<Ctx> {
        let mut store = Store::new(
            &self.engine,
            Ctx::new(
                &self.policy,
                self.id.clone(),
                self.config(),
                &self.services,
                self.outgoing.clone(),
            ),
        );
        store.limiter(|ctx| &mut ctx.limiter);
        let deadline = Instant::now() + self.policy.limits.max_execution_time;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineHit))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// For benchmarks: `n` sequential calls in one reused instance, the alternative to an
    /// instance per call. Returns the time the calls took (instantiation excluded).
    #[doc(hidden)]
    pub async fn time_reused_instance(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
        n: u32,
    ) -> Result<std::time::Duration, CallError> {
        let (mut store, f) = self.instantiate(interface, func).await?;
        let mut results = vec![Val::Bool(false); f.ty(&store).results().len()];
        let started = Instant::now();
        for _ in 0..n {
            f.call_async(&mut store, params, &mut results)
                .await
                .map_err(|e| self.classify(&store, e, CallErrorKind::Trapped))?;
        }
        Ok(started.elapsed())
    }

    fn export_index(
        &self,
        interface: Option<&str>,
        func: &str,
    ) -> Result<ComponentExportIndex, CallError> {
        let key = (interface.unwrap_or("").to_string(), func.to_string());
        if let Some(i) = self.exports.read().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(i);
        }
        let missing = |what: String| {
            CallError::new(
                CallErrorKind::NoSuchFunction,
                format!("component {} exports no {what}", self.id),
            )
        };
        let parent = match interface {
            Some(name) => Some(
                self.component
                    .get_export_index(None, name)
                    .ok_or_else(|| missing(format!("interface {name}")))?,
            ),
            None => None,
        };
        let index = self
            .component
            .get_export_index(parent.as_ref(), func)
            .ok_or_else(|| match interface {
                Some(i) => missing(format!("function {func} in {i}")),
                None => missing(format!("function {func}")),
            })?;
        if let Ok(mut m) = self.exports.write() {
            m.insert(key, index);
        }
        Ok(index)
    }

    pub(crate) fn classify(
        &self,
        store: &Store<Ctx>,
        e: wasmtime::Error,
        default: CallErrorKind,
    ) -> CallError {
        if store.data().limiter.memory_limit_hit {
            return CallError::new(
                CallErrorKind::MemoryLimit,
                format!(
                    "guest exceeded its memory limit of {} bytes and was stopped",
                    self.policy.limits.max_memory_bytes
                ),
            );
        }
        if let Some(failed) = e
            .chain()
            .find_map(|c| c.downcast_ref::<crate::error::ImportFailed>())
        {
            return CallError::new(CallErrorKind::Import, failed.0.clone());
        }
        if e.downcast_ref::<DeadlineHit>().is_some() || is_deadline(&e) {
            return CallError::deadline(self.policy.limits.max_execution_time);
        }
        CallError::new(default, format!("{e:#}"))
    }
}

fn is_deadline(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<DeadlineHit>().is_some())
}
