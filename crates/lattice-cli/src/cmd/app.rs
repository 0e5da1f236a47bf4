//! `lattice app validate|put|deploy|undeploy|list|status|history`: the application store in
//! JetStream KV, read and written directly; the reconciler (in the hosts) does the rest.

use anyhow::Context;
use lattice_app::{AppStore, Manifest};

use crate::args::{AppArgs, AppCommand, GlobalArgs, Output};
use crate::output;

fn read_manifest(file: &std::path::Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(Manifest::parse(&text)?)
}

async fn store(global: &GlobalArgs, js_domain: Option<&str>) -> anyhow::Result<AppStore> {
    let config = crate::nats_config(global, None)?;
    let nats = lattice_nats::connect(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", config.urls.join(",")))?;
    let js = match js_domain {
        Some(d) => async_nats::jetstream::with_domain(nats, d),
        None => async_nats::jetstream::new(nats),
    };
    Ok(AppStore::open(&js, &global.lattice, 1).await?)
}

pub async fn run(global: &GlobalArgs, args: AppArgs) -> anyhow::Result<()> {
    if let AppCommand::Validate { file } = &args.command {
        let m = read_manifest(file)?;
        output::done(
            global,
            &format!(
                "{} is a valid manifest of {:?}",
                file.display(),
                m.metadata.name
            ),
        );
        return Ok(());
    }
    let store = store(global, args.js_domain.as_deref()).await?;
    match args.command {
        AppCommand::Validate { .. } => {}
        AppCommand::Put { file } => {
            let m = read_manifest(&file)?;
            let name = m.metadata.name.clone();
            let version = store.put(m).await?;
            output::done(global, &format!("stored {name} version {version}"));
        }
        AppCommand::Deploy { name, app_version } => {
            // A manifest file: stored as a new version, then that version deployed.
            let (name, app_version) = if std::path::Path::new(&name).is_file() {
                let m = read_manifest(std::path::Path::new(&name))?;
                let app = m.metadata.name.clone();
                let version = store.put(m).await?;
                (app, Some(version))
            } else {
                (name, app_version)
            };
            let v = store.deploy(&name, app_version.as_deref()).await?;
            output::done(global, &format!("{name} version {v} deployed"));
        }
        AppCommand::Undeploy { name } => {
            store.undeploy(&name).await?;
            output::done(global, &format!("{name} undeployed"));
        }
        AppCommand::List => {
            let mut rows = Vec::new();
            for (name, rec) in store.list().await? {
                let status = store.status(&name).await?.map(|s| s.status);
                rows.push((name, rec, status));
            }
            match global.output {
                Output::Json => output::json(
                    &rows
                        .iter()
                        .map(|(n, r, s)| {
                            serde_json::json!({
                                "name": n,
                                "latest": r.versions.last().map(|v| v.version.clone()),
                                "deployed": r.deployed,
                                "status": s,
                            })
                        })
                        .collect::<Vec<_>>(),
                )?,
                Output::Table => output::table(
                    &["NAME", "LATEST", "DEPLOYED", "STATUS"],
                    rows.into_iter().map(|(n, r, s)| {
                        vec![
                            n,
                            r.versions
                                .last()
                                .map(|v| v.version.clone())
                                .unwrap_or_default(),
                            r.deployed.unwrap_or_else(|| "-".into()),
                            s.unwrap_or_else(|| "-".into()),
                        ]
                    }),
                ),
            }
        }
        AppCommand::Status { name } => {
            let status = store.status(&name).await?.with_context(|| {
                format!("no status for {name:?} yet (is it deployed, and a host running?)")
            })?;
            match global.output {
                Output::Json => output::json(&status)?,
                Output::Table => {
                    println!(
                        "{name}: {} (version {})",
                        status.status,
                        status.version.as_deref().unwrap_or("-")
                    );
                    output::table(
                        &["COMPONENT", "SCALER", "MESSAGE"],
                        status.scalers.iter().map(|s| {
                            vec![s.component.clone(), s.status.clone(), s.message.clone()]
                        }),
                    );
                }
            }
        }
        AppCommand::History { name } => {
            let rec = store
                .get(&name)
                .await?
                .with_context(|| format!("no application named {name:?}"))?;
            match global.output {
                Output::Json => output::json(&rec.versions)?,
                Output::Table => output::table(
                    &["VERSION", "STORED (unix s)", "DEPLOYED"],
                    rec.versions.iter().map(|v| {
                        vec![
                            v.version.clone(),
                            v.stored_at.to_string(),
                            if rec.deployed.as_deref() == Some(&v.version) {
                                "*".into()
                            } else {
                                String::new()
                            },
                        ]
                    }),
                ),
            }
        }
    }
    Ok(())
}
