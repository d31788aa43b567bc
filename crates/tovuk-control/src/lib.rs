//! The control-plane API: platform status, authentication, tokens, apps, source intake
//! (git push and archive uploads), deploys, operations and source inspection.
//!
//! It is the only role that opens the state store; every other role, the git hooks
//! and the CLI reach state through this API. Handlers return [`ApiFailure`] so every
//! error leaves in the one `{"error": {...}}` shape.

mod accept;
mod addons;
mod app_logs;
mod apply;
mod apps;
mod artifacts;
mod auth;
mod auth_readiness;
mod boot;
mod build_logs;
mod builds;
mod config_release;
mod cron;
mod deploys;
mod env;
mod failure;
mod follow;
mod git_http;
mod hooks;
mod http;
mod intake;
mod operations;
mod plan;
mod preflight;
mod push_commands;
mod queues;
mod releases;
mod resources;
mod retention;
mod route_auth;
mod routes;
mod source;
mod status;
mod store_health;
mod throttle;
mod tokens;
mod usage;
mod views;

pub use boot::ControlStore;
pub use cron::{CronHost, run_cron};
pub use failure::ApiFailure;
pub use queues::{QueueHost, QueueTarget};
pub use resources::{HostFuture, SqliteHost, SqliteTarget};
pub use routes::run_route_table;
pub use store_health::{run_store_watch, run_token_uses};
pub use tovuk_store::DEFAULT_RELEASES_KEPT;
pub use usage::run_metering;

use axum::Router;
use axum::routing::{any, delete, get, post};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;
use tovuk_daemon::{RoleBoard, Shutdown};
use tovuk_git::Repos;
use tovuk_store::Store;

/// What the control plane is configured with.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// The URL users reach the API at, when configured; otherwise taken from each request's `Host`.
    pub public_url: Option<String>,
    pub started_at: String,
    /// The data directory's paths.
    pub layout: tovuk_types::DataLayout,
    /// The binary the git hooks run (`tovuk hook ...`).
    pub tovuk_exe: PathBuf,
    /// The API's own address, for the hooks to report to.
    pub internal_url: String,
    /// A push larger than this is refused.
    pub max_push_bytes: u64,
    /// An uploaded archive larger than this (compressed) is refused.
    pub max_upload_bytes: u64,
    /// What an uploaded archive may unpack to.
    pub archive_limits: tovuk_git::archive::ArchiveLimits,
    /// The secret in-process roles (the builder) present on `/internal/v1/builds`.
    pub node_secret: String,
    /// Apps answer at `http://<app>.<base_domain>` plus the router's port.
    pub base_domain: String,
    /// The router's address, for service URLs.
    pub router_addr: String,
    /// How many of each app's deploys that served stay rollback targets, keeping their
    /// artifacts and config values (`[retention] releases`; at least 1).
    pub releases_kept: usize,
    /// Seals config values as they are set (`<data>/keys/secrets.key`).
    pub secrets_key: Arc<tovuk_secrets::MasterKey>,
    /// The operator's price table.
    pub pricing: Arc<tovuk_pricing::PriceTable>,
    /// The live counts the router keeps, and the caps it enforces.
    pub meters: Arc<tovuk_meter::Meters>,
    /// Which limits this machine enforces on apps and builds (`/v1/status`).
    pub enforced_limits: tovuk_api_types::EnforcedLimits,
}

/// What the API needs to answer: the store, the repositories and facts about this platform.
#[derive(Clone)]
pub struct ControlState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    roles: RoleBoard,
    repos: Repos,
    config: ControlConfig,
    started: Instant,
    /// Pushes in flight, by their one-push secret: how the hooks authenticate.
    push_sessions: Mutex<HashMap<String, hooks::PushSession>>,
    /// One intake at a time per app, so concurrent pushes are recorded in order.
    app_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes builders waiting for work when a deploy is queued or a build ends.
    build_wakeup: tokio::sync::Notify,
    /// Wakes runners waiting for work when an artifact is sealed or a release settles.
    release_wakeup: tokio::sync::Notify,
    /// Held while counts move from the router's meters to the store, and while caps are
    /// handed to the router from stored usage, so no count is in neither place then.
    metering: tokio::sync::Mutex<()>,
    /// Live fan-out of app log lines, by app name.
    app_log_channels: Mutex<HashMap<String, tokio::sync::broadcast::Sender<tovuk_api_types::AppLogLine>>>,
    /// Stops streams and long polls with the server; every task the API spawns runs under it.
    shutdown: Shutdown,
    /// The route table routers follow.
    routes: routes::RouteBook,
    /// Bumped whenever any deploy changes state: followers re-read theirs.
    deploy_changes: tokio::sync::watch::Sender<u64>,
    /// Live log fan-out of running builds, by deploy id.
    log_channels: Mutex<HashMap<String, tokio::sync::broadcast::Sender<tovuk_api_types::BuildLogEvent>>>,
    /// Whether the store takes writes right now.
    store_health: store_health::StoreHealth,
    /// Tokens' last uses not written yet, by token id: authenticating never writes.
    token_uses: Mutex<HashMap<String, String>>,
    /// Failed authentications per client address.
    auth_throttle: throttle::AuthThrottle,
    /// Where the operator's SQLite commands run: the runner on this server, once attached.
    sqlite_host: std::sync::OnceLock<Arc<dyn resources::SqliteHost>>,
    /// Where the operator's queue commands run: the runner on this server, once attached.
    queue_host: std::sync::OnceLock<Arc<dyn queues::QueueHost>>,
    /// Cron: the runner that starts runs, and the jobs each deploy declares.
    cron: cron::Crons,
}

impl ControlState {
    pub fn new(store: ControlStore, roles: RoleBoard, config: ControlConfig, shutdown: Shutdown) -> Self {
        let store = store.store.with_releases_kept(config.releases_kept);
        let repos = Repos::new(&config.layout, config.tovuk_exe.clone());
        let mut config = config;
        config.public_url = config.public_url.map(|url| url.trim_end_matches('/').to_owned());
        ControlState {
            inner: Arc::new(Inner {
                store,
                roles,
                repos,
                config,
                started: Instant::now(),
                push_sessions: Mutex::default(),
                app_locks: Mutex::default(),
                build_wakeup: tokio::sync::Notify::new(),
                release_wakeup: tokio::sync::Notify::new(),
                metering: tokio::sync::Mutex::new(()),
                log_channels: Mutex::default(),
                deploy_changes: tokio::sync::watch::channel(0).0,
                app_log_channels: Mutex::default(),
                shutdown,
                routes: routes::RouteBook::new(),
                store_health: store_health::StoreHealth::default(),
                token_uses: Mutex::default(),
                auth_throttle: throttle::AuthThrottle::default(),
                sqlite_host: std::sync::OnceLock::new(),
                queue_host: std::sync::OnceLock::new(),
                cron: cron::Crons::default(),
            }),
        }
    }

    /// Gives the API the runner that holds app volumes, for the operator's SQLite commands.
    pub fn attach_sqlite_host(&self, host: Arc<dyn resources::SqliteHost>) {
        let _ = self.inner.sqlite_host.set(host);
    }

    /// Gives the API the runner that serves the queues, for the operator's queue commands.
    pub fn attach_queue_host(&self, host: Arc<dyn queues::QueueHost>) {
        let _ = self.inner.queue_host.set(host);
    }

    /// Gives the API the runner that starts cron runs; without one nothing is scheduled.
    pub fn attach_cron_host(&self, host: Arc<dyn cron::CronHost>) {
        self.inner.cron.attach(host);
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn repos(&self) -> &Repos {
        &self.inner.repos
    }

    fn config(&self) -> &ControlConfig {
        &self.inner.config
    }

    /// Runs the producer of a streamed answer as a task shutdown waits for, ending it
    /// when the server stops so a follower never holds a shutdown up.
    fn spawn_stream(self, name: &'static str, producer: impl std::future::Future<Output = ()> + Send + 'static) {
        let shutdown = self.inner.shutdown.clone();
        self.inner.shutdown.spawn(name, async move {
            tokio::select! {
                () = shutdown.wait() => {}
                () = producer => {}
            }
            Ok(())
        });
    }

    /// Spawns background work (no answer waits for it) under shutdown.
    fn spawn_task(&self, name: &'static str, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.clone().spawn_stream(name, task);
    }

    /// Resolves when the server stops: long polls answer "nothing yet" then.
    async fn stopping(&self) {
        self.inner.shutdown.wait().await;
    }

    /// Some deploy changed state: wake whoever follows one.
    fn deploys_changed(&self) {
        self.inner.deploy_changes.send_modify(|version| *version = version.wrapping_add(1));
    }

    fn artifacts_dir(&self) -> PathBuf {
        self.config().layout.artifacts_dir()
    }

    fn secrets_key(&self) -> &tovuk_secrets::MasterKey {
        &self.config().secrets_key
    }

    fn pricing(&self) -> &tovuk_pricing::PriceTable {
        &self.config().pricing
    }

    fn meters(&self) -> &tovuk_meter::Meters {
        &self.config().meters
    }

    /// A deploy became ready to go live: wake the runners waiting for one.
    fn release_ready(&self) {
        self.inner.release_wakeup.notify_waiters();
    }

    fn keys_dir(&self) -> PathBuf {
        self.config().layout.keys_dir()
    }

    /// The lock that serialises intake for one app.
    fn app_lock(&self, app_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.app_locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(app_id.to_owned()).or_default().clone()
    }

    /// Ends the builds and releases a previous run left behind (their roles died with it),
    /// removes their workspaces, forgets its instances and publishes the first route table.
    /// Called at start, before any role runs.
    pub async fn recover_after_restart(&self) -> anyhow::Result<()> {
        for deploy in self.store().fail_interrupted_builds().await? {
            tracing::warn!(deploy_id = %deploy.id, app = %deploy.app_name, "build interrupted by a restart: failed");
        }
        for deploy in self.store().fail_interrupted_releases().await? {
            tracing::warn!(deploy_id = %deploy.id, app = %deploy.app_name, "release interrupted by a restart: failed");
        }
        // A cron run dies with the platform (its sandbox does not outlive it).
        for run in self.store().fail_interrupted_cron_runs().await? {
            tracing::warn!(run_id = %run.id, binding = %run.binding, "cron run interrupted by a restart: failed");
        }
        // A release still proving itself when the platform stopped is kept: what it
        // replaced is superseded (its instance is stopped by the runner, as not wanted).
        for deploy in self.store().current_releases().await? {
            self.store().settle(deploy.id.as_str()).await?;
        }
        // Instances outlive the platform, but the runner must say which it adopted (and
        // that each is the one it started) before the route sends traffic there: until
        // then the routes say "starting" (503 with Retry-After).
        self.store().forget_instances().await?;
        self.republish_routes()
            .await
            .map_err(|failure| anyhow::anyhow!("cannot build the route table: {}", failure.0))?;
        let work = self.config().layout.work_dir();
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        Ok(())
    }

    /// Installs the managed hooks and makes sure every app has its repository. Called at
    /// start, so hooks changed on disk are put back and a restored store gets its repos.
    pub async fn prepare_repositories(&self) -> anyhow::Result<()> {
        let written = self.repos().install_hooks()?;
        if written > 0 {
            tracing::info!(hooks_dir = %self.repos().hooks_dir().display(), written, "git hooks installed");
        }
        for app in self.store().list_apps().await? {
            if !self.repos().exists(&app.name) {
                self.repos().create(&app.name, &app.deploy_branch).await?;
                tracing::warn!(app = %app.name, "repository was missing; created an empty one");
            }
        }
        Ok(())
    }
}

/// The API's routes. `/health`, `/healthz` and `/v1/status` need no token; every other
/// public route extracts a [`auth::Caller`]; the internal routes sit behind the node credential.
pub fn router(state: ControlState) -> Router {
    let public = Router::new()
        .route("/health", get(status::ok))
        .route("/healthz", get(status::ok))
        .route("/v1/status", get(status::platform_status))
        .route("/v1/store/backup", get(status::backup))
        .route("/v1/apps", post(apps::create).get(apps::list))
        .route("/v1/apps/{app}", get(apps::show).patch(apps::update))
        .route("/v1/apps/{app}/deploys", get(deploys::list).post(intake::upload))
        .route("/v1/apps/{app}/operations", get(operations::list))
        .route("/v1/apps/{app}/source", get(source::show))
        .route("/v1/apps/{app}/source/refs", get(source::refs))
        .route("/v1/apps/{app}/source/resolve", get(source::resolve))
        .route("/v1/apps/{app}/source/commits", get(source::commits))
        .route("/v1/apps/{app}/source/remote", get(source::remote))
        .route("/v1/deploys/{id}", get(deploys::show))
        .route("/v1/deploys/{id}/cancel", post(deploys::cancel))
        .route("/v1/deploys/{id}/retry", post(deploys::retry))
        .route("/v1/deploys/{id}/build-logs", get(build_logs::stream))
        .route("/v1/deploys/{id}/events", get(follow::events))
        .route("/v1/deploys/{id}/artifact", get(artifacts::show))
        .route("/v1/deploys/{id}/artifact/verify", post(artifacts::verify))
        .route("/v1/apps/{app}/status", get(apps::status))
        .route("/v1/apps/{app}/inspect", get(apps::inspect))
        .route("/v1/apps/{app}/preflight", post(preflight::preflight))
        .route("/v1/apps/{app}/logs", get(app_logs::stream))
        .route("/v1/apps/{app}/env", get(env::list).put(env::change))
        .route("/v1/apps/{app}/env/history", get(env::history))
        .route("/v1/apps/{app}/restart", post(env::restart))
        .route("/v1/apps/{app}/rollback", post(env::rollback))
        .route("/v1/apps/{app}/caps", get(usage::list_caps))
        .route("/v1/services", get(resources::list))
        .route("/v1/services/{app}", get(resources::show))
        .route("/v1/apps/{app}/addons", post(addons::create))
        .route("/v1/apps/{app}/addons/{binding}/detach", post(addons::detach))
        .route("/v1/apps/{app}/sqlite/{binding}/snapshots", get(resources::snapshots).post(resources::snapshot))
        .route("/v1/apps/{app}/sqlite/{binding}/restore", post(resources::restore))
        .route("/v1/apps/{app}/sqlite/{binding}/query", post(resources::query))
        .route("/v1/apps/{app}/queues", get(queues::list))
        .route("/v1/apps/{app}/queues/{binding}", get(queues::show))
        .route("/v1/apps/{app}/queues/{binding}/messages", get(queues::peek))
        .route("/v1/apps/{app}/queues/{binding}/purge", post(queues::purge))
        .route("/v1/apps/{app}/queues/{binding}/redrive", post(queues::redrive))
        .route("/v1/apps/{app}/cron", get(cron::list))
        .route("/v1/apps/{app}/cron/runs", get(cron::history))
        .route("/v1/apps/{app}/cron/runs/{id}", get(cron::show_run))
        .route("/v1/apps/{app}/cron/{binding}/runs", post(cron::run_now))
        .route("/v1/apps/{app}/caps/{meter}", axum::routing::put(usage::set_cap).delete(usage::unset_cap))
        .route("/v1/pricing", get(usage::pricing))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/plan", post(plan::plan))
        .route("/v1/operations/{id}", get(operations::show))
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        // The hooks of a push authenticate with that push's one-time secret, not a token.
        .route("/git-hooks/v1/{hook}", post(hooks::run_hook))
        .route("/git/{*path}", any(git_http::serve));
    let internal = Router::new()
        .route("/usage", post(usage::record))
        .route("/app-logs", post(app_logs::append))
        .route("/releases/claim", post(releases::claim))
        .route("/releases/current", get(releases::current))
        .route("/releases/{id}/live", post(releases::live))
        .route("/releases/{id}/failed", post(releases::failed))
        .route("/releases/{id}/settled", post(releases::settled))
        .route("/releases/{id}/rolled-back", post(releases::rolled_back))
        .route("/instances", post(releases::instance))
        .route("/cron/runs/{id}/end", post(cron::run_ended))
        .route("/routes", get(routes::follow))
        .route("/builds/claim", post(builds::claim))
        .route("/builds/{id}/state", post(builds::advance))
        .route("/builds/{id}/phases", post(builds::phase))
        .route("/builds/{id}/logs", post(builds::logs))
        .route("/builds/{id}/finish", post(builds::finish))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), http::require_node));
    public
        .nest("/internal/v1", internal)
        .fallback(auth::unknown_route)
        .layer(axum::extract::DefaultBodyLimit::max(http::JSON_BODY_LIMIT_MIB << 20))
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::request_span))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: ControlState, shutdown: Shutdown) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Without TCP_NODELAY a kept-alive connection waits on delayed ACKs (~40 ms a round trip).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await?;
    Ok(())
}
