//! A prepared component and the calls it serves.
//!
//! **One fresh instance per call.** Instantiating from a pre-linked `InstancePre` costs
//! microseconds (see the runtime bench), isolates calls from each other (no state leaks
//! between callers, a trap poisons nothing), and makes `max_instances` mean exactly "calls
//! running at once". Calls beyond `max_instances` wait for a free slot, in order.
//!
//! **A spare made ahead.** A served call ([`ComponentPool::call_then_clean_up`]) leaves
//! freeing its instance, and making the next call's instance, until its results are out
//! ([`Spent::clean_up`]): the next call then starts in a ready instance (made with the
//! config it will see; one made before a config change is dropped). A host keeps at most
//! 16 spares, and never more than an eighth of its instance slots; a spare is not a running
//! call, so `max_instances` still bounds calls, not instances.

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
    /// Calls waiting for an instance now (the bound is reached).
    pub waiting: u32,
    /// The current concurrency bound.
    pub max_instances: u32,
    /// An instance is made ahead for the next call.
    pub spare: bool,
}

/// Takes one off a waiting count when dropped, however the wait ended.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
    outgoing: crate::outgoing::OutgoingPolicy,
    policy: Policy,
    engine: Engine,
    permits: Arc<Semaphore>,
    max_instances: AtomicU32,
    config: RwLock<Arc<ConfigValues>>,
    /// Exported functions looked up so far, by interface (`""`: the root) and name; only
    /// found ones, so names off the network cannot grow it.
    exports: RwLock<HashMap<String, HashMap<String, Arc<Export>>>>,
    services: Arc<crate::services::Services>,
    /// An instance made ahead for the next call (see [`Spent::clean_up`]).
    spare: std::sync::Mutex<Option<Spare>>,
    calls: AtomicU64,
    failures: AtomicU64,
    active: AtomicU32,
    peak: AtomicU32,
    waiting: AtomicU32,
}

/// A component compiled and pre-linked, with the digest of its bytes.
pub(crate) struct Compiled {
    pub digest: String,
    pub component: Component,
    pub pre: InstancePre<Ctx>,
}

impl ComponentPool {
    pub(crate) fn new(
        id: &str,
        compiled: Compiled,
        policy: Policy,
        max_instances: u32,
        config: ConfigValues,
        engine: Engine,
        services: Arc<crate::services::Services>,
    ) -> Self {
        let Compiled {
            digest,
            component,
            pre,
        } = compiled;
        Self {
            services,
            id: id.into(),
            digest,
            component,
            proxy_pre: wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone()).ok(),
            outgoing: crate::outgoing::OutgoingPolicy::new(&policy.grants.http_hosts),
            pre,
            policy,
            engine,
            permits: Arc::new(Semaphore::new(max_instances as usize)),
            max_instances: AtomicU32::new(max_instances),
            config: RwLock::new(Arc::new(config)),
            exports: RwLock::new(HashMap::new()),
            spare: std::sync::Mutex::new(None),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            active: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
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
            waiting: self.waiting.load(Ordering::Relaxed),
            max_instances: self.max_instances(),
            spare: self.spare.lock().map(|s| s.is_some()).unwrap_or(false),
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

    /// Exported function `func` of `interface` (`None`: a root-level function): looked up
    /// in the component once, then served from a cache without allocating.
    pub fn export(&self, interface: Option<&str>, func: &str) -> Result<Arc<Export>, CallError> {
        let iface = interface.unwrap_or("");
        let cached = self
            .exports
            .read()
            .ok()
            .and_then(|m| m.get(iface)?.get(func).cloned());
        if let Some(e) = cached {
            return Ok(e);
        }
        let export = Arc::new(self.look_up_export(interface, func)?);
        if let Ok(mut m) = self.exports.write() {
            m.entry(iface.to_string())
                .or_default()
                .insert(func.to_string(), export.clone());
        }
        Ok(export)
    }

    fn look_up_export(&self, interface: Option<&str>, func: &str) -> Result<Export, CallError> {
        use wasmtime::component::types::ComponentItem;
        let missing = |what: String| {
            CallError::new(
                CallErrorKind::NoSuchFunction,
                format!("component {} exports no {what}", self.id),
            )
        };
        let parent = match interface {
            Some(name) => match self.component.get_export(None, name) {
                Some((ComponentItem::ComponentInstance(_), index)) => Some(index),
                _ => return Err(missing(format!("interface {name}"))),
            },
            None => None,
        };
        match self.component.get_export(parent.as_ref(), func) {
            Some((ComponentItem::ComponentFunc(f), index)) => Ok(Export {
                index,
                params: f.params().map(|(_, t)| t).collect(),
                results: f.results().collect(),
            }),
            _ => Err(missing(match interface {
                Some(i) => format!("function {func} in {i}"),
                None => format!("function {func}"),
            })),
        }
    }

    /// Stops serving: calls waiting for an instance fail with [`CallErrorKind::Stopped`];
    /// running calls finish.
    pub fn close(&self) {
        self.permits.close();
        self.spare.lock().map(|mut s| s.take()).ok();
    }

    /// Like [`ComponentPool::call`], but leaves the instance to free (and the next call's
    /// instance to make) to [`Spent::clean_up`], for the caller to run once the results are
    /// on their way.
    pub async fn call_then_clean_up(
        self: &Arc<Self>,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<(Vec<Val>, Spent), CallError> {
        let (results, store, permit) = self.run(interface, func, params).await?;
        let spent = Spent {
            instance: Some((store, permit)),
            pool: self.clone(),
        };
        Ok((results, spent))
    }

    /// Makes the spare instance if there is none and the host has room for one.
    async fn refill_spare(&self) {
        if self.permits.is_closed() || self.spare.lock().map(|s| s.is_some()).unwrap_or(true) {
            return;
        }
        let Some(budget) = self.services.spare_budget() else {
            return;
        };
        let (store, instance) = match self.new_instance().await {
            Ok(made) => made,
            Err(e) => {
                tracing::debug!(component_id = %self.id, error = %e, "no spare instance");
                return;
            }
        };
        let spare = Spare {
            store,
            instance,
            config: self.config(),
            _budget: budget,
        };
        // Stopped meanwhile: no call will take it.
        if self.permits.is_closed() {
            return;
        }
        if let Ok(mut s) = self.spare.lock() {
            *s = Some(spare);
        }
    }

    /// Calls `func` of exported interface `interface` (`None` for a root-level function) with
    /// `params`, in a fresh instance, within the component's limits.
    pub async fn call(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<Vec<Val>, CallError> {
        let (results, store, permit) = self.run(interface, func, params).await?;
        drop(store);
        self.finish(permit, None);
        Ok(results)
    }

    /// One call within the component's limits. On success the instance (its store) and its
    /// slot come back with the results; a failed call is counted and freed here.
    async fn run(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<(Vec<Val>, Store<Ctx>, OwnedSemaphorePermit), CallError> {
        let permit = self.acquire().await?;
        let limit = self.policy.limits.max_execution_time;
        // The epoch callback interrupts guest code; the timeout also covers time a guest spends
        // waiting in host calls (sleeps, I/O), where no guest code runs.
        let result =
            match tokio::time::timeout(limit, self.call_in_instance(interface, func, params)).await
            {
                Ok(r) => r,
                Err(_) => Err(CallError::execution_time(limit)),
            };
        match result {
            Ok((results, store)) => Ok((results, store, permit)),
            Err(e) => {
                self.finish(permit, Some(&e));
                tracing::debug!(component_id = %self.id, func, error = %e, "call failed");
                Err(e)
            }
        }
    }

    /// Waits for a free instance slot and counts the instance as active.
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, CallError> {
        let stopped = || {
            CallError::new(
                CallErrorKind::Stopped,
                format!("component {} was stopped", self.id),
            )
        };
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(stopped()),
            // At the bound: counted as waiting until a slot frees (or the call is dropped).
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                let _waited = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| stopped())?
            }
        };
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

    /// Calls `func` in the spare instance if there is a current one, else in a new one;
    /// returns the results and the instance's store.
    async fn call_in_instance(
        &self,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<(Vec<Val>, Store<Ctx>), CallError> {
        // An unknown function fails before any instance is made or taken.
        let export = self.export(interface, func)?;
        if export.params.len() != params.len() {
            return Err(CallError::new(
                CallErrorKind::BadArguments,
                format!(
                    "{func} takes {} arguments, {} given",
                    export.params.len(),
                    params.len()
                ),
            ));
        }
        let spare = self.spare.lock().ok().and_then(|mut s| s.take());
        let (mut store, instance) = match spare.filter(|s| Arc::ptr_eq(&s.config, &self.config())) {
            Some(Spare {
                mut store,
                instance,
                ..
            }) => {
                self.arm_deadline(&mut store);
                (store, instance)
            }
            None => self.new_instance().await?,
        };
        let f = self.func_of(&mut store, &instance, export.index, func)?;
        let mut results = vec![Val::Bool(false); export.results.len()];
        f.call_async(&mut store, params, &mut results)
            .await
            .map_err(|e| self.classify(&store, e, CallErrorKind::Trapped))?;
        Ok((results, store))
    }

    /// A fresh instance in its own store, and its export `func` of `interface`.
    async fn instantiate(
        &self,
        interface: Option<&str>,
        func: &str,
    ) -> Result<(Store<Ctx>, wasmtime::component::Func), CallError> {
        let index = self.export(interface, func)?.index;
        let (mut store, instance) = self.new_instance().await?;
        let f = self.func_of(&mut store, &instance, index, func)?;
        Ok((store, f))
    }

    /// A fresh instance in its own store.
    async fn new_instance(&self) -> Result<(Store<Ctx>, wasmtime::component::Instance), CallError> {
        let mut store = self.new_store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.classify(&store, e, CallErrorKind::Instantiate))?;
        Ok((store, instance))
    }

    /// The function at export `index` (named `func`) of `instance`.
    fn func_of(
        &self,
        store: &mut Store<Ctx>,
        instance: &wasmtime::component::Instance,
        index: ComponentExportIndex,
        func: &str,
    ) -> Result<wasmtime::component::Func, CallError> {
        instance.get_func(store, index).ok_or_else(|| {
            CallError::new(
                CallErrorKind::NoSuchFunction,
                format!("{func} is not a function"),
            )
        })
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
        self.arm_deadline(&mut store);
        store
    }

    /// Interrupts the guest in `store` once its execution time, counted from now, is up.
    fn arm_deadline(&self, store: &mut Store<Ctx>) {
        let deadline = Instant::now() + self.policy.limits.max_execution_time;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineHit))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
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
            return failed.0.clone();
        }
        if e.downcast_ref::<DeadlineHit>().is_some() || is_deadline(&e) {
            return CallError::execution_time(self.policy.limits.max_execution_time);
        }
        CallError::new(default, format!("{e:#}"))
    }
}

fn is_deadline(e: &wasmtime::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<DeadlineHit>().is_some())
}

/// An exported function: where it is in the component, and its parameter and result types.
pub struct Export {
    index: ComponentExportIndex,
    pub params: Vec<wasmtime::component::Type>,
    pub results: Vec<wasmtime::component::Type>,
}

/// An instance made before its call, with the config it was made with.
struct Spare {
    store: Store<Ctx>,
    instance: wasmtime::component::Instance,
    config: Arc<ConfigValues>,
    /// Its share of the host's spares, given back when it is used or dropped.
    _budget: OwnedSemaphorePermit,
}

/// What a call left behind: its instance, still holding its slot (counted active, the call
/// not yet counted done) until [`Spent::clean_up`] or drop.
pub struct Spent {
    instance: Option<(Store<Ctx>, OwnedSemaphorePermit)>,
    pool: Arc<ComponentPool>,
}

impl Spent {
    /// Frees the instance and makes the next call's instance ahead of it: work that needs
    /// not stand between a caller and its results.
    pub async fn clean_up(mut self) {
        self.free();
        self.pool.refill_spare().await;
    }

    fn free(&mut self) {
        if let Some((store, permit)) = self.instance.take() {
            drop(store);
            self.pool.finish(permit, None);
        }
    }
}

impl Drop for Spent {
    fn drop(&mut self) {
        self.free();
    }
}
