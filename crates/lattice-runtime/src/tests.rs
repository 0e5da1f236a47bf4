//! The runtime against real guest components built from `components/`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_testkit::component_path;
use wasmtime::component::Val;

use crate::cache::CacheOutcome;
use crate::{CallErrorKind, ComponentPool, LoadError, Policy, Runtime, RuntimeConfig};

const CALC: &str = "lattice:examples/calc@0.1.0";

fn runtime() -> Arc<Runtime> {
    Runtime::new(RuntimeConfig {
        pool_instances: 64,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn prepare(rt: &Arc<Runtime>, name: &str, policy: Policy, max: u32) -> ComponentPool {
    let bytes = std::fs::read(component_path(name)).unwrap();
    rt.prepare(name, &bytes, policy, max, Default::default())
        .unwrap()
        .0
}

fn string(v: &Val) -> &str {
    match v {
        Val::String(s) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_pure_functions() {
    let rt = runtime();
    let calc = prepare(&rt, "calc", Policy::default(), 1);
    let r = calc
        .call(Some(CALC), "add", &[Val::S32(40), Val::S32(2)])
        .await
        .unwrap();
    assert_eq!(r, vec![Val::S32(42)]);
    let r = calc
        .call(Some(CALC), "reverse", &[Val::String("lattice".into())])
        .await
        .unwrap();
    assert_eq!(string(&r[0]), "ecittal");

    let e = calc.call(Some(CALC), "nope", &[]).await.unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::NoSuchFunction);
    let e = calc.call(Some("x:y/z"), "add", &[]).await.unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::NoSuchFunction);
    let e = calc
        .call(Some(CALC), "add", &[Val::S32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::BadArguments);
    let e = calc
        .call(Some(CALC), "add", &[Val::String("a".into()), Val::S32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::Trapped, "{e}");
    assert_eq!(calc.stats().calls, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_bounds_concurrency_and_loses_no_call() {
    let rt = runtime();
    let calc = Arc::new(prepare(&rt, "calc", Policy::default(), 4));
    let calls = (0..100).map(|_| {
        let calc = calc.clone();
        tokio::spawn(async move { calc.call(Some(CALC), "wait", &[Val::U32(20)]).await })
    });
    let results = futures::future::join_all(calls).await;
    let ok = results
        .into_iter()
        .filter(|r| match r {
            Ok(Ok(v)) => v == &vec![Val::U32(20)],
            other => panic!("call failed: {other:?}"),
        })
        .count();
    let stats = calc.stats();
    println!(
        "100 concurrent calls, max_instances 4: {ok} ok, peak {} instances",
        stats.peak
    );
    assert_eq!(ok, 100);
    assert_eq!(stats.peak, 4, "the bound must be reached and never passed");
    assert_eq!(stats.active, 0);

    // Raising and lowering the bound applies to the next calls.
    calc.set_max_instances(8);
    assert_eq!(calc.stats().max_instances, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_guest_is_interrupted_at_its_deadline() {
    let rt = runtime();
    let mut policy = Policy::default();
    policy.limits.max_execution_time = Duration::from_millis(300);
    let runaway = prepare(&rt, "runaway", policy, 2);
    let calc = prepare(&rt, "calc", Policy::default(), 2);
    let started = Instant::now();
    let (spun, added) = tokio::join!(
        runaway.call(Some("lattice:examples/runaway@0.1.0"), "spin", &[]),
        async {
            // Other components keep serving while the guest spins.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            let r = calc
                .call(Some(CALC), "add", &[Val::S32(1), Val::S32(1)])
                .await;
            (r, t.elapsed())
        }
    );
    let took = started.elapsed();
    let e = spun.unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::DeadlineExceeded, "{e}");
    assert!(e.to_string().contains("max execution time"), "{e}");
    println!(
        "runaway interrupted after {took:?} (limit 300 ms); a concurrent call took {:?}",
        added.1
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(added.0.unwrap(), vec![Val::S32(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hungry_guest_traps_at_its_limit() {
    let rt = runtime();
    let mut policy = Policy::default();
    policy.limits.max_memory_bytes = 16 << 20;
    let hog = prepare(&rt, "hog", policy, 1);
    let iface = Some("lattice:examples/hog@0.1.0");
    assert_eq!(
        hog.call(iface, "grab", &[Val::U32(4)]).await.unwrap(),
        vec![Val::U32(4)]
    );
    let e = hog.call(iface, "grab", &[Val::U32(64)]).await.unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::MemoryLimit, "{e}");
    assert!(
        e.to_string().contains("memory limit of 16777216 bytes"),
        "{e}"
    );
    // The next call gets a fresh instance and works.
    assert_eq!(
        hog.call(iface, "grab", &[Val::U32(1)]).await.unwrap(),
        vec![Val::U32(1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_without_grants_see_no_files_or_environment() {
    let rt = runtime();
    let snoop = prepare(&rt, "snoop", Policy::default(), 1);
    let iface = Some("lattice:examples/snoop@0.1.0");
    for path in ["/etc/passwd", "/proc/self/environ", "."] {
        let r = snoop
            .call(iface, "read-file", &[Val::String(path.into())])
            .await
            .unwrap();
        assert!(matches!(&r[0], Val::Result(Err(_))), "{path}: {r:?}");
    }
    let r = snoop
        .call(iface, "list-dir", &[Val::String("/".into())])
        .await
        .unwrap();
    assert!(matches!(&r[0], Val::Result(Err(_))), "{r:?}");
    std::env::set_var("LATTICE_TEST_SECRET", "s3cret");
    let r = snoop
        .call(
            iface,
            "env-var",
            &[Val::String("LATTICE_TEST_SECRET".into())],
        )
        .await
        .unwrap();
    assert_eq!(r, vec![Val::Option(None)]);

    // Grants open exactly what they name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "granted").unwrap();
    let mut policy = Policy::default();
    policy
        .grants
        .dirs
        .push((dir.path().into(), "/data".into(), true));
    policy.grants.env.push(("GREETING".into(), "hi".into()));
    let granted = prepare(&rt, "snoop", policy, 1);
    let r = granted
        .call(iface, "read-file", &[Val::String("/data/hello.txt".into())])
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![Val::Result(Ok(Some(Box::new(Val::String(
            "granted".into()
        )))))]
    );
    let r = granted
        .call(iface, "read-file", &[Val::String("/etc/passwd".into())])
        .await
        .unwrap();
    assert!(matches!(&r[0], Val::Result(Err(_))), "{r:?}");
    let r = granted
        .call(iface, "env-var", &[Val::String("GREETING".into())])
        .await
        .unwrap();
    assert_eq!(
        r,
        vec![Val::Option(Some(Box::new(Val::String("hi".into()))))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_the_next_call_and_logs_are_tagged() {
    let rt = runtime();
    let greeter = prepare(&rt, "greeter", Policy::default(), 1);
    let iface = Some("lattice:examples/greeter@0.1.0");
    let name = [Val::String("Ada".into())];
    let r = greeter.call(iface, "greet", &name).await.unwrap();
    assert_eq!(string(&r[0]), "Hello, Ada!");
    greeter.set_config([("greeting".to_string(), "Hola".to_string())].into());
    let r = greeter.call(iface, "greet", &name).await.unwrap();
    assert_eq!(string(&r[0]), "Hola, Ada!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spare_instance_serves_the_next_call_unless_the_config_changed() {
    let rt = runtime();
    let greeter = Arc::new(prepare(&rt, "greeter", Policy::default(), 1));
    let iface = Some("lattice:examples/greeter@0.1.0");
    let name = [Val::String("Ada".into())];
    let (r, spent) = greeter
        .call_then_clean_up(iface, "greet", &name)
        .await
        .unwrap();
    assert_eq!(string(&r[0]), "Hello, Ada!");
    assert_eq!(greeter.stats().active, 1, "held until cleaned up");
    spent.clean_up().await;
    let stats = greeter.stats();
    assert_eq!((stats.active, stats.spare), (0, true));
    // Made with the old config: not used for a call after the change.
    greeter.set_config([("greeting".to_string(), "Hola".to_string())].into());
    let (r, spent) = greeter
        .call_then_clean_up(iface, "greet", &name)
        .await
        .unwrap();
    assert_eq!(string(&r[0]), "Hola, Ada!");
    assert!(!greeter.stats().spare);
    spent.clean_up().await;
    // Made with the new one: used (and so gone) by a plain call too.
    assert!(greeter.stats().spare);
    let r = greeter.call(iface, "greet", &name).await.unwrap();
    assert_eq!(string(&r[0]), "Hola, Ada!");
    assert!(!greeter.stats().spare);
    // A stopped component keeps none.
    let (_, spent) = greeter
        .call_then_clean_up(iface, "greet", &name)
        .await
        .unwrap();
    greeter.close();
    spent.clean_up().await;
    assert!(!greeter.stats().spare);
}

#[test]
fn guest_logs_go_to_tracing_with_the_component_id() {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // tracing caches whether anyone listens at a callsite, process-wide, when the callsite
    // is first hit. While at most one subscriber exists, it asks only the hitting thread's
    // own: another test hitting the guest-log callsite on a thread without one would cache
    // "nobody" for it. A second subscriber kept alive makes it ask all of them (this test's
    // included); the rebuild redoes callsites cached before.
    let _anchor = tracing::Dispatch::new(tracing_subscriber::registry());
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let runtime = runtime();
            let greeter = prepare(&runtime, "greeter", Policy::default(), 1);
            greeter
                .call(
                    Some("lattice:examples/greeter@0.1.0"),
                    "greet",
                    &[Val::String("Bo".into())],
                )
                .await
                .unwrap();
        });
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("greeting Bo"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains("lattice::guest") && line.contains("component_id=\"greeter\""),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_are_refused_with_clear_errors() {
    let rt = runtime();
    let prep = |bytes: &[u8], policy: Policy| {
        rt.prepare("x", bytes, policy, 1, Default::default())
            .map(|_| ())
            .unwrap_err()
    };
    let e = prep(b"definitely not wasm", Policy::default());
    assert!(matches!(e, LoadError::NotAComponent(_)), "{e}");
    let module = wat::parse_str("(module)").unwrap();
    let e = prep(&module, Policy::default());
    assert!(e.to_string().contains("core WebAssembly module"), "{e}");
    let mut truncated = std::fs::read(component_path("calc")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let e = prep(&truncated, Policy::default());
    assert!(matches!(e, LoadError::Compile(_)), "{e}");
    let mut small = Policy::default();
    small.limits.max_component_bytes = 1000;
    let e = prep(&std::fs::read(component_path("calc")).unwrap(), small);
    assert!(e.to_string().contains("over the 1000-byte limit"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiles_once_per_digest_and_reuses_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().into()),
        pool_instances: 8,
        ..RuntimeConfig::default()
    };
    let bytes = std::fs::read(component_path("calc")).unwrap();
    let rt = Runtime::new(config.clone()).unwrap();
    let (_, first) = rt
        .prepare("a", &bytes, Policy::default(), 1, Default::default())
        .unwrap();
    let (_, second) = rt
        .prepare("b", &bytes, Policy::default(), 1, Default::default())
        .unwrap();
    assert_eq!(
        (first, second),
        (CacheOutcome::Compiled, CacheOutcome::Memory)
    );
    drop(rt);
    let rt = Runtime::new(config).unwrap();
    let (pool, third) = rt
        .prepare("c", &bytes, Policy::default(), 1, Default::default())
        .unwrap();
    assert_eq!(third, CacheOutcome::Disk);
    let r = pool
        .call(Some(CALC), "add", &[Val::S32(2), Val::S32(3)])
        .await
        .unwrap();
    assert_eq!(r, vec![Val::S32(5)]);
    // A corrupt entry is recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().into()),
        pool_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let (_, fourth) = rt
        .prepare("d", &bytes, Policy::default(), 1, Default::default())
        .unwrap();
    assert_eq!(fourth, CacheOutcome::Compiled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_import_fails_only_the_call_that_uses_it() {
    let rt = runtime();
    let relay = prepare(&rt, "relay", Policy::default(), 1);
    let e = relay
        .call(
            Some("lattice:examples/relay@0.1.0"),
            "add-via-calc",
            &[Val::S32(1), Val::S32(2)],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), CallErrorKind::NotLinked, "{e}");
    assert!(
        e.message()
            .starts_with("import lattice:examples/calc@0.1.0.add"),
        "{e}"
    );
}
