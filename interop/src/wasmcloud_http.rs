//! `serve-http NATS_URL PREFIX`: serves `wrpc:http/incoming-handler@0.1.0.handle` on PREFIX
//! as a wasmCloud v1 host serves an HTTP component, with the crates wasmCloud v1 and its
//! providers use. The handler answers 200 with `x-served-by: wasmcloud-peer`, a first line
//! `{METHOD} {path}`, then the request body streamed back as it arrives. Prints `serving`
//! once subscribed.

use anyhow::Context as _;
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use wrpc_interface_http::bindings::exports::wrpc::http::incoming_handler;
use wrpc_interface_http::bindings::wasi::http::types::ErrorCode;
use wrpc_interface_http::{HttpBody, ServeHttp, ServeIncomingHandlerHttp};

#[derive(Clone, Copy)]
struct Echo;

impl<Ctx: Send> ServeIncomingHandlerHttp<Ctx> for Echo {
    async fn handle(
        &self,
        _cx: Ctx,
        request: http::Request<HttpBody>,
    ) -> anyhow::Result<
        Result<
            http::Response<
                impl http_body::Body<Data = bytes::Bytes, Error = core::convert::Infallible>
                    + Send
                    + 'static,
            >,
            ErrorCode,
        >,
    > {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let first = format!("{} {path}\n", parts.method);
        // The body goes back as it comes: a chunk answered before the request ended proves it
        // streams both ways.
        let echoed = body.into_data_stream().filter_map(|chunk| async move {
            chunk.ok().map(|b| Ok(http_body::Frame::data(b)))
        });
        let head = futures::stream::iter([Ok(http_body::Frame::data(bytes::Bytes::from(first)))]);
        let body = http_body_util::StreamBody::new(head.chain(echoed));
        let response = http::Response::builder()
            .status(200)
            .header("x-served-by", "wasmcloud-peer")
            .body(body)
            .context("building the response")?;
        Ok(Ok(response))
    }
}

pub async fn serve(url: &str, prefix: &str) -> anyhow::Result<()> {
    let nats = async_nats_039::connect(url).await.context("connecting to NATS")?;
    let client = wrpc_transport_nats_028::Client::new(nats, prefix, None)
        .await
        .context("creating the wRPC server")?;
    let invocations = incoming_handler::serve_interface(&client, ServeHttp(Echo))
        .await
        .context("serving wrpc:http")?;
    println!("serving");
    let all = invocations.into_iter().map(|(instance, name, calls)| {
        calls.for_each_concurrent(None, move |call| async move {
            match call {
                Ok(fut) => {
                    if let Err(e) = fut.await {
                        eprintln!("{instance}.{name}: {e:#}");
                    }
                }
                Err(e) => eprintln!("{instance}.{name} invocation: {e:#}"),
            }
        })
    });
    futures::future::join_all(all).await;
    Ok(())
}
