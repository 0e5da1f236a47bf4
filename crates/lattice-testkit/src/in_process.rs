//! Hosts running inside the test process (feature `host`): for tests of the local call path,
//! routing counters and anything a test reads from the `Host` handle itself.

use std::time::Duration;

/// A host running in this test process (for the local call path), joined to `lattice`.
pub async fn in_process_host(nats_url: &str, lattice: &str) -> lattice_host::Host {
    in_process_host_with(nats_url, lattice, |_| {}).await
}

/// [`in_process_host`] with a changed configuration.
pub async fn in_process_host_with(
    nats_url: &str,
    lattice: &str,
    change: impl FnOnce(&mut lattice_host::HostConfig),
) -> lattice_host::Host {
    let mut config = lattice_host::HostConfig {
        lattice: lattice.into(),
        nats: lattice_host::NatsConfig::from_urls(nats_url),
        heartbeat_interval: Duration::from_millis(500),
        allow_file_load: true,
        runtime: lattice_host::RuntimeConfig {
            cache_dir: None,
            pool_instances: 64,
            ..Default::default()
        },
        ..Default::default()
    };
    change(&mut config);
    log_to_test_output();
    lattice_host::Host::start(config)
        .await
        .expect("in-process host")
}

/// With `LATTICE_TEST_LOG` set (an `EnvFilter`, e.g. `lattice_host=debug`), in-process hosts
/// log into the test's captured output, which a failing test prints.
fn log_to_test_output() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("LATTICE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The call error of a local call that reached its component (panics on `NotRunning`).
pub fn call_error(e: lattice_host::InvokeError) -> lattice_host::CallError {
    match e {
        lattice_host::InvokeError::Call(e) => e,
        other => panic!("expected a call error, got: {other}"),
    }
}
