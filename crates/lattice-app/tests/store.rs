//! The application store against a real nats-server's JetStream: versions, deploy and
//! undeploy, statuses, every refusal with its kind, and lattices kept apart.

use lattice_app::{AppStatus, AppStore, Manifest, StoreError};
use lattice_testkit::NatsServer;

fn manifest(name: &str, version: Option<&str>, image: &str) -> Manifest {
    let annotations = match version {
        Some(v) => format!("  annotations:\n    version: {v}\n"),
        None => String::new(),
    };
    let text = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n{annotations}\
         spec:\n  components:\n    - name: api\n      type: component\n      properties:\n        image: {image}\n"
    );
    Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn store(nats: &NatsServer, lattice: &str) -> AppStore {
    let client = async_nats::connect(nats.url()).await.unwrap();
    AppStore::open(&async_nats::jetstream::new(client), lattice, 1)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_kept_deployed_and_refused_by_kind() {
    let nats = NatsServer::start().unwrap();
    let apps = store(&nats, "default").await;

    // Nothing yet: asking about an app is an absence, deploying it a refusal.
    assert!(apps.get("shop").await.unwrap().is_none());
    assert!(matches!(
        apps.deploy("shop", None).await,
        Err(StoreError::NoSuchApp(name)) if name == "shop"
    ));

    // Versions: named by annotation, else numbered; the same content again is a no-op.
    let v1 = manifest("shop", Some("v1"), "file:///a.wasm");
    assert_eq!(apps.put(v1.clone()).await.unwrap(), "v1");
    assert_eq!(apps.put(v1).await.unwrap(), "v1");
    assert!(matches!(
        apps.put(manifest("shop", Some("v1"), "file:///other.wasm")).await,
        Err(StoreError::VersionExists { version, .. }) if version == "v1"
    ));
    assert_eq!(
        apps.put(manifest("shop", None, "file:///b.wasm"))
            .await
            .unwrap(),
        "v2"
    );

    // Deploy: the newest by default, or a named one; an unknown one lists those known.
    assert_eq!(apps.deploy("shop", None).await.unwrap(), "v2");
    let rec = apps.get("shop").await.unwrap().unwrap();
    assert_eq!(rec.deployed.as_deref(), Some("v2"));
    assert_eq!(
        rec.deployed_manifest().unwrap().spec.components[0]
            .properties
            .image,
        "file:///b.wasm"
    );
    match apps.deploy("shop", Some("v9")).await {
        Err(StoreError::NoSuchVersion { known, .. }) => assert_eq!(known, "v1, v2"),
        other => panic!("expected NoSuchVersion, got {other:?}"),
    }
    assert_eq!(apps.deploy("shop", Some("v1")).await.unwrap(), "v1");

    // The reconciler's status is stored beside it; undeploy keeps the versions.
    let status = AppStatus {
        status: "deployed".into(),
        version: Some("v1".into()),
        scalers: vec![],
    };
    apps.set_status("shop", &status).await.unwrap();
    assert_eq!(apps.status("shop").await.unwrap(), Some(status));
    apps.undeploy("shop").await.unwrap();
    let rec = apps.get("shop").await.unwrap().unwrap();
    assert_eq!(rec.deployed, None);
    assert_eq!(rec.versions.len(), 2);
    let names: Vec<String> = apps
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["shop"]);
    assert!(matches!(
        apps.undeploy("nope").await,
        Err(StoreError::NoSuchApp(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lattice_has_its_own_applications() {
    let nats = NatsServer::start().unwrap();
    let (a, b) = (store(&nats, "a").await, store(&nats, "b").await);
    a.put(manifest("shop", Some("v1"), "file:///a.wasm"))
        .await
        .unwrap();
    assert!(b.get("shop").await.unwrap().is_none());
    assert!(b.list().await.unwrap().is_empty());
    // The same name and version in another lattice is another application.
    b.put(manifest("shop", Some("v1"), "file:///b.wasm"))
        .await
        .unwrap();
    let image = |rec: lattice_app::AppRecord| {
        rec.versions[0].manifest.spec.components[0]
            .properties
            .image
            .clone()
    };
    assert_eq!(
        image(a.get("shop").await.unwrap().unwrap()),
        "file:///a.wasm"
    );
    assert_eq!(
        image(b.get("shop").await.unwrap().unwrap()),
        "file:///b.wasm"
    );
}
