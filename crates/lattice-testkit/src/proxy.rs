//! A user-space TCP proxy that makes a link slow, lossy or cut, since `tc netem` is not
//! available: put it between a client (or leaf node) and a server on loopback.
//!
//! Each direction of each connection is a reader thread and a writer thread joined by a
//! queue; every chunk read gets a delivery time (now + delay ± jitter, plus an occasional
//! stall), never earlier than the chunk before it, so bytes stay in order as TCP's do. A cut
//! shuts every connection down without a goodbye and refuses new ones until healed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

/// What the link does to the bytes crossing it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Added to every chunk, each way.
    pub delay: Duration,
    /// Up to this much more (uniform), per chunk.
    pub jitter: Duration,
    /// Chance (0..1) that a chunk is held back by `stall` (a lost segment being resent).
    pub stall_chance: f64,
    pub stall: Duration,
}

struct Shared {
    faults: Mutex<Faults>,
    cut: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// A faulty link to `target`, listening on a port of its own (on loopback unless
/// [`FaultyLink::start_on`] says where).
pub struct FaultyLink {
    local: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultyLink {
    /// Starts forwarding connections on a fresh loopback port to `target`.
    pub fn start(target: SocketAddr, faults: Faults) -> Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), target, faults)
    }

    /// Starts forwarding connections on `listen` (e.g. the gateway address of a
    /// [`crate::netns::Netns`], port 0 for a fresh one) to `target`.
    pub fn start_on(listen: SocketAddr, target: SocketAddr, faults: Faults) -> Result<Self> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let port = local.port();
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        thread::Builder::new()
            .name(format!("faulty-link-{port}"))
            .spawn(move || accept_loop(listener, target, s))?;
        Ok(Self { local, shared })
    }

    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// Where it listens, as `IP:PORT`.
    pub fn addr(&self) -> String {
        self.local.to_string()
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.shared.faults.lock() {
            *f = faults;
        }
    }

    /// Drops every connection at once and refuses new ones until [`FaultyLink::heal`].
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        close_all(&self.shared);
    }

    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        close_all(&self.shared);
    }
}

fn close_all(shared: &Shared) {
    if let Ok(mut conns) = shared.conns.lock() {
        for c in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let (client, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => return,
        };
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect(target) else {
            continue;
        };
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = clones else {
            continue;
        };
        if let Ok(mut conns) = shared.conns.lock() {
            conns.push(c3);
            conns.push(s3);
        }
        pipe(client, s2, shared.clone());
        pipe(server, c2, shared.clone());
    }
}

/// Copies `from` to `to` through a delaying queue.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader_shared = shared.clone();
    let _ = thread::Builder::new()
        .name("faulty-link-read".into())
        .spawn(move || {
            let mut last = Instant::now();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let f = reader_shared.faults.lock().map(|f| *f).unwrap_or_default();
                let mut at = Instant::now() + f.delay + f.jitter.mul_f64(fastrand::f64());
                if f.stall_chance > 0.0 && fastrand::f64() < f.stall_chance {
                    at += f.stall;
                }
                last = last.max(at);
                if tx.send((last, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    let _ = thread::Builder::new()
        .name("faulty-link-write".into())
        .spawn(move || {
            for (at, bytes) in rx {
                let now = Instant::now();
                if at > now {
                    thread::sleep(at - now);
                }
                if shared.cut.load(Ordering::SeqCst) || to.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Both);
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_forwards_in_order_and_cuts() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        thread::spawn(move || {
            for mut c in echo.incoming().flatten() {
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = c.read(&mut buf) {
                        if n == 0 || c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let faults = Faults {
            delay: Duration::from_millis(50),
            ..Faults::default()
        };
        let link = FaultyLink::start(target, faults).unwrap();
        let mut c = TcpStream::connect(link.addr()).unwrap();
        let started = Instant::now();
        c.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // 50 ms each way.
        assert!(started.elapsed() >= Duration::from_millis(100));
        link.cut();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let cut_at = Instant::now();
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest);
        // Closed by the cut, not by the read timeout.
        assert!(cut_at.elapsed() < Duration::from_secs(2), "{r:?}");
        assert!(rest.is_empty());
    }
}
