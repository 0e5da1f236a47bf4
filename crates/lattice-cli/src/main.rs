//! `lattice`: run hosts and a local lattice, and drive the control interface.
//!
//! This binary is thin: argument parsing ([`args`]), one module per command group under
//! [`cmd`], output formatting ([`output`]) and the local NATS server of `lattice up`
//! ([`local_nats`]). The work is done by `lattice-host`, `lattice-ctl` and `lattice-app` (the
//! reconciler a host process runs beside its host); connections by `lattice-nats`.

mod args;
mod cmd;
mod local_nats;
mod output;

use clap::Parser;
use lattice_nats::{NatsAuth, NatsConfig};

use args::{Cli, Command, GlobalArgs};

/// mimalloc rather than glibc's malloc: a served call allocates and frees a guest instance's
/// store and many small buffers, spread over the runtime's threads; with mimalloc a remote
/// call's p50 is ~0.04x of a raw NATS request-reply lower (`scripts/bench wrpc`, alternated
/// pairs; the numbers are in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where clients connect when no `--nats-url` is given.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runs_host = matches!(
        &cli.command,
        Command::Up(_) | Command::Host(args::HostCommand { action: None, .. })
    );
    // A one-shot command reports its own errors in one line; async-nats would log them too.
    init_tracing(if runs_host {
        "info"
    } else {
        "warn,async_nats=off"
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // `lattice up` spawns NATS from this (the main) thread: the child's parent-death signal is
    // tied to the spawning thread, which must live as long as the process.
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Command::Up(up) => cmd::up::run(&global, up).await,
        Command::Host(host) => cmd::host::run(&global, host).await,
        Command::Get(get) => cmd::get::run(&global, get).await,
        Command::Label(label) => cmd::label::run(&global, label).await,
        Command::Config(config) => cmd::config::run(&global, config).await,
        Command::Scale(scale) => cmd::component::scale(&global, scale).await,
        Command::Update(update) => cmd::component::update(&global, update).await,
        Command::Push(push) => cmd::component::push(&global, push).await,
        Command::Registry(registry) => cmd::component::registry(&global, registry).await,
        Command::Link(link) => cmd::link::run(&global, link).await,
        Command::Call(call) => cmd::call::run(&global, call).await,
        Command::App(app) => cmd::app::run(&global, app).await,
        Command::Start(start) => cmd::provider::start(&global, start).await,
        Command::Stop(stop) => cmd::provider::stop(&global, stop).await,
        Command::Compose(compose) => cmd::compose::run(&global, compose).await,
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The NATS connection settings given on the command line.
pub fn nats_config(global: &GlobalArgs, url: Option<&str>) -> anyhow::Result<NatsConfig> {
    let a = &global.auth;
    let chosen = [
        a.nats_user.is_some(),
        a.nats_token.is_some(),
        a.nats_nkey_seed.is_some(),
        a.nats_creds.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() > 1 {
        anyhow::bail!(
            "choose one NATS authentication: --nats-user/--nats-password, --nats-token, --nats-nkey-seed or --nats-creds"
        );
    }
    let auth = if let (Some(user), Some(password)) = (&a.nats_user, &a.nats_password) {
        NatsAuth::UserPassword {
            user: user.clone(),
            password: password.clone(),
        }
    } else if let Some(t) = &a.nats_token {
        NatsAuth::Token(t.clone())
    } else if let Some(s) = &a.nats_nkey_seed {
        NatsAuth::NkeySeed(s.clone())
    } else if let Some(p) = &a.nats_creds {
        NatsAuth::CredsFile(p.clone())
    } else {
        NatsAuth::None
    };
    let urls = url
        .or(global.nats_url.as_deref())
        .unwrap_or(DEFAULT_NATS_URL);
    Ok(NatsConfig {
        auth,
        tls_ca: a.nats_tls_ca.clone(),
        tls_client_cert: a.nats_tls_cert.clone().zip(a.nats_tls_key.clone()),
        ..NatsConfig::from_urls(urls)
    })
}

/// A control client for the lattice named on the command line.
pub async fn ctl_client(global: &GlobalArgs) -> anyhow::Result<lattice_ctl::Client> {
    let config = nats_config(global, None)?;
    let nats = lattice_nats::connect(&config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {}: {e}", config.urls.join(",")))?;
    Ok(lattice_ctl::Client::builder(nats, &global.lattice)
        .timeout(global.timeout)
        .gather(global.timeout, lattice_ctl::client::DEFAULT_GATHER_IDLE)
        .build()?)
}
