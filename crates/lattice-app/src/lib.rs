//! Declarative applications: what should run, and the loop that keeps it so.
//!
//! # Layout
//! - [`manifest`]: wadm's OAM manifests (components, `spreadscaler`, `daemonscaler`, `link`,
//!   named config) and their validation, every problem with its path.
//! - [`plan`]: placement, a pure function of a scaler and the hosts seen.
//! - [`store`]: the versioned application store in JetStream KV.
//! - [`reconcile`]: the reconciler every host runs; one per lattice is active (a KV lease).
//!   It places components and capability providers and puts their links.
//!
//! Not here: how components run or are scaled (`lattice-host`), the control client
//! (`lattice-ctl`).

pub mod manifest;
pub mod plan;
pub mod reconcile;
pub mod store;

pub use manifest::{Manifest, ManifestError};
pub use reconcile::{run as run_reconciler, Observer as ReconcilerObserver, ReconcilerConfig};
pub use store::{AppRecord, AppStatus, AppStore, StoreError};
