//! Hostile OCI registries on loopback: one that challenges every request with a 401, one that
//! never answers, one that declares a 1 TiB layer and one whose layer is other bytes than its
//! digest. A scale request naming each must fail with the reason, within the host's pull
//! timeout, while the host keeps serving (see `attacks.rs` for the target and its checks).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::attacks::{target_with, Report};
use crate::common::*;

/// How a hostile registry misbehaves.
#[derive(Clone, Copy, Debug)]
enum Registry {
    /// Every request gets a 401 challenge, its token endpoint included.
    Challenge,
    /// Connections are accepted and never answered.
    Silent,
    /// The manifest declares a 1 TiB layer.
    Huge,
    /// The layer's bytes do not match its digest.
    WrongDigest,
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Serves `mode` on a loopback port until dropped; returns the port.
async fn hostile_registry(mode: Registry) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut c, _)) = listener.accept().await else {
                return;
            };
            if let Registry::Silent = mode {
                held.push(c);
                continue;
            }
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let config = b"{}";
                let (layer, declared) = match mode {
                    Registry::Huge => (&b"\0asm"[..], 1u64 << 40),
                    _ => (&b"\0asm"[..], 4),
                };
                let reply = |status: &str, headers: &str, body: &[u8]| {
                    let mut r = format!(
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                };
                let out = match mode {
                    Registry::Challenge => reply(
                        "401 Unauthorized",
                        &format!("WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"evil\",scope=\"repository:evil/x:pull\"\r\n"),
                        b"{}",
                    ),
                    _ if path == "/v2/" => reply("200 OK", "", b"{}"),
                    _ if path.contains("/manifests/") => {
                        let manifest = serde_json::json!({
                            "schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": {
                                "mediaType": "application/vnd.wasm.config.v0+json",
                                "digest": sha256(config),
                                "size": config.len(),
                            },
                            "layers": [{
                                "mediaType": "application/wasm",
                                "digest": sha256(layer),
                                "size": declared,
                            }],
                        });
                        reply(
                            "200 OK",
                            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                            manifest.to_string().as_bytes(),
                        )
                    }
                    // The blob is other bytes than its digest says.
                    _ if path.contains("/blobs/") => reply("200 OK", "", b"evil"),
                    _ => reply("404 Not Found", "", b"{}"),
                };
                let _ = c.write_all(&out).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registries_fail_the_scale_with_the_reason_and_the_host_keeps_serving() {
    let mut registries = Vec::new();
    let mut args = Vec::new();
    for mode in [
        Registry::Challenge,
        Registry::Silent,
        Registry::Huge,
        Registry::WrongDigest,
    ] {
        let (port, task) = hostile_registry(mode).await;
        registries.push((mode, port, task));
        args.push(format!("127.0.0.1:{port}"));
    }
    let insecure = args.join(",");
    let t = target_with(&["--oci-insecure", &insecure, "--oci-pull-timeout", "3s"]).await;
    for (mode, port, _task) in &registries {
        let name = format!("OCI registry: {mode:?}");
        let r = t
            .under(&name, || async {
                let cmd = scale_cmd(&format!("127.0.0.1:{port}/evil/x:1.0"), "evil", 1);
                let ev = scale(&t.ctl, &t.host.id, &cmd).await;
                let reason = ev.data["error"].as_str().unwrap_or_default().to_string();
                let kind = ev.event_type().unwrap_or_default().to_string();
                Report::new(1, format!("{kind}: {reason}"), [(kind, 1)].into())
            })
            .await;
        assert_eq!(
            r.kinds.get("component_scale_failed"),
            Some(&1),
            "{}",
            r.answered
        );
        let want = match mode {
            Registry::Challenge => "Not authorized",
            Registry::Silent => "took longer than 3s",
            Registry::Huge => "over the",
            Registry::WrongDigest => "digest",
        };
        assert!(r.answered.contains(want), "{mode:?}: {}", r.answered);
    }
}
