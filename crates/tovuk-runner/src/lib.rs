//! The runner role: takes deploys whose artifact is sealed, verifies and unpacks them,
//! starts the app in the sandbox, waits for its health path, and only then moves the
//! app's traffic to it; the instance it replaces drains, then stops.
//!
//! It reaches state through the control-plane API and owns no routes: it reports each
//! instance (healthy at an address, crashing, failed) and the control plane routes by
//! that. Through [`Traffic`] it sees when the routers stopped sending a replaced
//! instance new requests, and drains it before stopping it.
//!
//! A new release proves itself for `[health] min_healthy` while the instance it replaced
//! stays up ([`window`]); health is probed for an instance's whole life, and an
//! instance started again gets traffic only once its health path answers. Instances
//! outlive the platform: the first reconcile after a start adopts them.

mod bindings;
mod cron;
mod deliver;
mod instance;
mod output;
mod process;
mod reconcile;
mod release;
mod resources;
mod signal;
mod sqlite;
mod usage;
mod window;

use instance::{Instance, Launch, Life};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tovuk_api_types::{ClaimedRelease, DeployFailure, FailureReason, InstanceReport, InstanceStatus};
use tovuk_client::Client;
use tovuk_daemon::Shutdown;
use tovuk_manifest::AppKind;

pub use resources::ResourceHost;

/// What the runner sees of the routers' traffic, to drain a replaced instance.
pub trait Traffic: Send + Sync + 'static {
    /// The version of the control plane's route table the routers serve by.
    fn routed_version(&self) -> u64;
    /// Requests (and tunnels) in flight to `upstream`.
    fn in_flight(&self, upstream: SocketAddr) -> usize;
}

/// How long a replaced instance waits for the routers to serve by the table that
/// no longer sends it requests, before draining regardless.
const ROUTE_SWITCH_WAIT: Duration = Duration::from_secs(5);
/// Failed probes in a row after which a live instance is started again.
const LIVENESS_FAILURES: u32 = 3;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The data directory; the runner reads repositories, artifacts and the build public
    /// key, and writes releases and volumes (see `DataLayout`).
    pub layout: tovuk_types::DataLayout,
    pub api_url: String,
    pub node_secret: String,
    /// Opens the app's config values, just before an instance starts.
    pub secrets_key: Arc<tovuk_secrets::MasterKey>,
    /// Where each instance's control group (its limits) is made.
    pub cgroups: Arc<tovuk_sandbox::cgroup::Cgroups>,
    /// What network an instance can be given here.
    pub network: tovuk_sandbox::network::Support,
    /// Whether an app's `/data` can be given its size here.
    pub volumes: tovuk_sandbox::volume::Volumes,
    /// The resources served to apps on this machine (KV, object storage, SQLite files).
    pub resources: Arc<ResourceHost>,
    /// The operator's `[retention] releases`: no more unpacked releases than that are kept.
    pub releases_kept: usize,
}

/// Unpacked releases kept per app, newest first, besides any that serve: a rollback is a
/// deploy of its own that unpacks its artifact again, so more copies would only take disk.
const RELEASES_UNPACKED: usize = 3;

/// What an instance of a release runs.
#[derive(Clone, Copy)]
enum Role<'a> {
    /// `[run] command`: routed to when the app is `web`, gated by its `[health]`.
    Web,
    /// Instance `ordinal` of a `[[processes]]` entry: no traffic, no health path.
    Process { process: &'a tovuk_manifest::Process, ordinal: u32 },
}

/// The environment of a release's processes ([`Runner::environment`]).
struct Environment {
    env: Arc<tovuk_secrets::OpenedEnv>,
    masker: Arc<tovuk_secrets::Masker>,
    endpoints: bool,
    hosts: Arc<Vec<String>>,
}

/// What every instance of a release starts from.
struct Starter<'a> {
    release: &'a ClaimedRelease,
    prepared: &'a release::Release,
    env: Arc<tovuk_secrets::OpenedEnv>,
    masker: Arc<tovuk_secrets::Masker>,
    /// Its instances reach the KV or the object storage: served inside their networks.
    endpoints: bool,
    /// Host names its instances' hosts file points at their loopback (`<service>.internal`).
    hosts: Arc<Vec<String>>,
    /// Bringing back a live app after a platform restart: adopt what outlived it.
    restoring: bool,
}

struct Runner {
    client: Client,
    /// Instances' output on its way to the app logs.
    logs: tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>,
    config: RunnerConfig,
    traffic: Arc<dyn Traffic>,
    /// The instances serving each app (its current deploy's, by slot).
    serving: Mutex<HashMap<String, Vec<Instance>>>,
    /// Every task the runner starts runs under it.
    shutdown: Shutdown,
    /// The deploy each static app serves (the router serves its files; no process runs).
    serving_static: Mutex<HashMap<String, String>>,
    /// Apps a task is starting or stopping right now: reconciling leaves them alone.
    busy: Mutex<std::collections::HashSet<String>>,
    /// Current deploys that could not be started here; not tried again while current.
    failed_starts: Mutex<std::collections::HashSet<String>>,
    /// Each app's release still proving itself: cancelling ends the proof early (a newer
    /// release is going live).
    windows: Mutex<HashMap<String, (String, tokio_util::sync::CancellationToken)>>,
}

/// Runs the runner until `shutdown` fires. The apps it started keep running then: the
/// next start adopts them. `restored` fires once the first reconcile has adopted (or
/// given up on) every instance that outlived the last run, so a router can wait for it.
pub async fn run(
    config: RunnerConfig,
    traffic: Arc<dyn Traffic>,
    shutdown: Shutdown,
    restored: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let client = Client::for_node(&config.api_url, &config.node_secret)?;
    let (logs, log_rx) = tokio::sync::mpsc::channel(10_000);
    shutdown.spawn("app-logs", ship_logs(client.clone(), log_rx, shutdown.clone()));
    let runner = Arc::new(Runner {
        client,
        logs,
        config,
        traffic,
        serving: Mutex::default(),
        shutdown: shutdown.clone(),
        serving_static: Mutex::default(),
        busy: Mutex::default(),
        failed_starts: Mutex::default(),
        windows: Mutex::default(),
    });
    runner.config.resources.attach(&runner);
    shutdown.spawn("instance-usage", runner.clone().measure_usage(shutdown.clone()));
    // Its first pass adopts what outlived the last run and starts what did not.
    let cgroups = runner.config.cgroups.clone();
    // Empty groups a killed platform left behind; a live instance's group holds its processes.
    tokio::task::spawn_blocking(move || {
        let removed = cgroups.remove_stale();
        if removed > 0 {
            tracing::info!(removed, "removed control groups left by an earlier run");
        }
    });
    shutdown.spawn("reconcile", runner.clone().reconcile(shutdown.clone(), restored));
    let mut errors: u32 = 0;
    loop {
        let claimed = tokio::select! {
            () = shutdown.wait() => break,
            claimed = runner.client.claim_release() => claimed,
        };
        match claimed {
            Ok(Some(release)) => {
                errors = 0;
                let runner = runner.clone();
                shutdown.spawn("release", async move {
                    runner.take_live(release).await;
                    Ok(())
                });
            }
            Ok(None) => {}
            Err(error) => {
                errors += 1;
                tracing::warn!(%error, errors, "cannot claim releases; retrying");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(Duration::from_millis(200 * u64::from(errors.min(25)))) => {}
                }
            }
        }
    }
    Ok(())
}

/// Stops every app instance recorded in the data directory (SIGTERM, then SIGKILL after
/// its grace), for a server stopped with `--stop-apps`.
pub async fn stop_all_instances(layout: &tovuk_types::DataLayout) {
    let Ok(entries) = std::fs::read_dir(layout.instances_dir()) else { return };
    let mut stopping = tokio::task::JoinSet::new();
    for entry in entries.flatten() {
        stopping.spawn(async move { process::kill_recorded(&entry.path()).await });
    }
    while stopping.join_next().await.is_some() {}
    tracing::info!("apps stopped");
}

fn report(instance: &Instance, status: InstanceStatus, life: &Life) -> InstanceReport {
    let serves = matches!(life, Life::Running { .. });
    let (pid, started_at, last_exit) = match life {
        Life::Running { pid, started_at, .. } => (Some(i64::from(*pid)), Some(started_at.clone()), None),
        Life::Restarting { last_exit, .. } | Life::CrashLooping { last_exit, .. } => {
            (None, None, last_exit.map(i64::from))
        }
        _ => (None, None, None),
    };
    let restarts = i64::from(life.restarts());
    InstanceReport {
        deploy_id: instance.launch.deploy_id.clone(),
        slot: instance.launch.slot,
        status,
        pid,
        port: Some(i64::from(instance.launch.port)),
        started_at,
        restarts,
        last_exit_code: last_exit,
        last_exit_at: matches!(life, Life::Restarting { .. } | Life::CrashLooping { .. })
            .then(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        upstream: (serves && instance.launch.kind == AppKind::Web).then(|| instance.addr()),
        netns: instance.netns(),
        static_root: None,
        reason: None,
        process: instance.launch.process.as_ref().map(|(name, _)| name.clone()),
    }
}

/// A report of an instance that serves nothing: a static release, or one that could not start.
fn bare_report(deploy_id: &str, status: InstanceStatus) -> InstanceReport {
    InstanceReport {
        deploy_id: deploy_id.to_owned(),
        slot: 0,
        status,
        pid: None,
        port: None,
        started_at: None,
        restarts: 0,
        last_exit_code: None,
        last_exit_at: None,
        upstream: None,
        netns: None,
        static_root: None,
        reason: None,
        process: None,
    }
}

/// Times an instance is started when bubblewrap fails making its sandbox.
const SANDBOX_ATTEMPTS: u32 = 4;

/// Whether an instance's output says its sandbox was never made: bubblewrap's own error, the
/// first thing it printed, before the app's command ran.
fn sandbox_failed(tail: &[String]) -> bool {
    tail.first().is_some_and(|line| line.starts_with("bwrap: "))
}

impl Runner {
    /// Stops every instance of `app`, runs `swap` while none runs, then starts the app's
    /// current deploy again (whatever `swap` did). Ok holds how many instances were stopped.
    pub(crate) async fn with_app_stopped<T>(
        self: &Arc<Self>,
        app: &str,
        swap: impl std::future::Future<Output = Result<T, tovuk_api_types::ApiError>>,
    ) -> Result<(T, usize), tovuk_api_types::ApiError> {
        while !self.claim_app(app) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some((_, window)) = self.windows.lock().ok().and_then(|mut windows| windows.remove(app)) {
            window.cancel();
        }
        let instances = self.serving.lock().ok().and_then(|mut serving| serving.remove(app)).unwrap_or_default();
        let stopped = instances.len();
        // The router answers 503 with Retry-After while the app is down, not a refused connection.
        for instance in &instances {
            let down = report(instance, InstanceStatus::Restarting, &Life::Starting);
            let _ = self.client.report_instance(&down).await;
        }
        let mut stopping = tokio::task::JoinSet::new();
        for instance in instances {
            stopping.spawn(async move { instance.stop().await });
        }
        while stopping.join_next().await.is_some() {}
        let swapped = swap.await;
        let release = match self.client.current_releases().await {
            Ok(current) => current.releases.into_iter().find(|release| release.app == app),
            Err(error) => {
                tracing::warn!(%error, %app, "cannot read the app's current deploy; the next reconcile starts it");
                None
            }
        };
        match release {
            Some(release) => self.restore(release).await,
            None => self.release_app(app),
        }
        swapped.map(|value| (value, stopped))
    }

    /// Takes a claimed deploy live, or fails it and leaves the current one serving.
    async fn take_live(self: &Arc<Self>, release: ClaimedRelease) {
        // A release of this app still proving itself has proved enough: this one replaces it.
        if let Some((_, window)) = self.windows.lock().ok().and_then(|mut windows| windows.remove(&release.app)) {
            window.cancel();
        }
        // Reconciling waits while the app changes hands; the claim is one per app at a time.
        while !self.claim_app(&release.app) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outcome = self.start_serving(&release, false).await;
        self.release_app(&release.app);
        match outcome {
            Ok(()) => tracing::info!(app = %release.app, deploy_id = %release.deploy_id, "running"),
            Err(failure) => {
                tracing::warn!(app = %release.app, deploy_id = %release.deploy_id, reason = %failure.reason, why = failure.first_actionable_line.as_deref().unwrap_or_default(), "deploy failed to go live");
                if let Err(error) = self.client.release_failed(&release.deploy_id, &failure).await {
                    tracing::warn!(%error, "cannot report the failed release");
                }
            }
        }
    }

    /// Prepares, starts and health-gates a release, then routes the app to it; what served
    /// before is let go once the release has proved itself ([`window`]). `restoring`
    /// brings back an app that was already live after a platform restart: it adopts the
    /// instance that outlived the restart when there is one, and starts one otherwise.
    async fn start_serving(self: &Arc<Self>, release: &ClaimedRelease, restoring: bool) -> Result<(), DeployFailure> {
        let prepared = release::prepare(&self.config.layout, release, restoring).await?;
        let manifest = &prepared.manifest;
        if manifest.kind() == AppKind::Static {
            let root = instance::static_root(&prepared.dir, manifest.static_root().unwrap_or("."));
            let (pruned_root, serve_hidden) = (root.clone(), manifest.static_serve_hidden().to_vec());
            let pruned = tokio::task::spawn_blocking(move || release::remove_hidden(&pruned_root, &serve_hidden)).await;
            if !matches!(pruned, Ok(Ok(_))) {
                return Err(release::failure(
                    FailureReason::ReleaseFailed,
                    "the static files could not be prepared (hidden files removed)".into(),
                ));
            }
            let instance_report =
                InstanceReport { static_root: Some(root), ..bare_report(&release.deploy_id, InstanceStatus::Healthy) };
            let route_version = if restoring {
                self.report_restored(&instance_report).await;
                None
            } else {
                match self.go_live(release, &instance_report).await {
                    Some(route_version) => Some(route_version),
                    None => return Ok(()),
                }
            };
            let previous_static = self
                .serving_static
                .lock()
                .ok()
                .and_then(|mut statics| statics.insert(release.app.clone(), release.deploy_id.clone()));
            let previous = self.serving.lock().ok().and_then(|mut serving| serving.remove(&release.app));
            if !restoring {
                // Files cannot crash: the release has nothing to prove.
                let previous = window::Previous::of(previous, previous_static);
                self.settle(release, previous, route_version).await;
            } else if let Some(previous) = previous {
                self.retire(previous, None).await;
            }
            return Ok(());
        }
        let Environment { env, masker, endpoints, hosts } = self.environment(release).await?;
        self.config.resources.configure_queues(self, &release.app, &release.resources, manifest);
        let starter = Starter { release, prepared: &prepared, env, masker, endpoints, hosts, restoring };
        if !restoring && let Some(phase) = manifest.release() {
            self.release_phase(&starter, phase).await?;
        }
        let first = self.start_instance(&starter, 0, Role::Web).await?;
        let healthy = report(&first, InstanceStatus::Healthy, &first.life());
        // Going live switches the app's route to this instance, in the control plane; while
        // its other instances start, the deploy it replaces serves in their stead.
        let route_version = if restoring {
            self.report_restored(&healthy).await;
            None
        } else {
            match self.go_live(release, &healthy).await {
                Some(route_version) => Some(route_version),
                None => {
                    first.stop().await;
                    return Ok(());
                }
            }
        };
        let previous_static = self.serving_static.lock().ok().and_then(|mut statics| statics.remove(&release.app));
        let previous =
            self.serving.lock().ok().and_then(|mut serving| serving.insert(release.app.clone(), vec![first.clone()]));
        self.watch(first.clone());
        let previous = window::Previous::of(previous, previous_static);
        let health = manifest.health();
        let min_healthy = health.map_or(tovuk_manifest::DEFAULT_MIN_HEALTHY, |health| health.min_healthy);
        let mut proof = window::Proof {
            release: release.clone(),
            instances: vec![first],
            previous: previous.unwrap_or(window::Previous::Processes(Vec::new())),
            health: health.cloned(),
            min_healthy,
            route_version: route_version.unwrap_or(0),
        };
        // The rest, one at a time, each health-gated: each joins the route as it passes,
        // and one instance of the replaced deploy leaves it. Then its background processes:
        // the replaced deploy's run until it is let go, so a worker never has a gap.
        let web = (1..manifest.limits().instances_or_default()).map(|slot| (slot, Role::Web));
        let processes = manifest.processes().iter().enumerate().flat_map(|(index, process)| {
            (0..process.instances)
                .map(move |ordinal| (instance::process_slot(index, ordinal), Role::Process { process, ordinal }))
        });
        let rest: Vec<(u32, Role<'_>)> = web.chain(processes).collect();
        for (slot, role) in rest {
            match self.start_instance(&starter, slot, role).await {
                Ok(instance) => {
                    if let Ok(mut serving) = self.serving.lock()
                        && let Some(serving) = serving.get_mut(&release.app)
                    {
                        serving.push(instance.clone());
                    }
                    let healthy = report(&instance, InstanceStatus::Healthy, &instance.life());
                    if let Err(error) = self.client.report_instance(&healthy).await {
                        tracing::warn!(%error, app = %release.app, slot, "cannot report the instance");
                    }
                    self.watch(instance.clone());
                    proof.instances.push(instance);
                }
                Err(failure) if restoring => {
                    let reason = failure.first_actionable_line.unwrap_or_else(|| failure.reason.to_string());
                    tracing::error!(app = %release.app, slot, %reason, "cannot start one of the app's instances");
                    let failed = InstanceReport {
                        slot,
                        reason: Some(reason),
                        ..bare_report(&release.deploy_id, InstanceStatus::Failed)
                    };
                    let _ = self.client.report_instance(&failed).await;
                }
                // The release went live with its first instance: failing now sends the
                // traffic back to what served before.
                Err(failure) => {
                    if let Ok(mut serving) = self.serving.lock() {
                        serving.remove(&release.app);
                    }
                    self.roll_back(proof, failure).await;
                    return Ok(());
                }
            }
        }
        let previous = match proof.previous {
            window::Previous::Processes(previous) if previous.is_empty() => None,
            previous => Some(previous),
        };
        match (route_version, previous) {
            (None, previous) => {
                if let Some(window::Previous::Processes(previous)) = previous {
                    self.retire(previous, None).await;
                }
            }
            (Some(route_version), Some(previous)) if !min_healthy.is_zero() => {
                self.prove(window::Proof { previous, route_version, ..proof });
            }
            (Some(route_version), previous) => self.settle(release, previous, Some(route_version)).await,
        }
        Ok(())
    }

    /// What a release's processes run with: its config and its resources' variables (what
    /// the resources need made first), and what hides their secret values in output.
    async fn environment(&self, release: &ClaimedRelease) -> Result<Environment, DeployFailure> {
        let env =
            tovuk_secrets::open_env(&self.config.secrets_key, &release.app_id, &release.env).map_err(|error| {
                release::failure(
                    FailureReason::ConfigUnreadable,
                    format!("{error}; then: tovuk app restart {}", release.app),
                )
            })?;
        let on_host_network = self.config.network.give(tovuk_sandbox::Network::Own) == tovuk_sandbox::Network::Host;
        let provided = self
            .config
            .resources
            .provide(&release.app, &release.app_id, &release.resources, &self.config.secrets_key, &env, on_host_network)
            .await?;
        // Config values and resource credentials are hidden in what the app prints; a
        // resource's path, bucket or endpoint is not a secret.
        let masker = Arc::new(tovuk_secrets::Masker::new(
            env.iter().map(|(_, value)| value.as_str()).chain(provided.secrets.iter().map(|secret| secret.as_str())),
        ));
        let mut env = env;
        // A resource's variables win over config of the same name: the binding is explicit.
        env.retain(|(name, _)| !provided.env.iter().any(|(set, _)| set == name));
        env.extend(provided.env);
        Ok(Environment {
            env: Arc::new(env),
            masker,
            endpoints: provided.needs_endpoints,
            hosts: Arc::new(provided.hosts),
        })
    }

    /// Starts one instance of a release and waits until it passes its health gate.
    /// Restoring, it adopts the instance of that slot that outlived the restart when it is
    /// alive and still answers. Err says why it never became healthy.
    async fn start_instance(
        &self,
        starter: &Starter<'_>,
        slot: u32,
        role: Role<'_>,
    ) -> Result<Instance, DeployFailure> {
        let (release, manifest) = (starter.release, &starter.prepared.manifest);
        let (command, health) = match role {
            Role::Web => (manifest.run_command().unwrap_or_default(), manifest.health()),
            Role::Process { process, .. } => (process.command.as_str(), None),
        };
        self.prepare_volume(&release.app, manifest).await?;
        let instance_dir = self.config.layout.instance_dir(&release.deploy_id, slot);
        // Adopted only when alive, the very process started for this deploy, and running
        // a release that still matches its artifact; one that does not is stopped.
        let mut adopted = if starter.restoring {
            process::Record::read(&instance_dir).filter(|record| record.app == release.app && record.is_alive())
        } else {
            None
        };
        if adopted.is_some() && !starter.prepared.reused {
            tracing::warn!(app = %release.app, slot, "the instance ran from a release that no longer matched its artifact: starting a new one");
            process::kill_recorded(&instance_dir).await;
            adopted = None;
        }
        let mut sandbox_attempts = 1;
        loop {
            let port = match &adopted {
                Some(record) => record.port,
                None => instance::free_port().map_err(|error| {
                    release::failure(FailureReason::ReleaseFailed, format!("no free port: {error}"))
                })?,
            };
            let mut launch = self.launch(starter, slot, command, port);
            if let Role::Process { process, ordinal } = role {
                launch.kind = AppKind::Worker;
                launch.health = None;
                launch.process = Some((process.name.clone(), ordinal));
            }
            let was_adopted = adopted.is_some();
            let instance = instance::start(launch, &self.shutdown, adopted.take()).map_err(|error| {
                release::failure(FailureReason::ReleaseFailed, format!("cannot start the app: {error}"))
            })?;
            let gate = match health {
                Some(health) => instance::wait_healthy(&instance, &health.path, health.timeout, health.interval).await,
                None => worker_settles(&instance).await,
            };
            match gate {
                Ok(()) => {
                    instance.pass_gate();
                    return Ok(instance);
                }
                // An adopted instance that no longer answers is replaced by a new one.
                Err(why) if was_adopted => {
                    tracing::warn!(app = %release.app, slot, %why, "the instance that outlived the restart does not answer; starting a new one");
                    instance.stop().await;
                }
                // bubblewrap could not make the sandbox (its first line says so, before the
                // app ran): under load the kernel refuses a namespace's set-up for a moment.
                Err(why) if sandbox_attempts < SANDBOX_ATTEMPTS && sandbox_failed(&instance.tail()) => {
                    tracing::warn!(app = %release.app, slot, %why, attempt = sandbox_attempts, "the sandbox did not start; starting it again");
                    instance.stop().await;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(sandbox_attempts))).await;
                    sandbox_attempts += 1;
                }
                Err(why) => {
                    let tail = instance.tail();
                    instance.stop().await;
                    let mut failure = release::failure(FailureReason::HealthCheckFailed, with_last_output(why, &tail));
                    failure.exit_code = match instance.life() {
                        Life::ExitedEarly { code } => code.map(i64::from),
                        _ => None,
                    };
                    return Err(failure);
                }
            }
        }
    }

    /// How slot `slot` of a release runs `command` on `port`.
    fn launch(&self, starter: &Starter<'_>, slot: u32, command: &str, port: u16) -> Launch {
        let (release, manifest) = (starter.release, &starter.prepared.manifest);
        Launch {
            app: release.app.clone(),
            kind: manifest.kind(),
            deploy_id: release.deploy_id.clone(),
            slot,
            process: None,
            cron: None,
            release_dir: starter.prepared.dir.clone(),
            volume_dir: self.config.layout.volume_dir(&release.app),
            instance_dir: self.config.layout.instance_dir(&release.deploy_id, slot),
            command: command.to_owned(),
            port,
            stop_grace: manifest.stop_grace(),
            drain_timeout: manifest.drain_timeout(),
            health: manifest.health().cloned(),
            host: release.host.clone(),
            limits: instance::limits_of(manifest),
            memory_mb: manifest.limits().memory_mb_or_default(),
            cgroups: self.config.cgroups.clone(),
            network: self.config.network.give(
                if manifest.has_capability(tovuk_manifest::Capability::OutboundNetwork) {
                    tovuk_sandbox::Network::Outbound
                } else {
                    tovuk_sandbox::Network::Own
                },
            ),
            logs: self.logs.clone(),
            masker: starter.masker.clone(),
            env: starter.env.clone(),
            resources: starter.endpoints.then(|| self.config.resources.clone()),
            hosts: starter.hosts.clone(),
        }
    }

    /// Runs `[release] command` once, in the app's sandbox with its config, resources and
    /// `/data`, before any instance of the release starts: Err (it failed, or outlived its
    /// timeout and was stopped) fails the deploy and nothing of the release starts.
    async fn release_phase(&self, starter: &Starter<'_>, phase: &tovuk_manifest::Release) -> Result<(), DeployFailure> {
        let (release, manifest) = (starter.release, &starter.prepared.manifest);
        self.prepare_volume(&release.app, manifest).await?;
        let port = instance::free_port()
            .map_err(|error| release::failure(FailureReason::ReleaseFailed, format!("no free port: {error}")))?;
        let mut launch = self.launch(starter, instance::RELEASE_SLOT, &phase.command, port);
        launch.health = None;
        tracing::info!(app = %release.app, deploy_id = %release.deploy_id, command = %phase.command, "release phase");
        let process = instance::start(launch, &self.shutdown, None).map_err(|error| {
            release::failure(FailureReason::ReleaseFailed, format!("cannot start the release command: {error}"))
        })?;
        let mut life = process.watch();
        let ended = tokio::time::timeout(phase.timeout, life.wait_for(|life| matches!(life, Life::ExitedEarly { .. })))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|life| life.clone());
        let tail = process.tail();
        let failed = |why: String, code: Option<i32>| {
            let mut failure = release::failure(FailureReason::ReleaseFailed, with_last_output(why, &tail));
            failure.exit_code = code.map(i64::from);
            failure
        };
        match ended {
            Some(Life::ExitedEarly { code: Some(0) }) => Ok(()),
            Some(Life::ExitedEarly { code }) => {
                let code_text = code.map_or_else(|| "an unknown code".to_owned(), |code| format!("code {code}"));
                Err(failed(format!("the release command `{}` exited with {code_text}", phase.command), code))
            }
            _ => {
                process.stop().await;
                let limit = tovuk_manifest::format_duration(phase.timeout);
                Err(failed(
                    format!(
                        "the release command `{}` did not finish within {limit} ([release] timeout): stopped",
                        phase.command
                    ),
                    None,
                ))
            }
        }
    }

    /// Removes the app's unpacked releases beyond the newest [`RELEASES_UNPACKED`] (fewer when
    /// `[retention] releases` is lower), never one that serves (`settled`, or an instance or
    /// static root of it): each deploy and config release is a full copy. A rollback to a
    /// removed one unpacks its artifact again.
    async fn prune_releases(&self, app: &str, settled: &str) {
        let mut keep: Vec<String> = vec![settled.to_owned()];
        if let Ok(serving) = self.serving.lock() {
            keep.extend(serving.get(app).into_iter().flatten().map(|instance| instance.launch.deploy_id.clone()));
        }
        if let Ok(statics) = self.serving_static.lock() {
            keep.extend(statics.get(app).cloned());
        }
        let dir = self.config.layout.release_dir(app, "");
        let kept = RELEASES_UNPACKED.min(self.config.releases_kept).max(1);
        let removed = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
            let mut releases: Vec<String> =
                entries.flatten().filter_map(|entry| entry.file_name().into_string().ok()).collect();
            // Deploy ids sort by time: the newest first.
            releases.sort_unstable_by(|a, b| b.cmp(a));
            let mut removed = 0;
            for name in releases.iter().skip(kept).filter(|name| !keep.contains(name)) {
                if std::fs::remove_dir_all(dir.join(name)).is_ok() {
                    removed += 1;
                }
            }
            removed
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(app, removed, "old releases removed");
        }
    }

    /// Makes the app's `/data` a volume of `[limits] data_mb` (or grows it to that).
    async fn prepare_volume(&self, app: &str, manifest: &tovuk_manifest::Manifest) -> Result<(), DeployFailure> {
        let volumes = self.config.volumes.clone();
        let (image, dir) = (self.config.layout.volume_image(app), self.config.layout.volume_dir(app));
        let bytes = u64::from(manifest.limits().data_mb_or_default()) << 20;
        let sized = tokio::task::spawn_blocking(move || volumes.ensure(&image, &dir, bytes)).await;
        match sized {
            Ok(Ok(tovuk_sandbox::volume::Sized::Limited(size))) if size != bytes => {
                let why = if size > bytes {
                    "a volume never shrinks".to_owned()
                } else {
                    self.config.volumes.cannot_grow.clone().unwrap_or_else(|| "it could not grow".to_owned())
                };
                let said = format!(
                    "[tovuk] /data stays {} MiB, not the {} MiB of [limits] data_mb: {why}",
                    size >> 20,
                    bytes >> 20
                );
                tracing::warn!(app, %said, "the /data volume keeps its size");
                self.say(app, &said);
                Ok(())
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(release::failure(
                FailureReason::ReleaseFailed,
                format!("the app's /data volume cannot be prepared: {error}"),
            )),
            Err(error) => {
                Err(release::failure(FailureReason::ReleaseFailed, format!("preparing /data stopped: {error}")))
            }
        }
    }

    /// A line of the platform's own in the app's log.
    fn say(&self, app: &str, line: &str) {
        let _ = self.logs.try_send(tovuk_api_types::AppLogLine {
            seq: 0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            app: app.to_owned(),
            deploy_id: String::new(),
            instance: "tovuk".to_owned(),
            stream: tovuk_api_types::LogStream::Platform,
            line: line.to_owned(),
        });
    }

    /// Reports the release live, which routes the app to it. Returns the route table
    /// version that does; `None` when it did not go live (the previous one keeps serving).
    async fn go_live(&self, release: &ClaimedRelease, instance: &InstanceReport) -> Option<u64> {
        match self.client.release_live(&release.deploy_id, instance).await {
            Ok(outcome) if outcome.live => {
                if let Some(superseded) = outcome.superseded {
                    tracing::info!(app = %release.app, superseded, "previous deploy superseded");
                }
                Some(outcome.route_version)
            }
            Ok(_) => {
                tracing::warn!(app = %release.app, deploy_id = %release.deploy_id, "the deploy ended before going live; stopping its instance");
                None
            }
            Err(error) => {
                tracing::error!(%error, app = %release.app, deploy_id = %release.deploy_id, "cannot report the release live; the previous instance keeps serving");
                None
            }
        }
    }

    /// An instance started again after a platform restart: the control plane routes to it.
    async fn report_restored(&self, instance: &InstanceReport) {
        if let Err(error) = self.client.report_instance(instance).await {
            tracing::warn!(%error, "cannot report the restored instance");
        }
    }

    /// Lets a replaced deploy's instances finish their in-flight requests, then stops them:
    /// first the routers must serve by the table that no longer sends them requests
    /// (`route_version`). They drain together, then stop together.
    pub(crate) async fn retire(&self, previous: Vec<Instance>, route_version: Option<u64>) {
        self.wait_routed(route_version).await;
        let drain = previous.iter().map(|instance| instance.launch.drain_timeout).max().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + drain;
        while previous.iter().any(|instance| self.traffic.in_flight(instance.addr()) > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Each stop waits out its own grace; dropping the set (a shutdown) leaves the rest.
        let mut stopping = tokio::task::JoinSet::new();
        for instance in previous {
            stopping.spawn(async move {
                instance.stop().await;
                instance
            });
        }
        while let Some(stopped) = stopping.join_next().await {
            if let Ok(instance) = stopped {
                let _ = self.client.report_instance(&report(&instance, InstanceStatus::Stopped, &Life::Stopped)).await;
            }
        }
    }

    /// Waits (a while at most) until the routers serve by `route_version`.
    async fn wait_routed(&self, route_version: Option<u64>) {
        let switch_deadline = tokio::time::Instant::now() + ROUTE_SWITCH_WAIT;
        while route_version.is_some_and(|version| self.traffic.routed_version() < version)
            && tokio::time::Instant::now() < switch_deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Measures the serving instances' CPU and memory every few seconds and reports it as usage.
    async fn measure_usage(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut sampler = usage::Sampler::default();
        let mut tick = tokio::time::interval(usage::SAMPLE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let instances: Vec<usage::Measured> = self
                .serving
                .lock()
                .map(|serving| {
                    serving
                        .iter()
                        .flat_map(|(app, instances)| instances.iter().map(move |instance| (app, instance)))
                        .filter_map(|(app, instance)| match instance.life() {
                            Life::Running { pid, .. } => {
                                Some(usage::Measured { app: app.clone(), pid, group: instance.group() })
                            }
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            // It reads /proc: off the async threads, handing the sampler back.
            let sampled = tokio::task::spawn_blocking(move || {
                let batch = sampler.sample(&instances, usage::SAMPLE_EVERY);
                (sampler, batch)
            })
            .await;
            let Ok((returned, batch)) = sampled else { return Ok(()) };
            sampler = returned;
            if !batch.entries.is_empty()
                && let Err(error) = self.client.send_usage(&batch).await
            {
                tracing::warn!(%error, "cannot report instance usage");
            }
        }
    }

    /// Follows an instance's life while it serves: a crash takes its route down (503) until
    /// the restarted process answers its health path again; health is probed for its
    /// whole life, and an instance that stops answering is started again. The control
    /// plane hears of each change and routes by it.
    fn watch(self: &Arc<Self>, instance: Instance) {
        let runner = self.clone();
        let health = instance.launch.health.clone();
        let watching = instance.new_watcher();
        self.shutdown.spawn("instance-watch", async move {
            let mut life = instance.watch();
            let mut failed_probes: u32 = 0;
            // False from a restart until the new process answers its health path.
            let mut answering = true;
            loop {
                let interval = health.as_ref().map_or(Duration::from_secs(3600), |health| health.interval);
                tokio::select! {
                    () = watching.cancelled() => return Ok(()),
                    () = runner.shutdown.wait() => return Ok(()),
                    changed = life.changed() => {
                        if changed.is_err() || !runner.is_serving(&instance) {
                            return Ok(());
                        }
                    }
                    // On the interval's shared ticks: every app's probes wake the runner once.
                    () = tokio::time::sleep_until(next_tick(interval)), if answering && health.is_some() => {
                        let Some(health) = &health else { continue };
                        match instance::probe(&instance, &health.path).await {
                            Ok(()) => failed_probes = 0,
                            Err(why) => {
                                failed_probes += 1;
                                tracing::warn!(app = %instance.launch.app, %why, failed_probes, "health probe failed");
                                if failed_probes >= LIVENESS_FAILURES {
                                    tracing::error!(app = %instance.launch.app, %why, "the instance stopped answering its health path; starting it again");
                                    failed_probes = 0;
                                    answering = false;
                                    instance.restart();
                                }
                            }
                        }
                        continue;
                    }
                }
                let now = life.borrow().clone();
                let status = match &now {
                    Life::Stopped | Life::ExitedEarly { .. } => return Ok(()),
                    Life::Restarting { .. } => InstanceStatus::Restarting,
                    Life::CrashLooping { .. } => InstanceStatus::Crashing,
                    Life::Starting => continue,
                    // Started again: traffic comes back once its health path answers.
                    Life::Running { .. } => {
                        answering = false;
                        // The exit may have come and gone between two looks: the route goes
                        // down now in any case, until the new process answers.
                        let starting = report(&instance, InstanceStatus::Restarting, &now);
                        if let Err(error) = runner.client.report_instance(&starting).await {
                            tracing::warn!(%error, app = %instance.launch.app, "cannot report the instance");
                        }
                        let gate = async {
                            match &health {
                                Some(health) => {
                                    instance::wait_healthy(&instance, &health.path, health.timeout, health.interval).await
                                }
                                None => worker_settles(&instance).await,
                            }
                        };
                        let gate = tokio::select! {
                            gate = gate => gate,
                            () = watching.cancelled() => return Ok(()),
                            () = runner.shutdown.wait() => return Ok(()),
                        };
                        if let Err(why) = gate {
                            tracing::error!(app = %instance.launch.app, %why, "the restarted instance is not healthy; starting it again");
                            instance.restart();
                            continue;
                        }
                        answering = true;
                        failed_probes = 0;
                        InstanceStatus::Healthy
                    }
                };
                let now = instance.life();
                if let Err(error) = runner.client.report_instance(&report(&instance, status, &now)).await {
                    tracing::warn!(%error, app = %instance.launch.app, %status, "cannot report the instance");
                }
            }
        });
    }

    /// Whether `instance` is one of those serving its app here.
    fn is_serving(&self, instance: &Instance) -> bool {
        self.serving.lock().is_ok_and(|serving| {
            serving.get(&instance.launch.app).is_some_and(|serving| {
                serving.iter().any(|serving| {
                    serving.launch.deploy_id == instance.launch.deploy_id && serving.launch.slot == instance.launch.slot
                })
            })
        })
    }
}

/// The next multiple of `every` since the runner's first tick: periodic work of many
/// instances shares its wake-ups.
pub(crate) fn next_tick(every: Duration) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let every_ms = every.as_millis().max(1);
    let since = tokio::time::Instant::now().duration_since(epoch).as_millis();
    let ticks = since / every_ms + 1;
    epoch + Duration::from_millis(u64::try_from(ticks * every_ms).unwrap_or(u64::MAX))
}

/// A failure line with the last thing the app printed, which usually says why.
/// `why`, with the line of the app's last output that explains it (the first that names an
/// error, as for builds), and a hint for exit code 127.
fn with_last_output(why: String, tail: &[String]) -> String {
    let mut finder = tovuk_api_types::ActionableLine::default();
    for line in tail.iter().filter(|line| !line.starts_with("[tovuk]")) {
        finder.observe(line);
    }
    let why = match finder.best() {
        Some(line) => format!("{why}; output: {line}"),
        None => why,
    };
    if why.contains("code 127") {
        format!(
            "{why} (127: the command or the interpreter on its #! line does not exist in the sandbox; \
             it sees /usr and what the build put in the release)"
        )
    } else {
        why
    }
}

/// A worker without a health path is live once it has stayed up for a moment.
async fn worker_settles(instance: &Instance) -> Result<(), String> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    match instance.life() {
        Life::ExitedEarly { code } => Err(format!(
            "the process exited with code {} right after starting",
            code.map_or_else(|| "unknown".to_owned(), |code| code.to_string())
        )),
        _ => Ok(()),
    }
}

/// Sends app log lines to the control plane in batches, a few times a second, until
/// `shutdown`: the runner's instances' output, and the router's access log.
pub async fn ship_logs(
    client: Client,
    mut lines: tokio::sync::mpsc::Receiver<tovuk_api_types::AppLogLine>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut batch = Vec::new();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = shutdown.wait() => None,
        };
        let Some(line) = line else { break };
        batch.push(line);
        // Gather what arrives in the next moment into the same request.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while batch.len() < 500 {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        let sent = tovuk_api_types::AppLogBatch { lines: std::mem::take(&mut batch) };
        if let Err(error) = client.send_app_logs(&sent).await {
            tracing::warn!(%error, lines = sent.lines.len(), "cannot ship app logs");
        }
    }
    Ok(())
}
