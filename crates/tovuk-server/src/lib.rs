//! `tovuk server`: prepares the data directory, opens the store, binds every role's
//! listener and runs the roles until SIGINT or SIGTERM.
//!
//! Boot and shutdown are narrated one `info!` line per step; shutdown runs in reverse.

mod build_env;
mod cron_host;
mod data_dir;
mod listeners;
mod queue_host;
mod retention;
mod routes;
mod sqlite_host;

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tovuk_control::{ControlConfig, ControlState, ControlStore};
use tovuk_daemon::{RoleBoard, SHUTDOWN_DEADLINE, Shutdown};

/// The longest the router waits at start for the runner to adopt the apps that outlived
/// the last run, before it serves regardless (apps still starting answer 503).
const RESTORE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub use data_dir::{ADMIN_TOKEN_FILE, NODE_SECRET_FILE, SERVER_FILE, STATE_FILE};

/// Everything `tovuk server` needs to start, already parsed by the CLI.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the store, keys, repositories and artifacts live.
    pub data_dir: PathBuf,
    /// API and git listener.
    pub listen: String,
    /// Router listener: the apps' traffic.
    pub router_listen: String,
    /// The router's internal listener: service-binding calls between apps (host loopback).
    pub internal_listen: String,
    /// The URL users reach the API at (for git remotes), when it differs from the `Host` they send.
    pub public_url: Option<String>,
    /// A push larger than this is refused.
    pub max_push_bytes: u64,
    /// A `tovuk deploy` upload larger than this (compressed) is refused.
    pub max_upload_bytes: u64,
    /// An upload may unpack to at most this many bytes and entries.
    pub max_unpacked_bytes: u64,
    pub max_upload_files: u64,
    /// Builds at once (one per app at a time).
    pub build_concurrency: usize,
    /// A build's stored log is capped at this many bytes.
    pub build_log_limit_bytes: usize,
    /// Host paths bound read-only into every build (toolchains).
    pub build_toolchains: Vec<PathBuf>,
    /// Apps answer at `<app>.<base_domain>` on the router.
    pub base_domain: String,
    /// The server config file: its `[pricing]`, `[build]` and `[retention]` tables.
    pub config_file: Option<PathBuf>,
    /// Count usage and enforce caps.
    pub metering: bool,
    /// Stop the apps when the server stops, instead of leaving them for the next start.
    pub stop_apps: bool,
    /// Give instances and builds the host's network (`--share-host-network`).
    pub share_host_network: bool,
    /// Be the listener keeper of the server on `data_dir` (`--hold-listeners`).
    pub hold_listeners: bool,
    /// Only check the state store and exit (`--check-store`).
    pub check_store: bool,
    /// Run one role apart, following another server's control plane (`--role`).
    pub split_role: Option<SplitRole>,
}

/// A role run apart from the control plane (`tovuk server --role ROLE --control-plane URL`).
#[derive(Debug, Clone)]
pub struct SplitRole {
    pub role: String,
    /// The API of the server whose control plane the role follows.
    pub control_plane: String,
    /// That server's `keys/node.secret`.
    pub node_secret_file: PathBuf,
}

/// Runs the platform and maps the outcome to an exit code: 0 after a clean stop, 1 when
/// it could not start or stopped on an error.
pub fn main(config: ServerConfig) -> ExitCode {
    if config.hold_listeners {
        return match listeners::hold(&config.data_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    tovuk_daemon::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn into_tokio(bound: Option<listeners::Bound>) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let (listener, address) = bound.context("a listener is missing")?;
    listener.set_nonblocking(true)?;
    Ok((TcpListener::from_std(listener)?, address))
}

async fn bind(role: &str, address: &str, flag: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("the {role} role cannot listen on `{address}`; pass {flag} with a free address (e.g. {flag} 127.0.0.1:0) or stop what holds it")
    })?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Boots every role, serves until a signal, then shuts down in reverse order.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    raise_open_files_limit();
    if let Some(split) = &config.split_role {
        return run_split_role(&config, split).await;
    }
    if config.check_store {
        let state_file = tovuk_types::DataLayout::new(&config.data_dir).state_file();
        ControlStore::check(&state_file).await?;
        println!("the state store `{}` is sound", state_file.display());
        return Ok(());
    }
    let started_at = chrono_now();
    let pricing = std::sync::Arc::new(read_pricing(config.config_file.as_deref())?);
    let build_env = build_env::read(config.config_file.as_deref())?;
    let releases_kept = retention::read(config.config_file.as_deref())?;
    let data_dir = data_dir::prepare(&config.data_dir)?;
    let store = ControlStore::open(&data_dir.state_file()).await?;
    tracing::info!(path = %data_dir.state_file().display(), "state store open");
    // Before anything is written (an admin token): a refused start leaves the data dir as it was.
    let secrets_key = match store.secrets_key(&data_dir.layout().keys_dir()).await {
        Ok(key) => std::sync::Arc::new(key),
        Err(error) => {
            store.close().await;
            return Err(error.context("cannot use the secrets master key"));
        }
    };
    if data_dir.ensure_admin_token(&store).await? {
        tracing::info!(path = %data_dir.admin_token_file().display(), "admin token written (mode 0600)");
    }

    // Taken over from the previous run where its keeper still holds them: connections
    // that came in while no server ran wait in their backlog instead of being refused.
    let wanted = [
        listeners::Wanted { role: "api", address: &config.listen, flag: "--listen" },
        listeners::Wanted { role: "router", address: &config.router_listen, flag: "--router-listen" },
    ];
    let (mut bound, keeper) = listeners::take_or_bind(&data_dir.layout().listeners_socket(), &wanted)?;
    let (router_listener, router_addr) = into_tokio(bound.pop())?;
    let (api_listener, api_addr) = into_tokio(bound.pop())?;

    let shutdown = Shutdown::new();
    let roles = RoleBoard::default();
    let api_url = format!("http://{api_addr}");
    // The hooks git runs report back here, so use an address this machine can dial.
    let mut internal_addr = api_addr;
    if internal_addr.ip().is_unspecified() {
        internal_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // Only the platform's own roles hold it: in this process, or started apart with the file.
    let node_secret = data_dir.node_secret()?;
    tovuk_artifact::BuildKey::load_or_create(&data_dir.layout().keys_dir())
        .context("cannot prepare the build signing key")?;
    let meters = tovuk_meter::Meters::new(config.metering);
    let cgroups = std::sync::Arc::new(tovuk_sandbox::cgroup::Cgroups::detect());
    let network = if config.share_host_network {
        tovuk_sandbox::network::Support::none("turned off by --share-host-network")
    } else {
        tovuk_sandbox::network::Support::detect()
    };
    let volumes = tovuk_sandbox::volume::Volumes::detect();
    let enforced_limits = enforced_limits(&cgroups, &network, &volumes);
    if !enforced_limits.notes.is_empty() {
        tracing::warn!(notes = ?enforced_limits.notes, "some limits on apps and builds are not enforced on this machine");
    }
    let control = ControlState::new(
        store.clone(),
        roles.clone(),
        ControlConfig {
            public_url: config.public_url.clone(),
            started_at: started_at.clone(),
            layout: data_dir.layout().clone(),
            tovuk_exe: std::env::current_exe().context("cannot find the tovuk binary the git hooks should run")?,
            internal_url: format!("http://{internal_addr}"),
            max_push_bytes: config.max_push_bytes,
            max_upload_bytes: config.max_upload_bytes,
            archive_limits: tovuk_git::archive::ArchiveLimits {
                max_unpacked_bytes: config.max_unpacked_bytes,
                max_files: config.max_upload_files,
                ..Default::default()
            },
            node_secret: node_secret.clone(),
            releases_kept,
            base_domain: config.base_domain.clone(),
            router_addr: router_addr.to_string(),
            secrets_key: secrets_key.clone(),
            pricing,
            meters: meters.clone(),
            enforced_limits,
        },
        shutdown.clone(),
    );
    control.recover_after_restart().await.context("cannot recover what the previous run left")?;
    control.prepare_repositories().await.context("cannot prepare the git repositories")?;
    let resources =
        tovuk_runner::ResourceHost::open(data_dir.layout().clone(), meters.clone(), shutdown.clone()).await.context(
            "cannot open the resources the platform serves to apps (the KV, the object storage, the State store)",
        )?;
    control.attach_sqlite_host(std::sync::Arc::new(sqlite_host::RunnerSqlite(resources.clone())));
    control.attach_queue_host(std::sync::Arc::new(queue_host::RunnerQueues(resources.clone())));
    control.attach_cron_host(std::sync::Arc::new(cron_host::RunnerCron(resources.clone())));

    roles.set("api", true, Some(api_addr.to_string()));
    tracing::info!(role = "api", address = %api_addr, url = %api_url, "listening");
    let api_shutdown = shutdown.clone();
    let api_roles = roles.clone();
    shutdown.spawn("metering", tovuk_control::run_metering(control.clone(), shutdown.clone()));
    shutdown.spawn("route-table", tovuk_control::run_route_table(control.clone(), shutdown.clone()));
    shutdown.spawn("store-watch", tovuk_control::run_store_watch(control.clone(), shutdown.clone()));
    shutdown.spawn("token-uses", tovuk_control::run_token_uses(control.clone(), shutdown.clone()));
    shutdown.spawn("cron", tovuk_control::run_cron(control.clone(), shutdown.clone()));
    let route_feed = control.route_feed();
    // The API stops accepting last, once every other task has ended: the other roles (a
    // build being stopped, the runner) report their last words to it as they stop. Its
    // socket stays open in the listener keeper, so a request to an API that stopped first
    // would wait in the backlog.
    let api_stops = Shutdown::new();
    let serving_api = api_stops.clone();
    api_stops.spawn("api", async move {
        let result = tovuk_control::serve(api_listener, control, serving_api).await;
        api_roles.set("api", false, None);
        api_shutdown.trigger();
        result
    });

    roles.set("router", true, Some(router_addr.to_string()));
    tracing::info!(role = "router", address = %router_addr, "listening");
    let router = tovuk_router::Router::with_meters(&config.base_domain, tovuk_router::Timeouts::default(), meters);
    router.set_session_store(session_store(&config.data_dir).await?);
    // Each request's access log line reaches the app's log (`tovuk logs APP`).
    let (access_tx, access_rx) = tokio::sync::mpsc::channel(4096);
    router.set_access_log(access_tx);
    let access_client = tovuk_client::Client::for_node(&format!("http://{internal_addr}"), &node_secret)?;
    shutdown.spawn("access-log", tovuk_runner::ship_logs(access_client, access_rx, shutdown.clone()));
    // Service-binding calls between apps: the router's internal listener, reached through the
    // forwarders the runner puts in apps' networks (or directly, on a host without them).
    let (bindings_listener, bindings_addr) = bind("internal", &config.internal_listen, "--internal-listen").await?;
    let forwarder_secret: std::sync::Arc<str> = {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| anyhow::anyhow!("no randomness for the forwarders' secret: {error}"))?;
        bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>().into()
    };
    resources.serve_bindings(bindings_addr, forwarder_secret.clone());
    roles.set("internal", true, Some(bindings_addr.to_string()));
    tracing::info!(role = "internal", address = %bindings_addr, "listening");
    let internal_router = router.clone();
    let internal_shutdown = shutdown.clone();
    shutdown.spawn("router-internal", async move {
        internal_router.serve_internal(bindings_listener, forwarder_secret, internal_shutdown).await
    });
    let routes_at_start = route_feed.clone();
    shutdown.spawn("route-follow", tovuk_router::follow_routes(router.clone(), route_feed, shutdown.clone()));
    let router_shutdown = shutdown.clone();
    let router_roles = roles.clone();
    let serving_router = router.clone();
    let (restored_tx, restored_rx) = tokio::sync::oneshot::channel();
    shutdown.spawn("router", async move {
        // Apps outlive a restart: until the runner has adopted them, connections wait in
        // the listen backlog rather than meet a "starting" answer (a while at most).
        let _ = tokio::time::timeout(RESTORE_WAIT, restored_rx).await;
        let table = routes_at_start.borrow().version;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        while serving_router.routed_version() < table && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let result = serving_router.serve(router_listener, router_shutdown.clone()).await;
        router_roles.set("router", false, None);
        router_shutdown.trigger();
        result
    });

    if let Err(error) = tovuk_sandbox::check_available().await {
        tracing::warn!(%error, "builds cannot run in a sandbox on this machine; they will fail until this is fixed");
    }
    roles.set("builder", true, None);
    tracing::info!(role = "builder", concurrency = config.build_concurrency, "running");
    let builder_config = tovuk_builder::BuilderConfig {
        layout: data_dir.layout().clone(),
        api_url: format!("http://{internal_addr}"),
        node_secret: node_secret.clone(),
        node_name: format!("local-{}", std::process::id()),
        concurrency: config.build_concurrency,
        log_limit_bytes: config.build_log_limit_bytes,
        toolchains: config.build_toolchains.clone(),
        env: build_env,
        secrets_key: secrets_key.clone(),
        cgroups: cgroups.clone(),
        network: network.clone(),
    };
    let builder_node_secret = node_secret;
    let builder_shutdown = shutdown.clone();
    let builder_roles = roles.clone();
    shutdown.spawn("builder", async move {
        let result = tovuk_builder::run(builder_config, builder_shutdown.clone()).await;
        builder_roles.set("builder", false, None);
        builder_shutdown.trigger();
        result
    });

    roles.set("runner", true, None);
    tracing::info!(role = "runner", "running");
    let runner_config = tovuk_runner::RunnerConfig {
        layout: data_dir.layout().clone(),
        api_url: format!("http://{internal_addr}"),
        node_secret: builder_node_secret,
        secrets_key,
        cgroups,
        network,
        volumes,
        resources,
        releases_kept,
    };
    let traffic: std::sync::Arc<dyn tovuk_runner::Traffic> = std::sync::Arc::new(routes::RouterTraffic(router));
    let runner_shutdown = shutdown.clone();
    let runner_roles = roles.clone();
    shutdown.spawn("runner", async move {
        let result = tovuk_runner::run(runner_config, traffic, runner_shutdown.clone(), restored_tx).await;
        runner_roles.set("runner", false, None);
        runner_shutdown.trigger();
        result
    });

    data_dir.write_server_file(&api_url, &format!("http://{router_addr}"), &started_at)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "tovuk is up");

    tokio::select! {
        signal = tovuk_daemon::shutdown_signal() => tracing::info!(signal, "shutting down"),
        () = shutdown.wait() => tracing::warn!("a role stopped; shutting down"),
    }
    shutdown.trigger();
    // A second signal stops waiting for in-flight work.
    drain(&shutdown).await;
    api_stops.trigger();
    drain(&api_stops).await;
    if config.stop_apps {
        tovuk_runner::stop_all_instances(data_dir.layout()).await;
        // A full stop: the ports are refused from now on, not held for a next start.
        if let Some(keeper) = keeper {
            keeper.release();
        }
    } else {
        // Held until the process exits: the keeper counts from then.
        drop(keeper);
    }
    data_dir.remove_server_file();
    store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// What this machine enforces, as `/v1/status` says it.
fn enforced_limits(
    cgroups: &tovuk_sandbox::cgroup::Cgroups,
    network: &tovuk_sandbox::network::Support,
    volumes: &tovuk_sandbox::volume::Volumes,
) -> tovuk_api_types::EnforcedLimits {
    let enforced = cgroups.enforced();
    let mut notes = Vec::new();
    if let Some(why) = cgroups.unavailable_reason() {
        notes.push(format!("memory, cpu and pids limits are not enforced: {why}"));
    } else {
        for (name, on) in [("memory", enforced.memory), ("cpu", enforced.cpu), ("pids", enforced.pids)] {
            if !on {
                notes.push(format!("the {name} controller is not available to the platform: {name} is not limited"));
            }
        }
    }
    if let Some(why) = &volumes.unavailable {
        notes.push(format!(
            "/data has no size limit ({why}): its size is measured every minute and billed (storage_gb_month)"
        ));
    } else if let Some(why) = &volumes.cannot_grow {
        notes.push(format!("/data cannot grow once made ({why}): a larger [limits] data_mb keeps the size it had"));
    }
    if let Some(why) = &network.own_unavailable {
        notes.push(format!(
            "app instances share the host's network ({why}): another app's port or the API can be reached from inside"
        ));
        notes.push(
            "the KV and the object storage answer on the host's loopback: an app's credential, not its network, is what keeps another app out"
                .to_owned(),
        );
        notes.push(
            "service-binding calls reach the router's internal listener directly: the binding's token alone says which app calls, so a leaked token works from another app"
                .to_owned(),
        );
    }
    if let Some(why) = &network.outbound_unavailable {
        notes.push(format!(
            "builds and apps with capability `outbound-network` share the host's network ({why}): they can reach the API and other apps"
        ));
    }
    // The router listens for plain HTTP on every machine: TLS is a terminator's in front.
    notes.push(
        "edge auth session cookies are sent without `Secure`: the router serves plain HTTP (put a TLS terminator in front)"
            .to_owned(),
    );
    tovuk_api_types::EnforcedLimits {
        cgroup: cgroups.version().to_owned(),
        memory: enforced.memory,
        cpu: enforced.cpu,
        pids: enforced.pids,
        tmp_size: true,
        data_quota: volumes.unavailable.is_none(),
        network_isolation: network.own_unavailable.is_none(),
        outbound_isolation: network.outbound_unavailable.is_none(),
        notes,
    }
}

/// Waits for every task to finish, up to the deadline; a second signal stops waiting.
async fn drain(shutdown: &Shutdown) {
    let drained = tokio::select! {
        drained = shutdown.join(SHUTDOWN_DEADLINE) => drained,
        signal = tovuk_daemon::shutdown_signal() => {
            tracing::warn!(signal, "second signal: stopping without waiting");
            false
        }
    };
    if !drained {
        tracing::warn!("some work did not finish before the shutdown deadline");
    }
}

/// Where the router keeps the sessions of apps' edge auth logins.
async fn session_store(
    data_dir: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<dyn tovuk_edge_auth::SessionStore>> {
    let file = tovuk_types::DataLayout::new(data_dir).sessions_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let store = tovuk_edge_auth::SqliteSessions::open(&file)
        .await
        .with_context(|| format!("cannot open the edge auth session store `{}`", file.display()))?;
    Ok(std::sync::Arc::new(store))
}

/// One role apart from the control plane. Only the router can run apart yet: it starts
/// with an empty table and serves what the control plane's table says.
async fn run_split_role(config: &ServerConfig, split: &SplitRole) -> anyhow::Result<()> {
    if split.role != "router" {
        anyhow::bail!(
            "`--role {}` cannot run apart yet: only `--role router` can; run the other roles with `tovuk server`",
            split.role
        );
    }
    if config.metering {
        anyhow::bail!(
            "a router apart from the control plane cannot count usage or enforce caps yet; \
             start it with --no-metering (caps stay enforced by the server's own router only)"
        );
    }
    let secret = std::fs::read_to_string(&split.node_secret_file).with_context(|| {
        format!(
            "cannot read the node credential `{}`; copy the control plane's <data-dir>/keys/{NODE_SECRET_FILE} and pass it with --node-secret-file",
            split.node_secret_file.display()
        )
    })?;
    let client = tovuk_client::Client::for_node(&split.control_plane, secret.trim()).with_context(|| {
        format!("`{}` is not a control-plane URL; pass --control-plane http://HOST:PORT", split.control_plane)
    })?;
    let (router_listener, router_addr) = bind("router", &config.router_listen, "--router-listen").await?;
    let shutdown = Shutdown::new();
    let router = tovuk_router::Router::with_meters(
        &config.base_domain,
        tovuk_router::Timeouts::default(),
        tovuk_meter::Meters::new(false),
    );
    // Its own sessions: a login through another router is not known here.
    router.set_session_store(session_store(&config.data_dir).await?);
    tracing::info!(role = "router", address = %router_addr, control_plane = %split.control_plane, "listening");
    // Its access log reaches the apps' logs on the control plane, as the server's own router's does.
    let (access_tx, access_rx) = tokio::sync::mpsc::channel(4096);
    router.set_access_log(access_tx);
    shutdown.spawn("access-log", tovuk_runner::ship_logs(client.clone(), access_rx, shutdown.clone()));
    let feed = routes::RemoteFeed(client);
    shutdown.spawn("route-follow", tovuk_router::follow_routes(router.clone(), feed, shutdown.clone()));
    let serving_shutdown = shutdown.clone();
    shutdown.spawn("router", async move {
        let result = router.serve(router_listener, serving_shutdown.clone()).await;
        serving_shutdown.trigger();
        result
    });
    tokio::select! {
        signal = tovuk_daemon::shutdown_signal() => tracing::info!(signal, "shutting down"),
        () = shutdown.wait() => tracing::warn!("the router stopped; shutting down"),
    }
    shutdown.trigger();
    drain(&shutdown).await;
    tracing::info!("shutdown complete");
    Ok(())
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Every proxied connection holds two descriptors; the common soft limit of 1024 would cap
/// the router near 500 clients. Raise the soft limit to the hard one.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(limit = ?limit.maximum, "open files limit raised"),
            Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
        }
    }
}

/// The price table from the config file's `[pricing]`, or the default one. A bad price
/// stops the start, naming the file and line.
fn read_pricing(file: Option<&std::path::Path>) -> anyhow::Result<tovuk_pricing::PriceTable> {
    let Some(file) = file else { return Ok(tovuk_pricing::PriceTable::default_table()) };
    let text = std::fs::read_to_string(file).with_context(|| {
        format!("cannot read the server config `{}`; pass --config with a readable file", file.display())
    })?;
    tovuk_pricing::PriceTable::parse(&text, &file.display().to_string())
        .map_err(|error| anyhow::anyhow!("the server config is refused: {error}; nothing was started"))
}
