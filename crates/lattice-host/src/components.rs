//! The components a host runs: scaling, updating, config and the local call path.
//!
//! Scale and update requests for one component id run one at a time (a per-id lock), so two
//! racing requests cannot both start it; requests for different ids run concurrently.
//! Compilation happens on a blocking thread, so a large component never stalls the host.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lattice_proto::ctl::{ComponentDescription, ConfigMap, ScaleComponentCommand};
use lattice_runtime::{CallError, ComponentPool, Limits, Policy, Runtime, Val};

use crate::oci::OciClient;
use crate::store::ConfigStore;

/// A component running on this host.
pub(crate) struct Running {
    pub image_ref: String,
    pub annotations: BTreeMap<String, String>,
    pub revision: i32,
    pub config_names: Vec<String>,
    pub pool: Arc<ComponentPool>,
}

/// Why a scale or update failed; the text goes into `component_scale_failed`.
pub(crate) type ScaleError = String;

/// A local call that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("component {0} is not running on this host")]
    NotRunning(String),
    #[error(transparent)]
    Call(#[from] CallError),
}

pub(crate) struct Components {
    runtime: Arc<Runtime>,
    oci: Arc<OciClient>,
    allow_file_load: bool,
    default_limits: Limits,
    running: RwLock<BTreeMap<String, Arc<Running>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Components {
    pub fn new(
        runtime: Arc<Runtime>,
        oci: Arc<OciClient>,
        allow_file_load: bool,
        default_limits: Limits,
    ) -> Self {
        Self {
            runtime,
            oci,
            allow_file_load,
            default_limits,
            running: RwLock::new(BTreeMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn oci(&self) -> &OciClient {
        &self.oci
    }

    pub fn get(&self, id: &str) -> Option<Arc<Running>> {
        self.running.read().ok().and_then(|r| r.get(id).cloned())
    }

    /// Inventory entries, sorted by id.
    pub fn describe(&self) -> Vec<ComponentDescription> {
        let Ok(running) = self.running.read() else {
            return Vec::new();
        };
        running
            .iter()
            .map(|(id, r)| ComponentDescription {
                id: id.clone(),
                image_ref: r.image_ref.clone(),
                name: None,
                annotations: r.annotations.clone(),
                revision: r.revision,
                max_instances: r.pool.max_instances(),
                limits: Some(limits_map(&r.pool.policy().limits)),
                calls: Some(r.pool.stats().calls),
                failed_calls: Some(r.pool.stats().failures),
            })
            .collect()
    }

    /// Each running component's instances, for the metrics.
    pub fn instances(&self) -> Vec<lattice_telemetry::Instances> {
        let Ok(running) = self.running.read() else {
            return Vec::new();
        };
        running
            .iter()
            .map(|(id, r)| {
                let stats = r.pool.stats();
                lattice_telemetry::Instances {
                    component: id.clone(),
                    active: u64::from(stats.active),
                    max: u64::from(stats.max_instances),
                    waiting: u64::from(stats.waiting),
                }
            })
            .collect()
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn insert(&self, id: &str, running: Running) {
        if let Ok(mut r) = self.running.write() {
            r.insert(id.to_string(), Arc::new(running));
        }
    }

    fn remove(&self, id: &str) -> Option<Arc<Running>> {
        self.running.write().ok().and_then(|mut r| r.remove(id))
    }

    /// Applies a scale request. Returns the image ref now running (for the event).
    pub async fn scale(
        &self,
        cmd: &ScaleComponentCommand,
        config: &ConfigStore,
    ) -> Result<(), ScaleError> {
        let lock = self.lock(&cmd.component_id);
        let _guard = lock.lock().await;
        let id = &cmd.component_id;
        if cmd.count == 0 {
            if let Some(r) = self.remove(id) {
                // Calls waiting for an instance fail fast; running ones finish.
                r.pool.close();
                tracing::info!(component_id = %id, "component stopped");
            }
            return Ok(());
        }
        let current = self.get(id);
        if let Some(r) = &current {
            // Limits and grants given with the request replace the running ones; ones not
            // given are kept (wasmCloud clients send neither).
            let old = r.pool.policy();
            let mut wanted = old.clone();
            if cmd.component_limits.is_some() {
                wanted.limits = parse_limits(cmd.component_limits.as_ref(), &self.default_limits)?;
            }
            if !cmd.allowed_hosts.is_empty() {
                wanted.grants.http_hosts = cmd.allowed_hosts.clone();
            }
            if r.image_ref == cmd.component_ref && wanted != *old {
                // Both are built into the pool: a new one, from the compile cache. Calls
                // running on the old one finish there.
                let values = merged_config(config, &cmd.config).await?;
                let pool = self
                    .load(id, &cmd.component_ref, wanted, cmd.count, values)
                    .await?;
                self.insert(
                    id,
                    Running {
                        image_ref: r.image_ref.clone(),
                        annotations: cmd.annotations.clone(),
                        revision: r.revision + 1,
                        config_names: cmd.config.clone(),
                        pool: Arc::new(pool),
                    },
                );
                tracing::info!(component_id = %id, max_instances = cmd.count, "component limits or grants changed");
                return Ok(());
            }
            if r.image_ref == cmd.component_ref {
                r.pool.set_max_instances(cmd.count);
                let names_changed = r.config_names != cmd.config;
                let updated = Running {
                    image_ref: r.image_ref.clone(),
                    annotations: cmd.annotations.clone(),
                    revision: r.revision,
                    config_names: cmd.config.clone(),
                    pool: r.pool.clone(),
                };
                if names_changed {
                    r.pool.set_config(merged_config(config, &cmd.config).await?);
                }
                self.insert(id, updated);
                return Ok(());
            }
            if !cmd.allow_update {
                return Err(format!(
                    "component {id} already runs {} on this host; use component.update (or allow_update) to change it to {}",
                    r.image_ref, cmd.component_ref
                ));
            }
        }
        let limits = parse_limits(cmd.component_limits.as_ref(), &self.default_limits)?;
        let values = merged_config(config, &cmd.config).await?;
        let pool = self
            .load(
                id,
                &cmd.component_ref,
                Policy {
                    limits,
                    grants: lattice_runtime::Grants {
                        http_hosts: cmd.allowed_hosts.clone(),
                        ..Default::default()
                    },
                },
                cmd.count,
                values,
            )
            .await?;
        self.insert(
            id,
            Running {
                image_ref: cmd.component_ref.clone(),
                annotations: cmd.annotations.clone(),
                revision: current.map_or(0, |r| r.revision + 1),
                config_names: cmd.config.clone(),
                pool: Arc::new(pool),
            },
        );
        tracing::info!(component_id = %id, image_ref = %cmd.component_ref, max_instances = cmd.count, "component scaled");
        Ok(())
    }

    /// Swaps a running component to `new_ref`, keeping its instances bound, config and limits.
    /// Calls already running (or waiting) on the old version finish there.
    pub async fn update(
        &self,
        id: &str,
        new_ref: &str,
        annotations: Option<BTreeMap<String, String>>,
    ) -> Result<Arc<Running>, ScaleError> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let current = self
            .get(id)
            .ok_or_else(|| format!("component {id} is not running on this host"))?;
        let old = &current.pool;
        let pool = self
            .load(
                id,
                new_ref,
                old.policy().clone(),
                old.max_instances(),
                (*old.config()).clone(),
            )
            .await?;
        self.insert(
            id,
            Running {
                image_ref: new_ref.to_string(),
                annotations: annotations.unwrap_or_else(|| current.annotations.clone()),
                revision: current.revision + 1,
                config_names: current.config_names.clone(),
                pool: Arc::new(pool),
            },
        );
        tracing::info!(component_id = %id, from = %current.image_ref, to = %new_ref, "component updated");
        self.get(id)
            .ok_or_else(|| format!("component {id} vanished during update"))
    }

    async fn load(
        &self,
        id: &str,
        reference: &str,
        policy: Policy,
        max_instances: u32,
        config: ConfigMap,
    ) -> Result<ComponentPool, ScaleError> {
        let bytes = crate::artifact::fetch(
            reference,
            self.allow_file_load,
            policy.limits.max_component_bytes,
            &self.oci,
        )
        .await
        .map_err(|e| e.to_string())?;
        let runtime = self.runtime.clone();
        let id = id.to_string();
        let (pool, cache) = tokio::task::spawn_blocking(move || {
            runtime.prepare(&id, &bytes, policy, max_instances, config)
        })
        .await
        .map_err(|e| format!("compilation task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        tracing::debug!(reference, ?cache, "component prepared");
        Ok(pool)
    }

    /// Re-reads the config of every component using config `name`.
    pub async fn config_changed(&self, name: &str, config: &ConfigStore) {
        let affected: Vec<Arc<Running>> = self
            .running
            .read()
            .map(|r| {
                r.values()
                    .filter(|c| c.config_names.iter().any(|n| n == name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for r in affected {
            match merged_config(config, &r.config_names).await {
                Ok(values) => r.pool.set_config(values),
                Err(e) => tracing::warn!(config = name, error = %e, "cannot refresh config"),
            }
        }
    }

    /// Calls an export of a component running here.
    pub async fn call(
        &self,
        id: &str,
        interface: Option<&str>,
        func: &str,
        params: &[Val],
    ) -> Result<Vec<Val>, InvokeError> {
        let running = self
            .get(id)
            .ok_or_else(|| InvokeError::NotRunning(id.to_string()))?;
        Ok(running.pool.call(interface, func, params).await?)
    }

    /// Stops every component (host shutdown).
    pub fn stop_all(&self) {
        if let Ok(mut r) = self.running.write() {
            for (_, c) in std::mem::take(&mut *r) {
                c.pool.close();
            }
        }
    }
}

/// The named configs merged in order: a key in a later config wins.
async fn merged_config(store: &ConfigStore, names: &[String]) -> Result<ConfigMap, ScaleError> {
    let mut merged = ConfigMap::new();
    for name in names {
        match store.get(name).await {
            Ok(Some(values)) => merged.extend(values),
            Ok(None) => return Err(format!("named config {name:?} does not exist (create it with `lattice config put {name} key=value`)")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(merged)
}

const LIMIT_MEMORY: &str = "max_linear_memory";
const LIMIT_TIME: &str = "max_execution_time";
const LIMIT_SIZE: &str = "max_component_size";

/// Limits from a scale request's `component_limits`, over the host's own limits, which are
/// both the defaults and the ceilings: a request may lower a limit, never raise it (the
/// host's `--max-*` options are its operator's word; a scale request is anyone's).
pub(crate) fn parse_limits(
    given: Option<&BTreeMap<String, String>>,
    host: &Limits,
) -> Result<Limits, ScaleError> {
    let mut limits = host.clone();
    for (key, value) in given.into_iter().flatten() {
        let n: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("component_limits.{key} must be a whole number, got {value:?}"))?;
        let (ceiling, option) = match key.as_str() {
            LIMIT_MEMORY => (host.max_memory_bytes as u64, "--max-linear-memory"),
            LIMIT_TIME => (
                host.max_execution_time.as_millis() as u64,
                "--max-execution-time",
            ),
            LIMIT_SIZE => (host.max_component_bytes as u64, "--max-component-size"),
            _ => (u64::MAX, ""),
        };
        if n > ceiling {
            return Err(format!(
                "component_limits.{key} = {n} exceeds this host's maximum of {ceiling} ({option})"
            ));
        }
        match key.as_str() {
            LIMIT_MEMORY => limits.max_memory_bytes = n as usize,
            LIMIT_TIME => limits.max_execution_time = Duration::from_millis(n),
            LIMIT_SIZE => limits.max_component_bytes = n as usize,
            other => {
                return Err(format!(
                    "unknown component limit {other:?} (known: {LIMIT_MEMORY} bytes, {LIMIT_TIME} ms, {LIMIT_SIZE} bytes)"
                ))
            }
        }
    }
    Ok(limits)
}

fn limits_map(limits: &Limits) -> BTreeMap<String, String> {
    [
        (LIMIT_MEMORY, limits.max_memory_bytes.to_string()),
        (
            LIMIT_TIME,
            limits.max_execution_time.as_millis().to_string(),
        ),
        (LIMIT_SIZE, limits.max_component_bytes.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_clear_errors() {
        let d = Limits::default();
        let given: BTreeMap<String, String> =
            [("max_execution_time".to_string(), "250".to_string())].into();
        let l = parse_limits(Some(&given), &d).unwrap();
        assert_eq!(l.max_execution_time, Duration::from_millis(250));
        assert_eq!(l.max_memory_bytes, d.max_memory_bytes);
        let bad: BTreeMap<String, String> = [("max_cpu".to_string(), "1".to_string())].into();
        assert!(parse_limits(Some(&bad), &d)
            .unwrap_err()
            .contains("unknown component limit"));
        let nan: BTreeMap<String, String> =
            [("max_linear_memory".to_string(), "lots".to_string())].into();
        assert!(parse_limits(Some(&nan), &d)
            .unwrap_err()
            .contains("whole number"));
        // A request may lower a limit, never raise it past the host's own.
        let more: BTreeMap<String, String> =
            [("max_linear_memory".to_string(), (u64::MAX).to_string())].into();
        let e = parse_limits(Some(&more), &d).unwrap_err();
        assert!(e.contains("exceeds this host's maximum"), "{e}");
        assert!(e.contains("--max-linear-memory"), "{e}");
    }
}
