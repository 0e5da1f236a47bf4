//! Poll a condition until a deadline.

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
