//! W3C trace context: [`TraceParent`] lives in the wire contract (`lattice_proto::trace`),
//! re-exported here where calls carry it.

pub use lattice_proto::trace::*;
