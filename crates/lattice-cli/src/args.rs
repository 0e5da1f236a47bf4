//! Command-line arguments. Every option can also come from a `LATTICE_*` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "lattice",
    version,
    about = "A flat, self-forming mesh of WebAssembly hosts over NATS",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// NATS server URL(s), comma-separated [default: nats://127.0.0.1:4222].
    #[arg(long, global = true, env = "LATTICE_NATS_URL")]
    pub nats_url: Option<String>,
    /// Lattice (namespace) to join or talk to.
    #[arg(long, global = true, env = "LATTICE_NAME", default_value = "default")]
    pub lattice: String,
    /// Timeout of control requests, e.g. `2s`, `500ms`.
    #[arg(long, global = true, env = "LATTICE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(
        long,
        short = 'o',
        global = true,
        env = "LATTICE_OUTPUT",
        default_value = "table"
    )]
    pub output: Output,
    #[command(flatten)]
    pub auth: NatsAuthArgs,
}

/// NATS credentials and TLS. At most one of user/password, token, nkey seed and creds file.
#[derive(Args, Debug, Clone, Default)]
pub struct NatsAuthArgs {
    /// NATS user (with --nats-password).
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_USER",
        requires = "nats_password"
    )]
    pub nats_user: Option<String>,
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// NATS auth token.
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_TOKEN",
        hide_env_values = true
    )]
    pub nats_token: Option<String>,
    /// NATS user nkey seed (`SU…`).
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_NKEY_SEED",
        hide_env_values = true
    )]
    pub nats_nkey_seed: Option<String>,
    /// NATS `.creds` file (user JWT and seed).
    #[arg(long, global = true, env = "LATTICE_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// CA certificate file to verify the NATS servers' TLS certificates.
    #[arg(long, global = true, env = "LATTICE_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (with --nats-tls-key).
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_TLS_CERT",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// Client private key for mutual TLS.
    #[arg(
        long,
        global = true,
        env = "LATTICE_NATS_TLS_KEY",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a local lattice: a NATS server with JetStream on loopback and a host, in the
    /// foreground. With --nats-url, only the host. Ctrl-C stops both.
    Up(UpArgs),
    /// Run a host that joins the lattice at --nats-url, or act on a host (`host stop`).
    #[command(args_conflicts_with_subcommands = true)]
    Host(HostCommand),
    /// Show hosts and inventories.
    #[command(subcommand)]
    Get(GetCommand),
    /// Set or remove host labels.
    #[command(subcommand)]
    Label(LabelCommand),
    /// Manage named config (stored in JetStream KV).
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Port of the local NATS server.
    #[arg(long, env = "LATTICE_NATS_PORT", default_value_t = 4222)]
    pub nats_port: u16,
    /// The nats-server binary to run [default: `nats-server` on PATH].
    #[arg(long, env = "LATTICE_NATS_SERVER_BIN")]
    pub nats_server_bin: Option<PathBuf>,
    /// Where the local NATS keeps JetStream data and logs
    /// [default: $XDG_STATE_HOME/lattice or ~/.local/state/lattice].
    #[arg(long, env = "LATTICE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(Args, Debug)]
pub struct HostCommand {
    #[command(subcommand)]
    pub action: Option<HostAction>,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(Subcommand, Debug)]
pub enum HostAction {
    /// Ask a host to stop gracefully.
    Stop {
        host_id: String,
        /// Time the host may take to stop its work.
        #[arg(long, value_parser = parse_duration)]
        graceful_timeout: Option<Duration>,
    },
}

/// Options of a running host.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// Server nkey seed (`SN…`) fixing the host's identity [default: a new key].
    #[arg(long, env = "LATTICE_HOST_SEED", hide_env_values = true)]
    pub host_seed: Option<String>,
    /// Human-friendly host name [default: derived from the host key].
    #[arg(long, env = "LATTICE_FRIENDLY_NAME")]
    pub friendly_name: Option<String>,
    /// Host label `key=value` (repeatable; env: comma-separated).
    #[arg(long = "label", env = "LATTICE_LABELS", value_delimiter = ',', value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// Interval between heartbeats, e.g. `5s`.
    #[arg(long, env = "LATTICE_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,
    /// JetStream domain holding the lattice's KV buckets.
    #[arg(long, env = "LATTICE_JS_DOMAIN")]
    pub js_domain: Option<String>,
    /// Replicas of KV buckets this host creates (use 3 on a 3-node cluster).
    #[arg(long, env = "LATTICE_KV_REPLICAS", default_value_t = 1)]
    pub kv_replicas: usize,
}

#[derive(Subcommand, Debug)]
pub enum GetCommand {
    /// Hosts answering a ping. With --watch, then follow joins, stops and deaths.
    Hosts {
        #[arg(long)]
        watch: bool,
    },
    /// Full inventory of one host, or of every host.
    Inventory { host_id: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum LabelCommand {
    /// Set a label on a host.
    Put {
        host_id: String,
        key: String,
        value: String,
    },
    /// Remove a label from a host.
    Del { host_id: String, key: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Store (replace) a named config.
    Put {
        name: String,
        #[arg(value_parser = parse_key_value, required = true)]
        values: Vec<(String, String)>,
    },
    /// Show a named config.
    Get { name: String },
    /// Delete a named config.
    Del { name: String },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 2s, 1m)"))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}
