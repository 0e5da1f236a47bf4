//! Compile once: a content-addressed cache of compiled components, in memory and on disk.
//!
//! The key is the SHA-256 digest of the component bytes plus a hash of the engine's
//! compilation settings (wasmtime version, target, tunables), so a different wasmtime or
//! engine configuration never loads an incompatible artifact. Disk entries are written
//! atomically (temp file + rename); a corrupt or incompatible entry is recompiled.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::LoadError;

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Already compiled in this process.
    Memory,
    /// Loaded from the on-disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
    memory: Mutex<HashMap<String, Component>>,
}

/// `sha256:<hex>` of `bytes`, the form OCI digests take.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl CompileCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled form of `bytes` (whose digest is `digest`).
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        if let Some(c) = self.memory.lock().ok().and_then(|m| m.get(digest).cloned()) {
            return Ok((c, CacheOutcome::Memory));
        }
        let path = self.dir.as_ref().map(|d| {
            d.join(format!(
                "{}-{}.cwasm",
                digest.trim_start_matches("sha256:"),
                self.engine_key
            ))
        });
        let mut outcome = CacheOutcome::Compiled;
        let mut component = None;
        if let Some(path) = path.as_ref().filter(|p| p.exists()) {
            // Read into memory rather than mmap: a cache file changed underneath a mapping would
            // crash the host (SIGBUS).
            // SAFETY: files in the cache directory are written only by `store` below, under a
            // name carrying the engine's compatibility hash; wasmtime also checks the header.
            let loaded = std::fs::read(path)
                .map_err(wasmtime::Error::from)
                .and_then(|bytes| unsafe { Component::deserialize(engine, &bytes) });
            match loaded {
                Ok(c) => {
                    outcome = CacheOutcome::Disk;
                    component = Some(c);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cache entry")
                }
            }
        }
        let component = match component {
            Some(c) => c,
            None => {
                let c = compile(engine, bytes)?;
                if let Some(path) = &path {
                    store(&c, path);
                }
                c
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            m.insert(digest.to_string(), component.clone());
        }
        Ok((component, outcome))
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    // Reject core modules and garbage with a clear message before asking Cranelift.
    if !wasmparser_is_component(bytes) {
        let what = if bytes.starts_with(b"\0asm") {
            "a core WebAssembly module; wrap it into a component (e.g. `wasm-tools component new`)"
        } else {
            "not WebAssembly at all"
        };
        return Err(LoadError::NotAComponent(what.into()));
    }
    Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

/// A component starts with `\0asm`, then version 0x0d and layer 1 (a core module has layer 0).
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

fn store(component: &Component, path: &std::path::Path) {
    let result = (|| -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot write compile cache entry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_modules() {
        let module = wat::parse_str("(module)").unwrap();
        let component = wat::parse_str("(component)").unwrap();
        assert!(!wasmparser_is_component(&module));
        assert!(wasmparser_is_component(&component));
        assert!(!wasmparser_is_component(b"hello world"));
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
