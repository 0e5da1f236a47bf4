//! `lattice compose MANIFEST --out out.wasm`: the manifest's runtime links made at build time.
//! Each component's link targets (components of the same manifest) are composed first, then
//! plugged into it with `wac-graph` (each export of a target fills the source's import of
//! the same name), so a chain A → B → C becomes one component with A's exports and the
//! imports nobody in the manifest fills. Built-in capabilities (`http`, `keyvalue`, ...) are
//! not components: links to them stay imports, as at runtime.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use lattice_app::Manifest;

use crate::args::{ComposeArgs, GlobalArgs};
use crate::output;

pub async fn run(global: &GlobalArgs, args: ComposeArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let manifest = Manifest::parse(&text)?;
    let components: BTreeMap<&str, &lattice_app::manifest::Component> = manifest
        .spec
        .components
        .iter()
        .filter(|c| c.kind == "component")
        .map(|c| (c.name.as_str(), c))
        .collect();
    // Who links to whom, among the manifest's components.
    let mut targets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in components.values() {
        for link in Manifest::links(c) {
            if let Some((name, _)) = components.get_key_value(link.target.name()) {
                targets.entry(c.name.as_str()).or_default().insert(name);
            }
        }
    }
    let root = match &args.root {
        Some(r) if components.contains_key(r.as_str()) => r.clone(),
        Some(r) => bail!("{r} is not a component of the manifest"),
        None => {
            let linked: BTreeSet<&str> = targets.values().flatten().copied().collect();
            let roots: Vec<&str> = components
                .keys()
                .filter(|n| !linked.contains(*n))
                .copied()
                .collect();
            match roots.as_slice() {
                [one] => one.to_string(),
                [] => bail!("every component is a link target (a cycle?); pick one with --root"),
                many => bail!(
                    "more than one component is no link's target ({}); pick one with --root",
                    many.join(", ")
                ),
            }
        }
    };
    let oci = super::oci::oci_config(&args.oci, None)?;
    let mut done = BTreeMap::new();
    let bytes = compose(
        &root,
        &components,
        &targets,
        &oci,
        &mut done,
        &mut Vec::new(),
    )
    .await?;
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    output::done(
        global,
        &format!(
            "composed {root} with its link targets into {} ({} bytes)",
            args.out.display(),
            bytes.len()
        ),
    );
    Ok(())
}

/// The component `name` with its link targets (composed first) plugged in.
fn compose<'a>(
    name: &'a str,
    components: &'a BTreeMap<&'a str, &'a lattice_app::manifest::Component>,
    targets: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
    oci: &'a lattice_oci::OciConfig,
    done: &'a mut BTreeMap<String, Vec<u8>>,
    path: &'a mut Vec<String>,
) -> futures::future::BoxFuture<'a, anyhow::Result<Vec<u8>>> {
    Box::pin(async move {
        if let Some(b) = done.get(name) {
            return Ok(b.clone());
        }
        if path.iter().any(|p| p == name) {
            bail!(
                "the links form a cycle through {name}: {} -> {name}",
                path.join(" -> ")
            );
        }
        let own = artifact(&components[name].properties.image, oci).await?;
        let deps: Vec<&str> = targets
            .get(name)
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        if deps.is_empty() {
            done.insert(name.to_string(), own.clone());
            return Ok(own);
        }
        path.push(name.to_string());
        let mut plugs = Vec::new();
        for dep in deps {
            plugs.push((
                dep,
                compose(dep, components, targets, oci, done, path).await?,
            ));
        }
        path.pop();
        let mut graph = wac_graph::CompositionGraph::new();
        let socket = register(&mut graph, name, own)?;
        let mut plug_ids = Vec::new();
        for (dep, bytes) in plugs {
            plug_ids.push(register(&mut graph, dep, bytes)?);
        }
        wac_graph::plug(&mut graph, plug_ids, socket)
            .with_context(|| format!("cannot plug {name}'s link targets into it"))?;
        let bytes = graph
            .encode(wac_graph::EncodeOptions::default())
            .with_context(|| format!("cannot encode the composition of {name}"))?;
        done.insert(name.to_string(), bytes.clone());
        Ok(bytes)
    })
}

fn register(
    graph: &mut wac_graph::CompositionGraph,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<wac_graph::PackageId> {
    // Package names are `ns:name`; a manifest's component names need not be.
    let package_name = format!(
        "manifest:{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            .to_lowercase()
    );
    let package =
        wac_graph::types::Package::from_bytes(&package_name, None, bytes, graph.types_mut())
            .with_context(|| format!("{name} is not a component"))?;
    Ok(graph.register_package(package)?)
}

/// A component's bytes: `file://` read here, anything else pulled from its registry.
async fn artifact(image: &str, oci: &lattice_oci::OciConfig) -> anyhow::Result<Vec<u8>> {
    match image.strip_prefix("file://") {
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read {image}")),
        None => lattice_oci::OciClient::new(oci.clone())
            .pull(image, 256 << 20)
            .await
            .with_context(|| format!("cannot pull {image}")),
    }
}
