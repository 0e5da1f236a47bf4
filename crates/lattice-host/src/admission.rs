//! Bounds on what remote peers can make this host hold: calls being served, and the memory
//! their decoded parameters (and delivered messages) take. Past a bound, work is refused at
//! once with a typed `busy` (the caller may try another instance) instead of queuing without
//! limit.
//!
//! Decoded size is what counts, not wire size: a `list<u8>` takes one value per byte, tens of
//! bytes each. The codec measures it while decoding ([`lattice_wrpc::decode_values_within`]).
//!
//! Not here: the HTTP listener's connection slots and header timeout (`http`), the control
//! interface's slots (`ctl`), the messaging delivery cap per component (`messaging`), and
//! instance limits (the component's pool).

use std::sync::Arc;

use lattice_wrpc::{CallError, CallErrorKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// wRPC calls one host serves at once, over all its components.
pub(crate) const MAX_SERVED_CALLS: usize = 2048;
/// wRPC calls one component serves (running or waiting for an instance) on one host.
pub(crate) const MAX_CALLS_PER_COMPONENT: usize = 512;
/// Bytes of decoded parameters and delivered messages one host holds at once.
pub(crate) const MAX_HELD_BYTES: usize = 256 << 20;
/// Bytes the decoded parameters of one call may take.
pub(crate) const MAX_CALL_PARAM_BYTES: usize = lattice_wrpc::MAX_DECODED_BYTES;

/// This host's shared bounds.
pub(crate) struct Admission {
    calls: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            calls: Arc::new(Semaphore::new(MAX_SERVED_CALLS)),
            bytes: Arc::new(Semaphore::new(MAX_HELD_BYTES)),
        }
    }
}

/// A served call's place, held until the call ends.
pub(crate) struct Admitted {
    _host: OwnedSemaphorePermit,
    _component: OwnedSemaphorePermit,
}

/// The call slots of one component on this host.
pub(crate) fn component_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_CALLS_PER_COMPONENT))
}

fn busy(message: String) -> CallError {
    CallError::new(CallErrorKind::Busy, message)
}

impl Admission {
    /// Admits one more served call of the component whose slots are `component`.
    pub fn call(&self, component: &Arc<Semaphore>) -> Result<Admitted, CallError> {
        let host = self.calls.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "this host is serving {MAX_SERVED_CALLS} calls, its most"
            ))
        })?;
        let component = component.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "this component has {MAX_CALLS_PER_COMPONENT} calls on this host, its most"
            ))
        })?;
        Ok(Admitted {
            _host: host,
            _component: component,
        })
    }

    /// Holds `bytes` of decoded values until the permit is dropped.
    pub fn hold(&self, bytes: usize) -> Result<OwnedSemaphorePermit, CallError> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.bytes.clone().try_acquire_many_owned(n).map_err(|_| {
            busy(format!(
                "this host holds its most of decoded parameters ({MAX_HELD_BYTES} bytes); {bytes} more refused"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_with_busy_and_free_on_drop() {
        let a = Admission::default();
        let slots = Arc::new(Semaphore::new(1));
        let first = a.call(&slots).unwrap();
        assert_eq!(
            a.call(&slots).err().map(|e| e.kind()),
            Some(CallErrorKind::Busy)
        );
        drop(first);
        a.call(&slots).unwrap();
        let held = a.hold(MAX_HELD_BYTES).unwrap();
        assert_eq!(a.hold(1).err().map(|e| e.kind()), Some(CallErrorKind::Busy));
        drop(held);
        drop(a.hold(1).unwrap());
    }
}
