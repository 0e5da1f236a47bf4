//! The engine shared by every component of a host.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{self, CacheOutcome, CompileCache};
use crate::pool::ComponentPool;
use crate::services::Services;
use crate::store::Ctx;
use crate::{CallError, CallErrorKind, ConfigValues, LoadError, Policy};

/// How often the epoch advances: the granularity of execution-time limits, and how often a
/// long-running guest yields to other work on its thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Host-wide runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory of the on-disk compile cache; `None` keeps compiled code in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Instance slots of the pooling allocator (0: allocate on demand). Each concurrent call
    /// holds one slot; slots are address space reserved up front, not resident memory.
    pub pool_instances: u32,
    /// Upper bound of any component's linear memory; the pooling allocator reserves this much
    /// address space per memory slot.
    pub max_memory_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pool_instances: 256,
            max_memory_bytes: 256 << 20,
        }
    }
}

/// A call a component made on one of its non-WASI imports, for the [`Router`] to deliver.
#[derive(Debug, Clone)]
pub struct ImportCall {
    /// The calling component's id.
    pub source: Arc<str>,
    /// The link it goes through: `default`, unless the guest picked one by name
    /// (`wasmcloud:bus/lattice`).
    pub link_name: String,
    /// The imported instance, `namespace:package/interface[@version]`.
    pub instance: String,
    pub func: String,
    pub params: Vec<wasmtime::component::Val>,
    /// The types of `params`, for encoding them.
    pub param_types: Vec<wasmtime::component::Type>,
    /// The types the results must have.
    pub results: Vec<wasmtime::component::Type>,
}

/// Where calls on a component's non-WASI imports go: the host resolves the link and calls the
/// target, in-process or over the network.
pub trait Router: Send + Sync + 'static {
    /// Delivers `call`. A failure traps the calling guest, and the call it was serving fails
    /// with this error, its kind intact.
    fn call(
        &self,
        call: ImportCall,
    ) -> futures::future::BoxFuture<'static, Result<Vec<wasmtime::component::Val>, CallError>>;
}

/// One wasmtime engine, linker and compile cache for a whole host.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Ctx>,
    cache: CompileCache,
    /// Pre-linked components by digest: a thousand copies of one component share one.
    linked: std::sync::Mutex<std::collections::HashMap<String, InstancePre<Ctx>>>,
    router: Arc<std::sync::OnceLock<Arc<dyn Router>>>,
    services: Arc<Services>,
    config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine. With `pool_instances > 0` it tries the pooling allocator first and
    /// falls back to on-demand allocation (with a warning) if the address space is not there.
    pub fn new(config: RuntimeConfig) -> Result<Arc<Self>, LoadError> {
        let engine = match config.pool_instances {
            0 => Engine::new(&base_config()),
            n => Engine::new(&pooling_config(n, config.max_memory_bytes)).or_else(|e| {
                tracing::warn!(error = %e, "pooling allocator unavailable; allocating on demand");
                Engine::new(&base_config())
            }),
        }
        .map_err(|e| LoadError::Compile(format!("cannot create engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| crate::builtins::add_to_linker(&mut linker))
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone());
        Ok(Arc::new(Self {
            cache: CompileCache::new(&engine, config.cache_dir.clone()),
            engine,
            linker,
            linked: Default::default(),
            router: Default::default(),
            services: Arc::new(Services::new(config.pool_instances)),
            config,
            ticker_stop,
        }))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Sets where import calls go (once; later calls are ignored). Until then, calls on
    /// non-WASI imports fail with "not linked".
    pub fn set_router(&self, router: Arc<dyn Router>) {
        let _ = self.router.set(router);
    }

    /// Sets the storage behind `wasi:keyvalue` (once; later calls are ignored).
    pub fn set_keyvalue(&self, kv: Arc<dyn crate::KeyValue>) {
        let _ = self.services.keyvalue.set(kv);
    }

    /// Sets what carries `wasmcloud:messaging/consumer` (once; later calls are ignored).
    pub fn set_messaging(&self, m: Arc<dyn crate::Messaging>) {
        let _ = self.services.messaging.set(m);
    }

    /// Compiles (or fetches from cache) and pre-links `bytes` as component `id`, ready to serve
    /// up to `max_instances` concurrent calls under `policy`. CPU-heavy on a cache miss: call
    /// it from a blocking-friendly context.
    pub fn prepare(
        self: &Arc<Self>,
        id: &str,
        bytes: &[u8],
        policy: Policy,
        max_instances: u32,
        config: ConfigValues,
    ) -> Result<(ComponentPool, CacheOutcome), LoadError> {
        let limit = policy.limits.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let digest = cache::digest(bytes);
        let (component, outcome) = self.cache.get_or_compile(&self.engine, &digest, bytes)?;
        let pre = self.link(&digest, &component)?;
        let mut policy = policy;
        policy.limits.max_memory_bytes = policy
            .limits
            .max_memory_bytes
            .min(self.config.max_memory_bytes);
        let compiled = crate::pool::Compiled {
            digest,
            component,
            pre,
        };
        let pool = ComponentPool::new(
            id,
            compiled,
            policy,
            max_instances,
            config,
            self.engine.clone(),
            self.services.clone(),
        );
        Ok((pool, outcome))
    }
}

impl Runtime {
    /// The pre-linked form of `component`, made once per digest.
    fn link(
        &self,
        digest: &str,
        component: &wasmtime::component::Component,
    ) -> Result<InstancePre<Ctx>, LoadError> {
        let mut linked = self.linked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pre) = linked.get(digest) {
            return Ok(pre.clone());
        }
        let link_err = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let pre = if needs_stubs(component, &self.engine) {
            let mut linker = self.linker.clone();
            route_imports(&mut linker, component, &self.engine, &self.router).map_err(link_err)?;
            linker.instantiate_pre(component)
        } else {
            self.linker.instantiate_pre(component)
        }
        .map_err(link_err)?;
        linked.insert(digest.to_string(), pre.clone());
        Ok(pre)
    }
}

fn needs_stubs(component: &wasmtime::component::Component, engine: &Engine) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| !name.starts_with("wasi:"))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Imports outside `wasi:` (interfaces other components export) are routed through the
/// [`Router`]: the call goes wherever the component's link points, and without a link it fails
/// with "not linked" (instantiation still succeeds). `wasi:` imports are left to the linker,
/// which matches them semver-compatibly (a guest built against WASI 0.2.6 runs on our 0.2.12).
fn route_imports(
    linker: &mut Linker<Ctx>,
    component: &wasmtime::component::Component,
    engine: &Engine,
    router: &Arc<std::sync::OnceLock<Arc<dyn Router>>>,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        // Provided by the linker: WASI and the built-in interfaces.
        if crate::builtins::provides(name) {
            continue;
        }
        match import.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut li = linker.instance(name)?;
                for (func, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(_) = item.ty {
                        let (instance, func_name) = (name.to_string(), func.to_string());
                        let router = router.clone();
                        li.func_new_async(func, move |store, ty, params, results| {
                            let call = routed_call(
                                &router,
                                store.data(),
                                &instance,
                                &func_name,
                                &ty,
                                params,
                            );
                            Box::new(async move {
                                let values = call.await.map_err(|m| {
                                    wasmtime::Error::new(crate::error::ImportFailed(m))
                                })?;
                                if values.len() != results.len() {
                                    wasmtime::bail!(
                                        "import returned {} values, expected {}",
                                        values.len(),
                                        results.len()
                                    );
                                }
                                for (slot, v) in results.iter_mut().zip(values) {
                                    *slot = v;
                                }
                                Ok(())
                            })
                        })?;
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => {
                let what = name.to_string();
                linker.root().func_new(name, move |_, _, _, _| {
                    wasmtime::bail!("not linked: root-level import {what} cannot be linked")
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn routed_call(
    router: &std::sync::OnceLock<Arc<dyn Router>>,
    ctx: &Ctx,
    instance: &str,
    func: &str,
    ty: &wasmtime::component::types::ComponentFunc,
    params: &[wasmtime::component::Val],
) -> futures::future::BoxFuture<'static, Result<Vec<wasmtime::component::Val>, CallError>> {
    match router.get() {
        Some(r) => r.call(ImportCall {
            source: ctx.component_id.clone(),
            link_name: link_name(ctx, instance),
            instance: instance.to_string(),
            func: func.to_string(),
            params: params.to_vec(),
            param_types: ty.params().map(|(_, t)| t).collect(),
            results: ty.results().collect(),
        }),
        None => {
            let e = CallError::new(
                CallErrorKind::NotLinked,
                format!("import {instance}.{func} is not linked to any component"),
            );
            Box::pin(async move { Err(e) })
        }
    }
}

fn base_config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        // Keep per-call stacks modest: each in-flight call owns one.
        .async_stack_size(1 << 20)
        .max_wasm_stack(512 << 10);
    c
}

/// Bytes of each pooled memory, table and stack reset in place when a slot is freed.
const KEEP_RESIDENT: usize = 4 << 20;

fn pooling_config(instances: u32, max_memory: usize) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    // A Rust wasip2 component holds a handful of core instances, memories and tables.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(max_memory)
        // Reset a freed slot's dirty pages in place (found with the PAGEMAP_SCAN ioctl,
        // Linux 6.7+) rather than with madvise: in a multi-threaded process every madvise
        // flushes each core's TLB, which made a small guest's call 3x slower when served
        // between network waits than in a tight loop (see the wrpc bench).
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut c = base_config();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a plain thread, so interruption works
/// however busy the async runtime is.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("lattice-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch thread: execution limits will not fire");
    }
}

/// The link name the guest chose for `instance` (`ns:pkg/iface@version`), else `default`.
fn link_name(ctx: &Ctx, instance: &str) -> String {
    let unversioned = instance.split_once('@').map_or(instance, |(i, _)| i);
    ctx.link_names
        .get(unversioned)
        .cloned()
        .unwrap_or_else(|| "default".to_string())
}
