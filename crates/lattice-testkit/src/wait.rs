//! Poll a condition until a deadline, or for a whole window to show that nothing happens.
//!
//! A test that must show an absence ("no more scale commands", "nobody else declared dead")
//! watches for a stated window with [`nothing_within`], [`nothing_within_async`] or
//! [`collect_within`] instead of sleeping and looking once: the window is in the failure
//! message, and a violation fails the moment it is seen.

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Polls `check` every `every` until it returns `Some`, or fails after `timeout`.
pub fn until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.into(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(every);
    }
}

/// Async twin of [`until`], for conditions that need `.await`.
pub async fn until_async<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.into(),
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `check` every `every` for all of `window`; fails the first time it returns `Some`
/// (what happened, for the message).
pub fn nothing_within<T: std::fmt::Debug>(
    what: &str,
    window: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Some(seen) = check() {
            return Err(happened(what, start, seen));
        }
        if start.elapsed() >= window {
            return Ok(());
        }
        std::thread::sleep(every.min(window.saturating_sub(start.elapsed())));
    }
}

/// Async twin of [`nothing_within`].
pub async fn nothing_within_async<T, F, Fut>(
    what: &str,
    window: Duration,
    every: Duration,
    mut check: F,
) -> Result<()>
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(seen) = check().await {
            return Err(happened(what, start, seen));
        }
        if start.elapsed() >= window {
            return Ok(());
        }
        tokio::time::sleep(every.min(window.saturating_sub(start.elapsed()))).await;
    }
}

/// Every item of `stream` for which `keep` holds that arrives within `window` (the stream
/// ending early ends the window). For "exactly these, and nothing more" over a stream.
pub async fn collect_within<S>(
    stream: &mut S,
    window: Duration,
    mut keep: impl FnMut(&S::Item) -> bool,
) -> Vec<S::Item>
where
    S: futures_core::Stream + Unpin,
{
    let mut kept = Vec::new();
    let end = tokio::time::Instant::now() + window;
    while let Ok(Some(item)) = tokio::time::timeout_at(
        end,
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)),
    )
    .await
    {
        if keep(&item) {
            kept.push(item);
        }
    }
    kept
}

fn happened(what: &str, start: Instant, seen: impl std::fmt::Debug) -> crate::Error {
    crate::Error::Happened {
        what: what.into(),
        after: start.elapsed(),
        seen: format!("{seen:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_window_passes_and_an_event_in_it_fails() {
        let w = Duration::from_millis(30);
        assert!(nothing_within("x", w, Duration::from_millis(5), || None::<()>).is_ok());
        let start = Instant::now();
        let e = nothing_within("a ghost", w, Duration::from_millis(5), || {
            (start.elapsed() >= Duration::from_millis(10)).then_some("boo")
        })
        .unwrap_err();
        assert!(matches!(e, crate::Error::Happened { .. }), "{e}");
    }

    #[tokio::test]
    async fn collect_within_keeps_what_matches_until_the_window_ends() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let mut rx = tokio_stream_of(rx);
        let kept = collect_within(&mut rx, Duration::from_millis(20), |i| i % 2 == 0).await;
        assert_eq!(kept, vec![0, 2, 4]);
        drop(tx);
    }

    /// An mpsc receiver as a stream, without another dependency.
    fn tokio_stream_of<T>(
        rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    ) -> impl futures_core::Stream<Item = T> + Unpin {
        struct S<T>(tokio::sync::mpsc::UnboundedReceiver<T>);
        impl<T> futures_core::Stream for S<T> {
            type Item = T;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<T>> {
                self.0.poll_recv(cx)
            }
        }
        S(rx)
    }
}
