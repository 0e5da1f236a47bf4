//! Helpers shared by this crate's integration tests.

use lattice_proto::ctl::Link;

pub use lattice_testkit::control::*;
pub use lattice_testkit::in_process::*;

/// A link from `source` to `target` for `lattice:examples/calc`.
pub fn link(source: &str, target: &str) -> Link {
    Link::new(source, target, "lattice", "examples", &["calc"])
}
