//! How a client notices that the host running its call is gone: the handshake's adaptive
//! timeout and the liveness probe (`host.alive`) while results are due.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// What a host says about a call it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// The call is still running there.
    Running,
    /// The host is done with it (its results are on their way, or were lost).
    Finished,
    /// The host is gone or did not answer in time.
    HostGone,
}

/// Asks host `id` about the call whose reply subject is `reply`, within `timeout` (see
/// [`Watchdog`]).
pub type Liveness =
    Arc<dyn Fn(String, String, Duration) -> BoxFuture<'static, CallState> + Send + Sync>;

/// How a client notices that the host running its call is gone, rather than waiting out the
/// call's deadline. A call nobody acknowledges in time, or whose host is gone or finished it
/// without its results arriving (asked with `probe` every `probe_every` while results are
/// due), ends with [`CallErrorKind::OutcomeUnknown`].
///
/// "In time" adapts to the link like TCP's retransmission timeout: the smoothed handshake
/// round trip plus four times its variation, never less than `min_timeout`. A slow but
/// working link (a leaf node across a WAN) so stays usable, and a dead host on a fast one is
/// noticed in about `min_timeout`.
#[derive(Clone)]
pub struct Watchdog {
    pub min_timeout: Duration,
    pub probe_every: Duration,
    pub probe: Liveness,
}

/// Round-trip estimate of handshakes (RFC 6298's smoothing, in seconds).
#[derive(Debug, Default)]
pub(super) struct RoundTrips {
    srtt: f64,
    rttvar: f64,
    samples: u64,
}

impl RoundTrips {
    pub(super) fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2.0;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
        self.samples += 1;
    }

    pub(super) fn timeout(&self, min: Duration) -> Duration {
        min.max(Duration::from_secs_f64(self.srtt + 4.0 * self.rttvar))
    }
}
