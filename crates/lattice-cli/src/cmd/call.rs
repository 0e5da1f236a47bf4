//! `lattice call COMPONENT_ID 'ns:pkg/iface@ver.func' 'ARGS'`: one wRPC call, in WAVE.
//!
//! The function's types come from `--wit` or `--wasm` when given, else from a Lattice host
//! running the component (`component.signature`, a Lattice extension), else from the
//! component's artifact named in an inventory (a wasmCloud host's); see `call_types`. The
//! call itself goes over wRPC like any other, so it lands on any instance in the
//! component's queue group, on any kind of host or upstream wRPC server.

use anyhow::{bail, Context};
use async_nats::HeaderMap;
use bytes::Bytes;
use lattice_proto::ctl::SignatureRequest;
use lattice_wrpc::transport::{self, SOURCE_HEADER};
use wasm_wave::value::Value;

use crate::args::{CallArgs, GlobalArgs, Output};

pub async fn run(global: &GlobalArgs, args: CallArgs) -> anyhow::Result<()> {
    let ctl = crate::ctl_client(global).await?;
    let (instance, func) = match args.function.rsplit_once('.') {
        // Versions hold dots (`@0.1.0`): the function is after the last one.
        Some((i, f)) if i.contains('/') => (i.to_string(), f.to_string()),
        None => (String::new(), args.function.clone()),
        Some(_) => bail!(
            "expected 'namespace:package/interface@version.function', got {:?}",
            args.function
        ),
    };
    let (param_types, result_types) = match (&args.wit, &args.wasm) {
        (Some(wit), _) => super::call_types::from_wit(wit, &instance, &func)?,
        (None, Some(wasm)) => {
            let bytes =
                std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
            super::call_types::from_component(&bytes, &instance, &func)?
        }
        (None, None) => from_the_lattice(&ctl, &args, &instance, &func).await?,
    };
    let params = parse_args(&param_types, &args.args)?;
    let mut bytes = Vec::new();
    lattice_wrpc::encode_values(&param_types, &params, &mut bytes)?;
    let mut headers = HeaderMap::new();
    headers.insert(SOURCE_HEADER, "lattice-cli");
    let trace = lattice_wrpc::trace::TraceParent::root();
    headers.insert(transport::TRACEPARENT_HEADER, trace.to_string().as_str());
    tracing::info!(trace_id = %trace.trace_id_hex(), "calling {}", args.function);
    let deadline = tokio::time::Instant::now() + args.call_timeout;
    let results = transport::Client::new(ctl.nats().clone())
        .invoke(
            lattice_wrpc::transport::Call::new(
                &lattice_proto::wrpc::component_prefix(&global.lattice, &args.component_id),
                &instance,
                &func,
                Bytes::from(bytes),
                deadline,
            )
            .with_headers(headers),
            |b| lattice_wrpc::decode_values::<Value>(&result_types, b),
        )
        .await?;
    let texts = results
        .iter()
        .map(wasm_wave::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    match global.output {
        Output::Json => println!("{}", serde_json::json!({ "results": texts })),
        Output::Table => println!("{}", texts.join(", ")),
    }
    Ok(())
}

/// The types from a host running the component: its answer to `component.signature`, or
/// the artifact its inventory names.
async fn from_the_lattice(
    ctl: &lattice_ctl::Client,
    args: &CallArgs,
    instance: &str,
    func: &str,
) -> anyhow::Result<super::call_types::Types> {
    let id = &args.component_id;
    let Some((host, image_ref)) = find_host(ctl, id).await? else {
        return Err(super::call_types::none_at_hand(
            id,
            "no responders: no host runs it (if another wRPC server serves it, its types must come from you)",
        ));
    };
    let asked = SignatureRequest {
        component_id: id.clone(),
        instance: instance.to_string(),
        function: func.to_string(),
    };
    let signature = match ctl.signature(&host, &asked).await {
        Ok(s) => s,
        // Not a Lattice host (a wasmCloud host answers "unsupported subject"): the artifact.
        Err(e)
            if e.kind() == lattice_ctl::ErrorKind::Rejected
                && e.to_string().contains("unsupported subject")
                && !image_ref.is_empty() =>
        {
            tracing::info!(host, error = %e, "no signature from the host; reading {image_ref}");
            let oci = super::oci::oci_config(&args.oci, None)?;
            return super::call_types::from_artifact(&image_ref, &oci, instance, func).await;
        }
        Err(e) => return Err(e.into()),
    };
    let wave = |types: &[lattice_wrpc::types::TypeDesc]| {
        types
            .iter()
            .map(|t| t.to_wave())
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)
    };
    Ok((wave(&signature.params)?, wave(&signature.results)?))
}

/// A host running `id` and the artifact it runs (the types are the same everywhere).
async fn find_host(
    ctl: &lattice_ctl::Client,
    id: &str,
) -> anyhow::Result<Option<(String, String)>> {
    for host in ctl.ping_hosts().await? {
        let inv = ctl.host_inventory(&host.id).await?;
        if let Some(c) = inv.components.iter().find(|c| c.id == id) {
            return Ok(Some((host.id, c.image_ref.clone())));
        }
    }
    Ok(None)
}

/// Parses `text` as a WAVE tuple of the parameter types (without the parentheses).
fn parse_args(types: &[wasm_wave::value::Type], text: &str) -> anyhow::Result<Vec<Value>> {
    use wasm_wave::wasm::WasmValue;
    if types.is_empty() {
        if !text.trim().is_empty() {
            bail!("the function takes no arguments, got {text:?}");
        }
        return Ok(Vec::new());
    }
    let tuple = wasm_wave::value::Type::tuple(types.to_vec()).context("parameter tuple type")?;
    let value: Value = wasm_wave::from_str(&tuple, &format!("({text},)"))
        .or_else(|_| wasm_wave::from_str(&tuple, &format!("({text})")))
        .with_context(|| format!("arguments {text:?} do not match the parameters {types:?}"))?;
    Ok(value.unwrap_tuple().map(|v| v.into_owned()).collect())
}
