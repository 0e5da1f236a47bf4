//! Where `lattice call` learns a function's parameter and result types when the target does
//! not tell (a component on a wasmCloud host, any upstream wRPC server): from WIT text
//! (`--wit`), a component binary (`--wasm`), or the component's artifact as an inventory
//! names it (`file://` on this machine, or OCI).

use std::path::Path;

use anyhow::Context;
use wasm_wave::value::{resolve_wit_func_type, Type};
use wasm_wave::wasm::WasmFunc;
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Function, Resolve, WorldItem};

/// Parameter and result types of one function.
pub type Types = (Vec<Type>, Vec<Type>);

/// The types of `instance.func` from the WIT file or directory at `path`.
pub fn from_wit(path: &Path, instance: &str, func: &str) -> anyhow::Result<Types> {
    let mut resolve = Resolve::default();
    resolve
        .push_path(path)
        .with_context(|| format!("cannot read WIT from {}", path.display()))?;
    let f = in_interfaces(&resolve, instance, func)
        .or_else(|| in_worlds(&resolve, instance, func))
        .with_context(|| format!("{} declares no {}", path.display(), name(instance, func)))?;
    types(&resolve, f)
}

/// The types of `instance.func` exported by the component (or WIT package) `bytes`.
pub fn from_component(bytes: &[u8], instance: &str, func: &str) -> anyhow::Result<Types> {
    let decoded = wit_parser::decoding::decode(bytes).context("not a component or WIT package")?;
    let (resolve, f) = match &decoded {
        DecodedWasm::Component(resolve, world) => {
            let f = exported(resolve, *world, instance, func)
                .with_context(|| format!("the component exports no {}", name(instance, func)))?;
            (resolve, f)
        }
        DecodedWasm::WitPackage(resolve, _) => {
            let f = in_interfaces(resolve, instance, func)
                .or_else(|| in_worlds(resolve, instance, func))
                .with_context(|| format!("the WIT package declares no {}", name(instance, func)))?;
            (resolve, f)
        }
    };
    types(resolve, f)
}

/// The types of `instance.func` from artifact `reference` (`file://` or OCI).
pub async fn from_artifact(
    reference: &str,
    oci: &lattice_oci::OciConfig,
    instance: &str,
    func: &str,
) -> anyhow::Result<Types> {
    let bytes = match reference.strip_prefix("file://") {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the component's artifact {reference} here"))?,
        None => lattice_oci::OciClient::new(oci.clone())
            .pull(reference, 256 << 20)
            .await
            .with_context(|| format!("cannot pull the component's artifact {reference}"))?,
    };
    from_component(&bytes, instance, func)
}

fn name(instance: &str, func: &str) -> String {
    if instance.is_empty() {
        format!("function {func}")
    } else {
        format!("{instance}.{func}")
    }
}

fn types(resolve: &Resolve, f: &Function) -> anyhow::Result<Types> {
    let ty = resolve_wit_func_type(resolve, f)
        .map_err(|e| anyhow::anyhow!("cannot describe {}: {e}", f.name))?;
    Ok((ty.params().collect(), ty.results().collect()))
}

fn in_interfaces<'a>(resolve: &'a Resolve, instance: &str, func: &str) -> Option<&'a Function> {
    if instance.is_empty() {
        return None;
    }
    resolve
        .interfaces
        .iter()
        .find(|(id, _)| resolve.id_of(*id).as_deref() == Some(instance))
        .and_then(|(_, iface)| iface.functions.get(func))
}

/// A root-level function exported by any world.
fn in_worlds<'a>(resolve: &'a Resolve, instance: &str, func: &str) -> Option<&'a Function> {
    if !instance.is_empty() {
        return None;
    }
    resolve
        .worlds
        .iter()
        .find_map(|(id, _)| exported(resolve, id, instance, func))
}

fn exported<'a>(
    resolve: &'a Resolve,
    world: wit_parser::WorldId,
    instance: &str,
    func: &str,
) -> Option<&'a Function> {
    resolve.worlds[world]
        .exports
        .values()
        .find_map(|item| match item {
            WorldItem::Function(f) if instance.is_empty() && f.name == func => Some(f),
            WorldItem::Interface { id, .. }
                if !instance.is_empty() && resolve.id_of(*id).as_deref() == Some(instance) =>
            {
                resolve.interfaces[*id].functions.get(func)
            }
            _ => None,
        })
}

/// Says which sources of types there are when none was at hand.
pub fn none_at_hand(component: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot learn the types of the call to {component}: {why}; give them with --wit PATH (WIT) or --wasm PATH (the component)"
    )
}
