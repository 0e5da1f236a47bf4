//! Listeners brought in line with the links, and the accept loop: connection cap, header-read
//! timeout, TLS, and `SO_REUSEPORT` so hosts on one machine share an address.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::context::Ingress;

use super::ingress::serve;
use super::route::{TlsFiles, TlsStamp};
use super::routes::{http_links, routes_of, with_configs, Routes};

/// How often listeners and routes are brought in line with the links.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Keeps this host's listeners and routes equal to what the HTTP links ask for. Runs until
/// the host stops.
pub(crate) async fn follow(
    ingress: Arc<Ingress>,
    shared_address: SocketAddr,
    table: Arc<RwLock<Arc<Routes>>>,
) {
    let mut listeners: HashMap<SocketAddr, Listener> = HashMap::new();
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    let mut seen = None;
    let mut bind_failed: std::collections::HashSet<SocketAddr> = Default::default();
    loop {
        tick.tick().await;
        let links = http_links(&ingress.state);
        let generation = ingress.state.config_generation();
        let now = (links, generation);
        let broken = listeners
            .values()
            .any(|l| l.task.is_finished() || l.tls_changed());
        if seen.as_ref() == Some(&now) && !broken && bind_failed.is_empty() {
            continue;
        }
        let routes = routes_of(
            &with_configs(&ingress.state, now.0.clone()).await,
            shared_address,
        );
        seen = Some(now);
        let tls_of = |addr: &SocketAddr| {
            routes
                .get(addr)
                .and_then(|list| list.iter().find_map(|r| r.options.tls.clone()))
        };
        listeners.retain(|addr, l| {
            let keep = routes.contains_key(addr)
                && !l.task.is_finished()
                && l.tls.as_ref().map(|(f, _)| f) == tls_of(addr).as_ref()
                && !l.tls_changed();
            if !keep {
                tracing::info!(%addr, "closing HTTP listener");
                l.task.abort();
            }
            keep
        });
        for addr in routes.keys() {
            if listeners.contains_key(addr) {
                continue;
            }
            let tls = tls_of(addr).map(|f| {
                let stamp = f.stamp();
                (f, stamp)
            });
            let acceptor = match tls.as_ref().map(|(f, _)| f.acceptor()).transpose() {
                Ok(a) => a,
                Err(e) => {
                    if bind_failed.insert(*addr) {
                        tracing::warn!(%addr, error = %e, "cannot set up TLS for HTTP listener; retrying");
                    }
                    continue;
                }
            };
            match bind(*addr) {
                Ok(l) => {
                    tracing::info!(%addr, tls = acceptor.is_some(), "HTTP listener open");
                    bind_failed.remove(addr);
                    let accepting = accept_loop(ingress.clone(), *addr, l, acceptor, table.clone());
                    let task = tokio::spawn(accepting);
                    listeners.insert(*addr, Listener { task, tls });
                }
                Err(e) => {
                    if bind_failed.insert(*addr) {
                        tracing::warn!(%addr, error = %e, "cannot open HTTP listener; retrying");
                    }
                }
            }
        }
        bind_failed.retain(|a| routes.contains_key(a));
        if let Ok(mut t) = table.write() {
            *t = Arc::new(routes);
        }
    }
}

/// An open listener: its accept loop, and its TLS files as they were when it opened.
struct Listener {
    task: tokio::task::JoinHandle<()>,
    tls: Option<(TlsFiles, TlsStamp)>,
}

impl Listener {
    fn tls_changed(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|(files, stamp)| files.stamp() != *stamp)
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Connections one listener serves at once; more wait in the kernel's backlog.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// How long a client may take to send a request's head (and a TLS handshake) before its
/// connection is closed: a slow-loris client holds a connection slot this long at most.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    ingress: Arc<Ingress>,
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    table: Arc<RwLock<Arc<Routes>>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A slot first: at the cap, new connections wait in the backlog instead of costing
        // memory here.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(%addr, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ingress = ingress.clone();
        let table = table.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let ingress = ingress.clone();
                let routes = table.read().map(|t| t.clone()).unwrap_or_default();
                async move { Ok::<_, Infallible>(serve(&ingress, &routes, addr, req).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let served = match tls {
                None => {
                    http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await
                }
                Some(tls) => {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
}
