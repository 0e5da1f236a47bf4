//! A typed async client of the Lattice control interface v1 (wasmCloud-compatible).
//!
//! Used by the `lattice` CLI, by tests and (later) by the reconciler. It takes an existing
//! [`async_nats::Client`], so callers choose how to connect and authenticate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let nats = async_nats::connect("127.0.0.1:4222").await?;
//! let ctl = lattice_ctl::Client::new(nats, "default")?;
//! for host in ctl.ping_hosts().await? {
//!     println!("{} {}", host.id, host.friendly_name);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`client`]: request/reply and scatter-gather operations.
//! - [`error`]: [`Error`] with an [`ErrorKind`] callers can match on.
//! - [`watch`]: [`HostWatcher`], which follows events and declares hosts stopped or dead.

pub mod client;
pub mod error;
pub mod watch;

pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind};
pub use watch::{HostWatcher, WatchEvent};
