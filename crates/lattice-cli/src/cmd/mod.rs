//! One module per command group.

pub mod app;
pub mod call;
pub mod call_types;
pub mod component;
pub mod compose;
pub mod config;
pub mod get;
pub mod host;
pub mod label;
pub mod link;
pub mod oci;
pub mod provider;
#[cfg(feature = "host")]
pub mod run_host;
pub mod up;
