//! The command-line grammar, as plain data. Behaviour lives in `commands/`.

use crate::exit::EXIT_CODES_HELP;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// tovuk: push code, get a checked, built, tested and health-gated release.
#[derive(Debug, Parser)]
#[command(
    name = "tovuk",
    version,
    about = "tovuk: push code, get a checked, built, tested and health-gated release",
    after_long_help = EXIT_CODES_HELP, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Print one JSON document on stdout instead of human output (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// The platform to talk to, by the name given to `tovuk target add`.
    #[arg(long, global = true, value_name = "NAME")]
    pub target: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the platform on this machine, every role in one process.
    Server(Box<ServerArgs>),
    /// Show whether the platform API and its store answer (not about any project).
    Status,
    /// Check the project contract `tovuk.toml` locally (or the one detected without it); needs no server.
    Check(CheckArgs),
    /// Write the contract detected from the project's files (Procfile, requirements.txt,
    /// package.json, Cargo.toml, go.mod, index.html) as `tovuk.toml`, to edit and commit.
    Init(InitArgs),
    /// Check a project's contract against the app's config as a deploy would, without
    /// deploying: every readiness blocker (unset config, the routes' auth, bindings) with the
    /// command that clears it, and what serves the app now. Exit 0 ready, 1 blocked.
    Preflight(PreflightArgs),
    /// Create, list and show apps.
    #[command(subcommand)]
    App(AppCommand),
    /// Release an earlier deploy's artifact again without rebuilding (default: the one before
    /// the current), health-gated, with the config it ran with. Resource data and database
    /// migrations are not reverted.
    Rollback(RollbackArgs),
    /// Create, list and revoke API tokens (needs an admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Deploy a directory without git, or list, show and cancel deploys.
    Deploy(DeployArgs),
    /// Operation records: the source, build and deploy steps of every accepted push.
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Inspect an app's hosted git repository.
    #[command(subcommand)]
    Source(SourceCommand),
    /// Show an app's output, a build's log or a deploy's lifecycle; live with --follow.
    Logs(LogsArgs),
    /// Show or verify a deploy's signed artifact.
    #[command(subcommand)]
    Artifact(ArtifactCommand),
    /// Set, unset and list an app's secrets and config; values are never shown.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Fill in an app's config from a file: write a template, then apply it as one change.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The operator's price table: every meter, its unit price and what incurs it.
    Pricing,
    /// Usage this billing period (`accountUsage`): the account's and each app's, per meter.
    Usage {
        /// Only this app (and its cap events).
        app: Option<String>,
    },
    /// Hard caps: a meter at its cap stops that usage until the period ends or the cap is raised.
    #[command(subcommand)]
    Caps(CapsCommand),
    /// A service (an app) with its resources: what it uses, the variables they set, usage and caps.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Attach a resource (SQLite, object storage, KV) to an app itself, without a tovuk.toml
    /// entry: every release of the app gets it until it is detached.
    #[command(subcommand)]
    Addon(AddonCommand),
    /// An app's SQLite databases: snapshots, restore, and queries for an operator.
    #[command(subcommand)]
    Sqlite(SqliteCommand),
    /// An app's queues: depth and dead letters, a look at their messages, purge and redrive.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// An app's cron jobs: schedules, next and last runs, their history, and a run now.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Manage the platforms this CLI talks to.
    #[command(subcommand)]
    Target(TargetCommand),
    /// The platform's state store (needs an admin token).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Run a managed git hook (git runs this; it is not for people).
    #[command(hide = true)]
    Hook {
        /// `pre-receive` or `post-receive`.
        name: String,
    },
}

/// `tovuk logs`: an app's output, a build's log, or a deploy's lifecycle.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["app", "build", "deploy"])))]
pub(crate) struct LogsArgs {
    /// The app whose instances' output to show (stdout and stderr, each line with its deploy and instance).
    pub app: Option<String>,
    /// The deploy whose build log to show (`dep_...`); without a value, the newest deploy of
    /// APP, or of the app in this directory's tovuk.toml.
    #[arg(long = "build", value_name = "DEPLOY_ID", num_args = 0..=1, default_missing_value = "")]
    pub build: Option<String>,
    /// The deploy whose lifecycle events (state changes, failure) to show (`dep_...`).
    #[arg(long = "deploy", value_name = "DEPLOY_ID")]
    pub deploy: Option<String>,
    /// Keep printing as new lines arrive (a build: until it ends, exit 1 if it failed).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// An app's lines of one stream only: `stdout`, `stderr`, `platform`, or `access` (the
    /// router's line per request: method, path, status, bytes, time, client, request id).
    #[arg(long, value_name = "STREAM")]
    pub stream: Option<String>,
    /// How many of an app's newest lines to start with.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub tail: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactCommand {
    /// The signed artifact manifest of a deploy.
    Show {
        /// Deploy id (`dep_...`).
        id: String,
    },
    /// Check the artifact's signature and digest now, from the stored files (exit 1 if it fails).
    Verify {
        /// Deploy id (`dep_...`).
        id: String,
    },
}

/// `tovuk deploy`: upload a directory, or manage deploys.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct DeployArgs {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    /// The project directory to upload.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The app to deploy to (default: `[app] name` in tovuk.toml).
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Print exactly the files that would be uploaded, and upload nothing.
    #[arg(long)]
    pub list_files: bool,
    /// After uploading, follow the deploy until it runs or fails (exit 1 if it fails).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Check the contract and ask the server what a deploy would do, changing nothing:
    /// missingConfig, requiredFixes, capabilities, meterPlan, limits, usage, billingEstimate.
    /// Exit 1 when something blocks the deploy.
    #[arg(long, conflicts_with_all = ["list_files", "follow"])]
    pub dry_run: bool,
    /// With --dry-run: the expected monthly quantity of a meter, over `[expected]` (repeatable).
    #[arg(long = "expect", value_name = "METER=QTY", requires = "dry_run")]
    pub expect: Vec<String>,
    /// Apply the contract's resources, bindings and routes with the deploy, and report them
    /// (`apply` in the answer: each part's status and the readiness). Every deploy does, as
    /// every git push does: the flag says so explicitly.
    #[arg(long)]
    pub apply_manifest: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// List an app's deploys, newest first.
    List {
        /// App name or id.
        app: String,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one deploy: state, when it entered each state, source, build job.
    Show {
        /// Deploy id (`dep_...`); default the newest deploy of the app in this directory's tovuk.toml.
        id: Option<String>,
    },
    /// Follow a deploy: one line per state change, a heartbeat every 5 s, until it runs
    /// (exit 0) or fails or is cancelled (exit 1). A finished deploy is replayed.
    Follow {
        /// Deploy id (`dep_...`); default the newest deploy of the app in this directory's tovuk.toml.
        id: Option<String>,
    },
    /// Deploy the same source again as a new deploy; the old one stays as history.
    Retry {
        /// Deploy id (`dep_...`).
        id: String,
        /// Follow the new deploy until it runs or fails.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a queued deploy at once, or stop a build in progress.
    Cancel {
        /// Deploy id (`dep_...`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CapsCommand {
    /// Cap one meter of an app per billing period; takes effect at once, even below current
    /// usage, and may be set before the first deploy. At the cap the router answers 429
    /// (requests, egress, CPU, memory) or builds are refused (build minutes, storage).
    Set {
        /// App name or id.
        app: String,
        /// A meter from `tovuk pricing`, e.g. `requests`.
        meter: String,
        /// The most the app may use per period, in the meter's unit.
        limit: f64,
    },
    /// Each cap with this period's usage against it, and the stops caps caused.
    List {
        /// App name or id.
        app: String,
    },
    /// Remove a cap; usage it stopped resumes.
    Unset {
        /// App name or id.
        app: String,
        /// The meter whose cap to remove.
        meter: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// The service's URL, current deploy and capabilities, and every resource: its kind,
    /// binding, status (`active` or `detached`), the variables it sets (never their values),
    /// where it lives, its size, this period's usage per meter and its caps.
    Show {
        /// App name or id.
        app: String,
    },
    /// Every service with its active resources.
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AddonCommand {
    /// Create a resource attached to the app (or attach the one it has with that kind and
    /// binding, with its data). Every release gets its variables, whatever its tovuk.toml
    /// declares; a running app is released again with it (no rebuild). The way to give a
    /// database to an app deployed without a tovuk.toml.
    Create {
        /// App name or id.
        app: String,
        /// `sqlite`, `object-storage`, `kv`, `queue` or `state`.
        kind: String,
        /// The env-var style name its variables derive from (`DB` sets `DB`, and
        /// `DATABASE_URL` when it is the app's only SQLite). Default: `DB` (sqlite), `FILES`
        /// (object-storage), `CACHE` (kv), `QUEUE` (queue), `STATE` (state).
        #[arg(long)]
        binding: Option<String>,
    },
    /// Stop giving an add-on to the app: its data is kept (and billed for what it holds)
    /// until the app is deleted, and `addon create` with the same kind and binding brings it
    /// back. A running app is released again without it, unless its tovuk.toml declares it.
    Detach {
        /// App name or id.
        app: String,
        /// The add-on's binding, e.g. `DB`.
        binding: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SqliteCommand {
    /// Take a consistent snapshot of the database while the app keeps writing.
    Snapshot {
        /// App name or id.
        app: String,
        /// The resource's binding (`[[resources]] binding`), e.g. `DB`.
        binding: String,
    },
    /// The database's snapshots, newest first.
    Snapshots {
        /// App name or id.
        app: String,
        /// The resource's binding, e.g. `DB`.
        binding: String,
    },
    /// Replace the database with a snapshot: the snapshot must pass `PRAGMA integrity_check`;
    /// the app's instances stop, the file is swapped, they start again. The database as it
    /// was is kept as a new snapshot first.
    Restore {
        /// App name or id.
        app: String,
        /// The resource's binding, e.g. `DB`.
        binding: String,
        /// The snapshot id (`tovuk sqlite snapshots APP BINDING`).
        snapshot: String,
    },
    /// Run one SQL statement against the database: read-only unless --write.
    Query {
        /// App name or id.
        app: String,
        /// The resource's binding, e.g. `DB`.
        binding: String,
        /// The statement, e.g. "SELECT count(*) FROM notes".
        sql: String,
        /// Open the database for writing (the statement may change it).
        #[arg(long)]
        write: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// The app's queues, each with its depth, in-flight and dead-letter counts.
    List {
        /// App name or id.
        app: String,
    },
    /// One queue: depth, in flight, dead letters, the oldest message's age, how it is consumed.
    Show {
        /// App name or id.
        app: String,
        /// The queue's binding (`[[resources]] binding`), e.g. `JOBS`.
        binding: String,
    },
    /// The first messages in delivery order, or the dead letters; nothing is leased or changed.
    Peek {
        /// App name or id.
        app: String,
        /// The queue's binding, e.g. `JOBS`.
        binding: String,
        /// Show the queue's dead letters instead (with the error of their last attempt).
        #[arg(long)]
        dead_letter: bool,
        /// How many messages to show (1 to 100).
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Delete every message of the queue (in flight too), or with --dead-letter its dead letters.
    Purge {
        /// App name or id.
        app: String,
        /// The queue's binding, e.g. `JOBS`.
        binding: String,
        /// Delete the dead letters instead.
        #[arg(long)]
        dead_letter: bool,
        /// The binding again: purging cannot be undone.
        #[arg(long, value_name = "BINDING")]
        confirm: String,
    },
    /// Move the queue's dead letters back into it, deliverable now, their attempts reset.
    Redrive {
        /// App name or id.
        app: String,
        /// The queue's binding, e.g. `JOBS`.
        binding: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CronCommand {
    /// The app's cron jobs, each with its schedule, its next run (UTC) and how its last run ended.
    List {
        /// App name or id.
        app: String,
    },
    /// The app's runs, newest first: when each was due, how it ended and why (skipped and
    /// missed ticks too).
    History {
        /// App name or id.
        app: String,
        /// Only this cron job's runs (its `[[resources]] binding`, e.g. `CLEANUP`).
        binding: Option<String>,
        /// How many runs to show (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Run a cron job now, from the app's current release (recorded with the time it was
    /// asked for as its scheduled time). Like a tick, it is skipped while the job's last run
    /// is still going, or when the app's cap on `cron_invocations` is reached.
    Run {
        /// App name or id.
        app: String,
        /// The cron job's binding, e.g. `CLEANUP`.
        binding: String,
        /// Show the run's output as it prints, and wait until it ends (exit 0 only when it
        /// succeeded).
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// Set one or more names as one change; the app restarts with them (health-gated).
    ///
    /// `tovuk env set APP NAME=VALUE [NAME=VALUE...]` sets values given inline (they land in
    /// your shell history); `tovuk env set APP NAME --from-file PATH` reads one value from a
    /// file; `tovuk env set APP NAME` reads it from standard input (without echo on a
    /// terminal). One trailing newline of a file or stdin is dropped. Values are one line,
    /// at most 64 KiB, without NUL bytes; `PORT`, `HOST`, `HOME`, `PATH` and `TOVUK_*` are
    /// the platform's.
    Set {
        /// App name or id.
        app: String,
        /// `NAME=VALUE` pairs, or one `NAME` whose value comes from --from-file or stdin.
        #[arg(required = true, value_name = "NAME[=VALUE]")]
        assignments: Vec<String>,
        /// Read the value of the one NAME from this file.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
        /// Store the change only; it reaches the app at its next deploy or `tovuk app restart`.
        #[arg(long)]
        no_restart: bool,
    },
    /// Remove names as one change; the app restarts without them (health-gated).
    Unset {
        /// App name or id.
        app: String,
        /// The names to remove.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Store the change only; it reaches the app at its next deploy or `tovuk app restart`.
        #[arg(long)]
        no_restart: bool,
    },
    /// The names set, each with its version, when it was set and by which token; and what the
    /// latest deploy needs that is not set. Never a value, nor anything derived from one.
    List {
        /// App name or id.
        app: String,
    },
    /// Who changed which names when, newest first, and the release each change started.
    History {
        /// App name or id.
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print an env file naming every required and known name with an empty value and a
    /// comment saying what needs it: `tovuk config template APP > APP.env`.
    Template {
        /// App name or id.
        app: String,
        /// The project directory whose tovuk.toml says what is required (default: the current
        /// directory if it has one, else what the app's latest deploy needed).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
    },
    /// Set every filled-in value of an env file as one change (one release). `NAME=` keeps
    /// what is set; `NAME=""` sets an empty string. Refuses a required name left empty.
    Apply {
        /// App name or id.
        app: String,
        /// The env file (`tovuk config template` writes one).
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// The project directory whose tovuk.toml says what is required (default: as for `template`).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Store the change only; it reaches the app at its next deploy or `tovuk app restart`.
        #[arg(long)]
        no_restart: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum OpsCommand {
    /// List an app's operations, newest first.
    List {
        /// App name or id.
        app: String,
    },
    /// Show one operation and the operations linked to it.
    Show {
        /// Operation id (`op_...`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SourceCommand {
    /// The repository at a glance: remote, deploy branch and its tip, last deploy.
    Show {
        /// App name or id.
        app: String,
    },
    /// Resolve a branch, tag, full ref or commit id to a commit.
    ResolveRef {
        /// App name or id.
        app: String,
        /// e.g. `main`, `refs/heads/main`, `v1.0`, `3f2a9c1`.
        #[arg(value_name = "REF")]
        reference: String,
    },
    /// Recent commits of a ref (default: the deploy branch).
    Commits {
        /// App name or id.
        app: String,
        /// The ref to list from.
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
        /// How many commits.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The git remote URL and the command that deploys.
    Remote {
        /// App name or id.
        app: String,
    },
    /// Every branch and tag with its commit.
    Refs {
        /// App name or id.
        app: String,
    },
}

/// `tovuk server` options.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Where the state store, keys, repositories and artifacts live
    /// (default: $XDG_DATA_HOME/tovuk, else ~/.local/share/tovuk).
    #[arg(long, env = "TOVUK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the API and git frontend.
    #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
    pub listen: String,
    /// Address of the router that serves the apps (`http://<app>.localhost:8080`).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub router_listen: String,
    /// Address of the router's internal listener, where apps call each other through their
    /// service bindings (`[[bindings]]`). Keep it on loopback. Apps with a network of their own
    /// reach it through the platform whatever its port; on a machine without network isolation
    /// apps reach it directly, so give it a fixed port there (apps that outlive a restart keep it).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub internal_listen: String,
    /// The URL users reach the API at, used in git remote URLs (default: the Host they send).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Refuse a git push larger than this many bytes.
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub max_push_bytes: u64,
    /// Refuse a `tovuk deploy` upload larger than this many bytes (compressed).
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub max_upload_bytes: u64,
    /// Refuse an upload that unpacks to more than this many bytes.
    #[arg(long, default_value_t = 1024 * 1024 * 1024, value_name = "BYTES")]
    pub max_unpacked_bytes: u64,
    /// Refuse an upload with more than this many files and directories.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_upload_files: u64,
    /// Builds to run at once (default: one per core); an app never has two at once.
    #[arg(long, value_name = "N")]
    pub build_concurrency: Option<usize>,
    /// Store at most this many bytes of one build's log; the rest is counted, not kept.
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub build_log_limit_bytes: usize,
    /// A host directory every build may read (a toolchain, e.g. ~/.cargo); its `bin` goes on PATH. Repeatable.
    #[arg(long = "build-toolchain", value_name = "DIR")]
    pub build_toolchains: Vec<PathBuf>,
    /// Replaced by `[retention] releases` in the server config: refused, naming it.
    #[arg(long, hide = true, value_name = "N")]
    pub keep_artifacts: Option<String>,
    /// Apps answer at `http://<app>.<DOMAIN>` on the router (every `*.localhost` is loopback).
    #[arg(long, default_value = "localhost", value_name = "DOMAIN")]
    pub base_domain: String,
    /// The server config file (TOML). Its `[pricing]` table is the price table `tovuk pricing`
    /// shows and usage is billed by (without one, the built-in default prices apply); `[build]
    /// env` reaches every build; `[retention] releases` is how many deploys that served each
    /// app keeps to roll back to (default 10).
    #[arg(long, env = "TOVUK_SERVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Count no usage and enforce no caps (for comparing the router's speed with metering off).
    #[arg(long)]
    pub no_metering: bool,
    /// Check the state store (SQLite's full integrity check, and that this tovuk can open
    /// it) and exit: 0 when it is sound, 1 naming the problem. Writes nothing; starts nothing.
    #[arg(long)]
    pub check_store: bool,
    /// On SIGINT or SIGTERM, stop every app too (SIGTERM, then SIGKILL after its
    /// `[run] stop_grace`). Without it apps keep running, and the next start adopts them.
    #[arg(long)]
    pub stop_apps: bool,
    /// Run app instances and builds on the host's network instead of a network of their
    /// own: any app can then reach the API, the router and every other app. For measuring
    /// what isolation costs (bench/isolation.sh); `tovuk status` says it is off.
    #[arg(long)]
    pub share_host_network: bool,
    /// Hold the listening sockets of the server on --data-dir across its restarts (the
    /// server starts this itself; it is not for people).
    #[arg(long, hide = true)]
    pub hold_listeners: bool,
    /// Run only this role, following another server's control plane. Only `router` can run
    /// apart yet: it serves the apps of the server at --control-plane from an empty table,
    /// and needs --node-secret-file and --no-metering (its counts and caps stay local).
    #[arg(long, value_name = "ROLE", requires_all = ["control_plane", "node_secret_file"])]
    pub role: Option<String>,
    /// The API of the server whose control plane --role follows (`http://HOST:7700`).
    #[arg(long, value_name = "URL", requires = "role")]
    pub control_plane: Option<String>,
    /// That server's node credential: its `<data-dir>/keys/node.secret`.
    #[arg(long, value_name = "FILE", requires = "role")]
    pub node_secret_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The project directory holding `tovuk.toml` (or the files its contract is detected from).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Without `tovuk.toml`: the app the detected contract names (default: the directory's name).
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PreflightArgs {
    /// App name or id.
    pub app: String,
    /// The project directory holding `tovuk.toml` (or the files its contract is detected from).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// App name or id.
    pub app: String,
    /// The deploy to bring back: one of the newest `superseded` in `tovuk deploy list APP` (the
    /// server keeps `[retention] releases` of them, default 10); default the one that served
    /// before the current deploy.
    #[arg(value_name = "DEPLOY_ID")]
    pub deploy_id: Option<String>,
    /// Use the config as it is now instead of the revision that deploy ran with.
    #[arg(long)]
    pub current_config: bool,
    /// Follow the rollback until it runs or fails (exit 1 if it fails).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The project directory to write `tovuk.toml` into.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The app's name in `[app] name` (default: the directory's name).
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Create an app; prints its git remote and a deploy token (shown once).
    Create {
        /// A lowercase DNS label: a-z, 0-9 and `-`, 1-63 characters.
        name: String,
        /// The branch whose pushes deploy.
        #[arg(long, default_value = "main", value_name = "BRANCH")]
        deploy_branch: String,
    },
    /// Change an app's settings.
    Update {
        /// App name or id.
        app: String,
        /// The branch whose pushes deploy.
        #[arg(long, value_name = "BRANCH")]
        deploy_branch: Option<String>,
    },
    /// List the apps this token can see.
    List,
    /// Show one app.
    Show {
        /// App name or id.
        app: String,
    },
    /// What serves the app now: current deploy, instance, health, restarts, service URL.
    Status {
        /// App name or id.
        app: String,
    },
    /// The status plus the runtime evidence: what actually serves traffic, and how.
    Inspect {
        /// App name or id.
        app: String,
    },
    /// The same as `tovuk preflight`.
    Preflight(PreflightArgs),
    /// Release the current artifact again with the config as it is now (health-gated, no
    /// rebuild): how a change stored with --no-restart reaches the app.
    Restart {
        /// App name or id.
        app: String,
        /// Follow the release until it runs or fails (exit 1 if it fails).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Write a consistent copy of the state store to PATH, taken while the platform runs.
    /// Start a server on it by putting it at `<data-dir>/state.db` (with the same `keys/`).
    Backup {
        /// Where to write the copy; refused if it exists.
        path: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; its secret is printed once on stdout.
    Create {
        /// A name to recognise the token by in `tovuk token list`.
        #[arg(long)]
        name: Option<String>,
        /// Scope the token to one app (a deploy token); without it the token is an admin token.
        #[arg(long, value_name = "APP")]
        app: Option<String>,
    },
    /// List tokens (metadata only; secrets are never stored).
    List,
    /// Revoke a token at once.
    Revoke {
        /// Token id (`tok_...`), as shown by `tovuk token list`.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TargetCommand {
    /// Add a platform URL and its token; the first target added becomes current.
    Add {
        /// A name for the target, e.g. `prod`.
        name: String,
        /// The platform API URL, e.g. `https://tovuk.example.com`.
        #[arg(long)]
        url: String,
        /// Read the token from this file.
        #[arg(long, value_name = "PATH", conflicts_with = "token_stdin", required_unless_present = "token_stdin")]
        token_file: Option<PathBuf>,
        /// Read the token from standard input.
        #[arg(long)]
        token_stdin: bool,
        /// Replace a target of the same name.
        #[arg(long)]
        force: bool,
    },
    /// List targets and show which is current.
    List,
    /// Make a target the current one.
    Use { name: String },
    /// Remove a target and its stored token.
    Remove { name: String },
}
