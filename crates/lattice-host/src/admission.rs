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
/// Bytes of parameters (as received and decoded) and delivered messages one host holds at
/// once.
pub(crate) const MAX_HELD_BYTES: usize = 256 << 20;
/// Of those, what the calls of one component may hold: a flood aimed at one component
/// leaves room for the others' calls.
pub(crate) const MAX_HELD_BYTES_PER_COMPONENT: usize = 128 << 20;
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

/// The share of one component on this host: its call slots and its bytes.
#[derive(Clone)]
pub(crate) struct ComponentShare {
    calls: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
}

impl Default for ComponentShare {
    fn default() -> Self {
        Self {
            calls: Arc::new(Semaphore::new(MAX_CALLS_PER_COMPONENT)),
            bytes: Arc::new(Semaphore::new(MAX_HELD_BYTES_PER_COMPONENT)),
        }
    }
}

/// Bytes held for one call or message, given back when dropped.
pub(crate) struct Held {
    _host: OwnedSemaphorePermit,
    _component: Option<OwnedSemaphorePermit>,
}

fn busy(message: String) -> CallError {
    CallError::new(CallErrorKind::Busy, message)
}

impl Admission {
    /// Admits one more served call of the component whose share is `component`.
    pub fn call(&self, component: &ComponentShare) -> Result<Admitted, CallError> {
        let host = self.calls.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "this host is serving {MAX_SERVED_CALLS} calls, its most"
            ))
        })?;
        let component = component.calls.clone().try_acquire_owned().map_err(|_| {
            busy(format!(
                "this component has {MAX_CALLS_PER_COMPONENT} calls on this host, its most"
            ))
        })?;
        Ok(Admitted {
            _host: host,
            _component: component,
        })
    }

    /// Holds `bytes` (of `component`'s share, if given, and of the host's) until dropped.
    pub fn hold(
        &self,
        component: Option<&ComponentShare>,
        bytes: usize,
    ) -> Result<Held, CallError> {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX);
        let component = component
            .map(|c| {
                c.bytes.clone().try_acquire_many_owned(n).map_err(|_| {
                    busy(format!(
                        "this component's calls hold their most of parameters on this host ({MAX_HELD_BYTES_PER_COMPONENT} bytes); {bytes} more refused"
                    ))
                })
            })
            .transpose()?;
        let host = self.bytes.clone().try_acquire_many_owned(n).map_err(|_| {
            busy(format!(
                "this host holds its most of parameters and messages ({MAX_HELD_BYTES} bytes); {bytes} more refused"
            ))
        })?;
        Ok(Held {
            _host: host,
            _component: component,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_with_busy_and_free_on_drop() {
        let a = Admission::default();
        let share = ComponentShare {
            calls: Arc::new(Semaphore::new(1)),
            ..Default::default()
        };
        let first = a.call(&share).unwrap();
        let busy = |r: Result<Held, CallError>| r.err().map(|e| e.kind());
        assert_eq!(
            a.call(&share).err().map(|e| e.kind()),
            Some(CallErrorKind::Busy)
        );
        drop(first);
        drop(a.call(&share).unwrap());
        // One component cannot take the host's whole budget; another still gets room.
        let held = a.hold(Some(&share), MAX_HELD_BYTES_PER_COMPONENT).unwrap();
        assert_eq!(busy(a.hold(Some(&share), 1)), Some(CallErrorKind::Busy));
        let other = ComponentShare::default();
        let rest = a
            .hold(Some(&other), MAX_HELD_BYTES - MAX_HELD_BYTES_PER_COMPONENT)
            .unwrap();
        assert_eq!(busy(a.hold(None, 1)), Some(CallErrorKind::Busy));
        drop((held, rest));
        drop(a.hold(None, 1).unwrap());
    }
}
