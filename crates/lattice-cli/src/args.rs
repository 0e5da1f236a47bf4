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
    /// Scale a component on a host (0 stops it).
    #[command(subcommand)]
    Scale(ScaleCommand),
    /// Swap a running component to another reference, in place.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Push a component file to an OCI registry.
    Push(PushArgs),
    /// Give every host credentials for an OCI registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Manage links: which component serves another component's imports.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Call an exported function over wRPC, with WAVE arguments:
    /// `lattice call calc 'lattice:examples/calc@0.1.0.add' '1, 2'`.
    Call(CallArgs),
    /// Declarative applications (wadm manifests): store, deploy, watch them converge.
    App(AppArgs),
    /// Start a component (as `wash start component`: `scale component` with a count) or a
    /// capability provider.
    #[command(subcommand)]
    Start(StartCommand),
    /// Stop a component or a capability provider.
    #[command(subcommand)]
    Stop(StopCommand),
    /// Build-time composition: plug a manifest's link targets into their sources, giving one
    /// component that answers like the linked ones.
    Compose(ComposeArgs),
}

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// A wadm manifest whose components link to each other.
    pub manifest: PathBuf,
    /// Where to write the composed component (`-o` is the global output format).
    #[arg(long)]
    pub out: PathBuf,
    /// The component to compose from (its link targets are plugged in) [default: the one
    /// component no link targets].
    #[arg(long)]
    pub root: Option<String>,
    /// Registry access, for components given as OCI references.
    #[command(flatten)]
    pub oci: OciArgs,
}

#[derive(Subcommand, Debug)]
pub enum StartCommand {
    /// `lattice start component REF ID [--count N]`: the same as `lattice scale component`.
    Component(ScaleComponentArgs),
    /// `lattice start provider REF ID`: a provider (OCI, or file:// to a .par.gz or an
    /// executable; hosts need --allow-file-load) on --host or a host chosen by auction.
    Provider(StartProviderArgs),
}

#[derive(Args, Debug)]
pub struct StartProviderArgs {
    pub provider_ref: String,
    /// Provider id, unique in the lattice.
    pub provider_id: String,
    #[command(flatten)]
    pub placement: Placement,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Where a component or provider goes, and what it is given.
#[derive(Args, Debug)]
pub struct Placement {
    /// Host to run it on [default: the host already running the id, else one chosen by
    /// auction].
    #[arg(long)]
    pub host: Option<String>,
    /// Named config to give it (repeatable; later names win).
    #[arg(long = "config")]
    pub configs: Vec<String>,
    /// Annotation `k=v` (repeatable).
    #[arg(long = "annotation", value_parser = parse_key_value)]
    pub annotations: Vec<(String, String)>,
    /// Label `k=v` an auctioned host must carry (repeatable).
    #[arg(long = "constraint", value_parser = parse_key_value)]
    pub constraints: Vec<(String, String)>,
}

#[derive(Subcommand, Debug)]
pub enum StopCommand {
    /// `lattice stop component ID [--host H]`: on every host running it, or on --host.
    Component {
        component_id: String,
        #[arg(long)]
        host: Option<String>,
    },
    /// `lattice stop provider ID [--host H]`: on every host running it, or on --host.
    Provider {
        provider_id: String,
        #[arg(long)]
        host: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    pub command: AppCommand,
    /// JetStream domain of the lattice's buckets (e.g. from behind a leaf node).
    #[arg(long, env = "LATTICE_JS_DOMAIN", global = true)]
    pub js_domain: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Check a manifest (YAML or JSON) and print every problem with its path.
    Validate { file: std::path::PathBuf },
    /// Store a manifest as a new version (validated first: nothing is stored if invalid).
    Put { file: std::path::PathBuf },
    /// Deploy an application: its newest version, or VERSION. Given a manifest file
    /// instead of a name, stores it first (as `wash app deploy FILE`).
    Deploy {
        name: String,
        #[arg(value_name = "VERSION")]
        app_version: Option<String>,
    },
    /// Stop an application's components and remove its links.
    Undeploy { name: String },
    /// Every stored application, its deployed version and status.
    List,
    /// What the reconciler says of an application, per scaler.
    Status { name: String },
    /// The stored versions of an application.
    History { name: String },
}

#[derive(Subcommand, Debug)]
pub enum LinkCommand {
    /// `lattice link put SOURCE_ID TARGET NAMESPACE PACKAGE --interface I...`
    Put {
        source_id: String,
        target: String,
        wit_namespace: String,
        wit_package: String,
        #[arg(long = "interface", required = true)]
        interfaces: Vec<String>,
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long = "source-config")]
        source_config: Vec<String>,
        #[arg(long = "target-config")]
        target_config: Vec<String>,
        /// The target's functions may run twice without harm: retry calls whose host died.
        #[arg(long)]
        idempotent: bool,
    },
    /// Every link of the lattice.
    Get,
    /// `lattice link del SOURCE_ID NAMESPACE PACKAGE [--name N]`
    Del {
        source_id: String,
        wit_namespace: String,
        wit_package: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct CallArgs {
    pub component_id: String,
    /// `ns:pkg/iface@version.function`, or just `function` for a root-level export.
    pub function: String,
    /// Arguments in WAVE, comma-separated as in a tuple: `1, "two", [3]`.
    #[arg(default_value = "")]
    pub args: String,
    /// Time budget of the call.
    #[arg(long = "call-timeout", default_value = "10s", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// The function's types from WIT (a file or a directory), for a target that does not
    /// answer `component.signature` (a wasmCloud host, any upstream wRPC server).
    #[arg(long, conflicts_with = "wasm")]
    pub wit: Option<PathBuf>,
    /// The function's types from a component file.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// Registry access, for types read from the component's OCI artifact.
    #[command(flatten)]
    pub oci: OciArgs,
}

#[derive(Subcommand, Debug)]
pub enum ScaleCommand {
    /// `lattice scale component REF ID --count N`: run up to N instances of REF as ID.
    Component(ScaleComponentArgs),
}

#[derive(Args, Debug)]
pub struct ScaleComponentArgs {
    /// Component reference: an OCI reference or file:///path (hosts need --allow-file-load).
    pub component_ref: String,
    /// Component id, unique in the lattice (used in subjects: letters, digits, '-', '_').
    pub component_id: String,
    /// Most instances running at once; 0 stops the component.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub count: u32,
    #[command(flatten)]
    pub placement: Placement,
    /// Component limit `k=v`: max_linear_memory (bytes), max_execution_time (ms),
    /// max_component_size (bytes).
    #[arg(long = "limit", value_parser = parse_key_value)]
    pub limits: Vec<(String, String)>,
    /// Replace a component of the same id running another reference.
    #[arg(long)]
    pub allow_update: bool,
    /// Host the component's outgoing HTTP requests may reach: `host`, `host:port`,
    /// `*.domain` or `*` (repeatable; none: outgoing HTTP is denied).
    #[arg(long = "allow-http")]
    pub allowed_hosts: Vec<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Return once the host acknowledges, without waiting for the outcome.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the outcome (fetching and compiling take time).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub wait_timeout: Duration,
}

#[derive(Subcommand, Debug)]
pub enum UpdateCommand {
    /// `lattice update component ID NEW_REF --host HOST`.
    Component {
        component_id: String,
        new_component_ref: String,
        #[arg(long)]
        host: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Target reference, e.g. 127.0.0.1:5000/app/calc:0.1.0.
    pub reference: String,
    /// The component file.
    pub file: PathBuf,
    #[command(flatten)]
    pub oci: OciArgs,
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// `lattice registry put REGISTRY --oci-user U --oci-password P` (or --oci-token).
    Put {
        registry: String,
        #[command(flatten)]
        oci: OciArgs,
    },
}

/// OCI registry access.
#[derive(Args, Debug, Clone)]
pub struct OciArgs {
    /// Registries (`host:port`) reached over plain HTTP (comma-separated).
    #[arg(long, env = "LATTICE_OCI_INSECURE", value_delimiter = ',')]
    pub oci_insecure: Vec<String>,
    /// Allow pulling `:latest` or untagged references.
    #[arg(long, env = "LATTICE_OCI_ALLOW_LATEST")]
    pub oci_allow_latest: bool,
    #[arg(long, env = "LATTICE_OCI_USER")]
    pub oci_user: Option<String>,
    #[arg(long, env = "LATTICE_OCI_PASSWORD", hide_env_values = true)]
    pub oci_password: Option<String>,
    #[arg(long, env = "LATTICE_OCI_TOKEN", hide_env_values = true)]
    pub oci_token: Option<String>,
    /// Longest a component pull may take before it is abandoned.
    #[arg(long, env = "LATTICE_OCI_PULL_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub oci_pull_timeout: Duration,
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
    /// Allow `file://` component references.
    #[arg(long, env = "LATTICE_ALLOW_FILE_LOAD")]
    pub allow_file_load: bool,
    /// Directory of the compile cache [default: $XDG_CACHE_HOME/lattice/compiled].
    #[arg(long, env = "LATTICE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Instance slots reserved by the pooling allocator (0: allocate on demand).
    #[arg(long, env = "LATTICE_POOL_INSTANCES", default_value_t = 256)]
    pub pool_instances: u32,
    /// Default max linear memory of a component, e.g. `64MiB`.
    #[arg(long, env = "LATTICE_MAX_LINEAR_MEMORY", default_value = "64MiB", value_parser = parse_size)]
    pub max_linear_memory: usize,
    /// Default max execution time of one call.
    #[arg(long, env = "LATTICE_MAX_EXECUTION_TIME", default_value = "30s", value_parser = parse_duration)]
    pub max_execution_time: Duration,
    /// Largest component accepted, e.g. `50MiB`.
    #[arg(long, env = "LATTICE_MAX_COMPONENT_SIZE", default_value = "50MiB", value_parser = parse_size)]
    pub max_component_size: usize,
    #[command(flatten)]
    pub oci: OciArgs,
    /// The registry (`host[:port]`) that --oci-user/--oci-password/--oci-token are for; they
    /// are sent to no other.
    #[arg(long, env = "LATTICE_OCI_REGISTRY")]
    pub oci_registry: Option<String>,
    /// Send every linked call over wRPC, even to components on this host (for testing).
    #[arg(long, env = "LATTICE_FORCE_REMOTE_CALLS")]
    pub force_remote_calls: bool,
    /// Time budget of calls components make through their imports.
    #[arg(long, env = "LATTICE_CALL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// The shared HTTP listener, for links from `http` routed by `path` or `host`.
    #[arg(long, env = "LATTICE_HTTP_ADDRESS", default_value = "127.0.0.1:8000")]
    pub http_address: std::net::SocketAddr,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (calls per link and component,
    /// their latency and errors). Off by default: without it the host measures nothing.
    #[arg(long, env = "LATTICE_METRICS_ADDRESS")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Export spans of HTTP requests and calls over OTLP/HTTP, to where the standard
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT say (default
    /// http://localhost:4318). Also on when either variable is set.
    #[arg(long, env = "LATTICE_ENABLE_TRACES")]
    pub enable_traces: bool,
    /// Push metrics over OTLP/HTTP too, to where OTEL_EXPORTER_OTLP_METRICS_ENDPOINT /
    /// OTEL_EXPORTER_OTLP_ENDPOINT say, every OTEL_METRIC_EXPORT_INTERVAL (60 s). Also on when
    /// either variable is set.
    #[arg(long, env = "LATTICE_ENABLE_METRICS")]
    pub enable_metrics: bool,
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
    /// Every link of the lattice (as `lattice link get`).
    Links,
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

/// `1048576`, `512KiB`, `64MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n
        .parse()
        .map_err(|_| format!("expected a size like 64MiB, got {s:?}"))?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks a command's definition only when it is parsed: check all of them here.
    #[test]
    fn every_command_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
