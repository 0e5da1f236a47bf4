//! The serving loop: one future per incoming invocation, run without a task hop when it can.
//!
//! A server waiting on the network is idle, and a short call (a small guest function) has
//! nothing to wait for once its message is in: run inline, it is done before the loop reads
//! the next message, sparing the spawn and, on a multi-threaded runtime, often a wake-up of
//! another thread (measured with `scripts/bench wrpc`). Anything that has to wait, and
//! every call that arrives while others run, goes on a task of its own, so calls still
//! overlap. What a call leaves for after its results (freeing a guest instance, making the
//! next) runs on the same task once the call ended; to stand between no caller and its
//! results it waits for them to be written itself ([`crate::transport::Invocation::written`]).
//! It does not yield to the runtime instead: on a multi-threaded runtime, a worker that found
//! nothing else to run and then picks the yielded task up wakes a sibling thread to search for
//! work, one futex wake-up per call for nothing (seen with `strace -c` on `scripts/bench wrpc`).
//!
//! Not here: what a call does ([`crate::transport::Invocation`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};

/// Work a call leaves for after it (freeing its instance, say), run by [`each`] right after
/// the call; work that must wait for the results to be written awaits that itself.
pub type Then = Option<BoxFuture<'static, ()>>;

/// Runs `handle` on every item of `incoming` until it ends. While no call is running, a
/// call is first polled inline and goes to a task of its own only if it has to wait; it then
/// runs inline for at most one poll (a guest runs up to one epoch tick before it yields).
/// What a call leaves to do after it ([`Then`]) runs on the same task right after it,
/// before the next item is taken.
pub async fn each<S, T, F, Fut>(mut incoming: S, mut handle: F)
where
    S: Stream<Item = T> + Unpin,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Then> + Send + 'static,
{
    let running = Arc::new(AtomicUsize::new(0));
    while let Some(item) = incoming.next().await {
        let mut call = Box::pin(handle(item));
        if running.load(Ordering::Acquire) == 0 {
            if let Poll::Ready(then) = futures::poll!(call.as_mut()) {
                after(then).await;
                continue;
            }
        }
        spawn_counted(&running, call);
    }
}

/// Runs what a call left, if anything.
async fn after(then: Then) {
    if let Some(then) = then {
        then.await;
    }
}

/// Spawns `call`, counted in `running` until it ends (or panics).
fn spawn_counted(running: &Arc<AtomicUsize>, call: Pin<Box<dyn Future<Output = Then> + Send>>) {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    running.fetch_add(1, Ordering::AcqRel);
    let counted = Counted(running.clone());
    tokio::spawn(async move {
        let _counted = counted;
        after(call.await).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_with_nothing_to_wait_for_runs_inline_and_waiting_calls_overlap() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let mut release_tx = Some(release_tx);
        let mut release_rx = Some(release_rx);
        let server = tokio::spawn(async move {
            let server_task = tokio::task::id();
            each(rx, move |n| {
                let seen_tx = seen_tx.clone();
                let release_rx = if n == 1 { release_rx.take() } else { None };
                let release_tx = if n == 2 { release_tx.take() } else { None };
                async move {
                    match n {
                        // Waits until call 2 releases it: only possible if 2 runs meanwhile.
                        1 => {
                            if let Some(rx) = release_rx {
                                let _ = rx.await;
                            }
                        }
                        2 => {
                            if let Some(tx) = release_tx {
                                let _ = tx.send(());
                            }
                        }
                        _ => {}
                    }
                    // Where the call finished: on the serving task, or on one of its own.
                    let _ = seen_tx.send((n, tokio::task::id() == server_task));
                    None
                }
            })
            .await
        });
        for n in [0, 1, 2] {
            tx.unbounded_send(n).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 3 {
            let next = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await;
            got.push(next.expect("calls overlap").unwrap());
        }
        got.sort();
        // 0 had nothing to wait for and ran on the serving task; 1 waited, so went to a
        // task of its own; 2 arrived while 1 ran, so it did too.
        assert_eq!(got, vec![(0, true), (1, false), (2, false)]);
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_a_call_leaves_runs_after_it_and_before_the_next_call() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
        for n in [0, 1] {
            tx.unbounded_send(n).unwrap();
        }
        drop(tx);
        let calls = log.clone();
        each(rx, move |n| {
            let log = calls.clone();
            async move {
                log.lock().unwrap().push(format!("call {n}"));
                let then: BoxFuture<'static, ()> = Box::pin(async move {
                    log.lock().unwrap().push(format!("then {n}"));
                });
                Some(then)
            }
        })
        .await;
        assert_eq!(
            *log.lock().unwrap(),
            ["call 0", "then 0", "call 1", "then 1"]
        );
    }
}
