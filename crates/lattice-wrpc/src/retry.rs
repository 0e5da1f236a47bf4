//! When a failed call is tried again: the retry layer above a single [`invoke`] attempt.
//!
//! | failure | retried? |
//! |---|---|
//! | no responders (nobody received the call) | yes, for [`RetryPolicy::no_responders_for`] (20 ms by default; callers lengthen it when they have reason to think the target is only moving) |
//! | busy (a host refused it before running it) | yes, within the same window: another instance may have room |
//! | outcome unknown (the host that took it died or went silent) | only if idempotent |
//! | transport error before anything was sent | only if idempotent |
//! | anything the target reported (trap, decode, rejected) or deadline exceeded | never |
//!
//! A call nobody received is always safe to send again. It is retried only for a short
//! window, not until the deadline: that rides out a target moving between hosts (an update,
//! a host restart) while "nobody runs this" still comes back in milliseconds. A call a host
//! accepted and then lost may have run: sending it again could run it twice, so only
//! functions declared idempotent are retried; the others fail fast with
//! [`CallErrorKind::OutcomeUnknown`]. Backoff is exponential with full jitter, and no attempt
//! starts past the deadline.
//!
//! [`invoke`]: crate::transport::Client::invoke

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{CallError, CallErrorKind};

/// Which failed calls are retried, and how soon.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The function may run more than once without harm.
    pub idempotent: bool,
    /// How long "no responders" is retried after the first one.
    pub no_responders_for: Duration,
    /// First backoff; each retry doubles it, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            idempotent: false,
            no_responders_for: Duration::from_millis(20),
            base_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    fn retries(&self, e: &CallError, no_responders_since: Option<Instant>) -> bool {
        match e.kind() {
            CallErrorKind::NoResponders | CallErrorKind::Busy => {
                no_responders_since.is_none_or(|t| t.elapsed() < self.no_responders_for)
            }
            CallErrorKind::OutcomeUnknown | CallErrorKind::Transport => self.idempotent,
            _ => false,
        }
    }
}

/// What a call took, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts made (1 when the first one settled it).
    pub made: u32,
}

/// Runs `attempt` until it succeeds, fails in a way `policy` does not retry, or `deadline`
/// passes. Returns the last outcome and how many attempts were made.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Instant,
    mut attempt: F,
) -> (Result<T, CallError>, Attempts)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut made = 0;
    let mut no_responders_since = None;
    let mut backoff = policy.base_backoff;
    loop {
        made += 1;
        let err = match attempt().await {
            Ok(v) => return (Ok(v), Attempts { made }),
            Err(e) => e,
        };
        // "Nobody took it" and "a host refused it unrun" share one short window.
        let unrun = matches!(
            err.kind(),
            CallErrorKind::NoResponders | CallErrorKind::Busy
        );
        if unrun && no_responders_since.is_none() {
            no_responders_since = Some(Instant::now());
        }
        let mut pause = jitter(backoff);
        if let Some(since) = no_responders_since.filter(|_| unrun) {
            // The next try still falls inside the window.
            pause = pause.min(policy.no_responders_for.saturating_sub(since.elapsed()));
        }
        if !policy.retries(&err, no_responders_since) || Instant::now() + pause >= deadline {
            return (Err(err), Attempts { made });
        }
        tracing::debug!(error = %err, attempt = made, ?pause, "retrying a call");
        tokio::time::sleep(pause).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// A random duration in `[0, d]` ("full jitter"), so callers that failed together do not
/// retry together.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fail(kind: CallErrorKind) -> CallError {
        CallError::new(kind, "test")
    }

    async fn run(policy: RetryPolicy, errors: &[CallErrorKind]) -> (Result<u32, CallError>, u32) {
        let n = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (r, a) = retry(&policy, deadline, || {
            let i = n.fetch_add(1, Ordering::SeqCst) as usize;
            let out = errors.get(i).map(|k| Err(fail(*k))).unwrap_or(Ok(i as u32));
            async move { out }
        })
        .await;
        (r, a.made)
    }

    #[tokio::test]
    async fn unknown_outcomes_are_retried_only_when_idempotent() {
        let errs = [CallErrorKind::OutcomeUnknown, CallErrorKind::OutcomeUnknown];
        let (r, made) = run(RetryPolicy::default().idempotent(true), &errs).await;
        assert_eq!((r.unwrap(), made), (2, 3));
        let (r, made) = run(RetryPolicy::default(), &errs).await;
        assert_eq!(r.unwrap_err().kind(), CallErrorKind::OutcomeUnknown);
        assert_eq!(made, 1);
    }

    #[tokio::test]
    async fn what_the_target_reported_is_never_retried() {
        for kind in [
            CallErrorKind::Trapped,
            CallErrorKind::Decode,
            CallErrorKind::Rejected,
            CallErrorKind::NotLinked,
            CallErrorKind::DeadlineExceeded,
        ] {
            let (r, made) = run(RetryPolicy::default().idempotent(true), &[kind]).await;
            assert_eq!((r.unwrap_err().kind(), made), (kind, 1));
        }
    }

    #[tokio::test]
    async fn no_responders_is_retried_for_a_short_window_only() {
        let errs = [CallErrorKind::NoResponders; 1000];
        let started = Instant::now();
        let (r, made) = run(RetryPolicy::default(), &errs).await;
        assert_eq!(r.unwrap_err().kind(), CallErrorKind::NoResponders);
        assert!(made > 1, "retried at least once");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        let (r, _) = run(RetryPolicy::default(), &errs[..2]).await;
        assert_eq!(r.unwrap(), 2);
    }

    #[tokio::test]
    async fn no_attempt_starts_past_the_deadline() {
        let policy = RetryPolicy {
            idempotent: true,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let deadline = Instant::now() + Duration::from_millis(120);
        let (r, _) = retry(&policy, deadline, || async {
            Err::<(), _>(fail(CallErrorKind::OutcomeUnknown))
        })
        .await;
        assert_eq!(r.unwrap_err().kind(), CallErrorKind::OutcomeUnknown);
        assert!(Instant::now() < deadline + Duration::from_millis(20));
    }
}
