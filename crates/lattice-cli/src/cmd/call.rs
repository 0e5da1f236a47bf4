//! `lattice call COMPONENT_ID 'ns:pkg/iface@ver.func' 'ARGS'`: one wRPC call, in WAVE.
//!
//! The function's types come from a host running the component (`component.signature`, a
//! Lattice extension); the call itself goes over wRPC like any other, so it lands on any
//! instance in the component's queue group.

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
    let host = find_host(&ctl, &args.component_id).await?;
    let signature = ctl
        .signature(
            &host,
            &SignatureRequest {
                component_id: args.component_id.clone(),
                instance: instance.clone(),
                function: func.clone(),
            },
        )
        .await?;
    let param_types = signature
        .params
        .iter()
        .map(|t| t.to_wave())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let result_types = signature
        .results
        .iter()
        .map(|t| t.to_wave())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
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

/// A host running `id` (its types are the same everywhere it runs).
async fn find_host(ctl: &lattice_ctl::Client, id: &str) -> anyhow::Result<String> {
    for host in ctl.ping_hosts().await? {
        let inv = ctl.host_inventory(&host.id).await?;
        if inv.components.iter().any(|c| c.id == id) {
            return Ok(host.id);
        }
    }
    bail!("no responders: no host runs component {id}")
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
