//! One running app instance: its sandboxed process, its output, and the supervisor that
//! restarts it when it crashes. The process outlives the platform: a platform restart
//! adopts it (see [`crate::process`]) instead of starting it again.

use crate::output::Output;
use crate::process::{Process, Record};
use crate::signal;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tovuk_daemon::Shutdown;
use tovuk_sandbox::SandboxSpec;

/// Lines of output kept to explain a failure.
const TAIL_LINES: usize = 40;
/// After this many crashes in a row, each within a minute of starting, the app is crash-looping.
const CRASH_LOOP: u32 = 5;

/// What the supervisor says about the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    Starting,
    Running {
        pid: u32,
        started_at: String,
        /// How many times it was started again after an exit.
        restarts: u32,
    },
    /// It exited before the health gate passed: the deploy fails, nothing restarts it.
    /// Final, like `Stopped`. The code is unknown for a process adopted after a restart.
    ExitedEarly {
        code: Option<i32>,
    },
    Restarting {
        restarts: u32,
        last_exit: Option<i32>,
    },
    CrashLooping {
        restarts: u32,
        last_exit: Option<i32>,
    },
    Stopped,
}

impl Life {
    pub fn restarts(&self) -> u32 {
        match self {
            Life::Running { restarts, .. }
            | Life::Restarting { restarts, .. }
            | Life::CrashLooping { restarts, .. } => *restarts,
            _ => 0,
        }
    }
}

/// How to start an instance.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub app: String,
    /// Web instances are routed to; workers are not.
    pub kind: tovuk_manifest::AppKind,
    pub deploy_id: String,
    /// Which of the deploy's `[limits] instances` this is (0, 1, ...), or of its
    /// `[[processes]]` ([`process_slot`]).
    pub slot: u32,
    /// For an instance of a `[[processes]]` entry: its name and which of its instances.
    pub process: Option<(String, u32)>,
    /// For a run of a cron resource: its binding. Such a run dies with the platform.
    pub cron: Option<String>,
    pub release_dir: PathBuf,
    pub volume_dir: PathBuf,
    /// The process record and output files (`DataLayout::instance_dir`).
    pub instance_dir: PathBuf,
    pub command: String,
    pub port: u16,
    /// Between SIGTERM and SIGKILL when the instance stops (`[run] stop_grace`).
    pub stop_grace: Duration,
    /// How long it may take to finish its requests once replaced (`[run] drain_timeout`).
    pub drain_timeout: Duration,
    /// `[health]`: probed to gate it, and for its whole life.
    pub health: Option<tovuk_manifest::Health>,
    /// Sent as `Host` by health probes (the app's service hostname); the address when empty.
    pub host: String,
    /// Its memory, CPU and pids limits (`[limits]` and the plan's defaults).
    pub limits: tovuk_sandbox::cgroup::Limits,
    pub memory_mb: u32,
    pub cgroups: Arc<tovuk_sandbox::cgroup::Cgroups>,
    /// Its network: its own namespace (with a route out for `outbound-network`) where
    /// this machine can give one.
    pub network: tovuk_sandbox::Network,
    /// Where the instance's output lines go (to the app's log).
    pub logs: tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>,
    /// The app's config, opened: it reaches the process's environment and nothing else.
    pub env: Arc<tovuk_secrets::OpenedEnv>,
    /// Hides config values in what the instance prints, before a line is kept anywhere.
    pub masker: Arc<tovuk_secrets::Masker>,
    /// Serves its KV and object storage inside its network, when it has those resources.
    pub resources: Option<Arc<crate::ResourceHost>>,
    /// Host names its hosts file points at its loopback (the services it calls).
    pub hosts: Arc<Vec<String>>,
}

/// A handle on a supervised instance.
#[derive(Clone)]
pub(crate) struct Instance {
    pub launch: Launch,
    life: watch::Receiver<Life>,
    /// Passed once the instance answered its health path: crashes restart it from then on.
    gated: Arc<AtomicBool>,
    stop: CancellationToken,
    /// Ends the running process so the supervisor starts it again (it stopped answering).
    kick: Arc<Notify>,
    /// Ends the task that watches the instance's health, when a new one takes over.
    watcher: Arc<Mutex<CancellationToken>>,
    /// Cancelled once its output is read to the end (and its directory removed).
    output_done: CancellationToken,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// The network namespace of the running process (each run has its own); `None`: the host's.
    netns: Arc<Mutex<Option<PathBuf>>>,
    /// Ends the resource endpoints served inside the running process's network.
    endpoints: Arc<Mutex<Option<CancellationToken>>>,
}

impl Instance {
    /// Where the router and the probes reach the running process's network: found (once)
    /// when the sandbox has made it. `None` for an instance on the host's network, and for
    /// one whose namespace is not made yet.
    pub fn netns(&self) -> Option<PathBuf> {
        if let Some(netns) = self.netns.lock().ok().and_then(|netns| netns.clone()) {
            return Some(netns);
        }
        let Life::Running { pid, .. } = self.life() else { return None };
        let found = tovuk_sandbox::network::namespace_of(pid);
        if found.is_some() {
            self.set_netns(found.clone());
        }
        found
    }

    /// Closes the resource endpoints of a process that ended (they hold its namespace).
    fn end_endpoints(&self) {
        if let Some(token) = self.endpoints.lock().ok().and_then(|mut endpoints| endpoints.take()) {
            token.cancel();
        }
    }

    fn set_endpoints(&self, token: CancellationToken) {
        if let Ok(mut endpoints) = self.endpoints.lock()
            && let Some(before) = endpoints.replace(token)
        {
            before.cancel();
        }
    }

    /// Serves the resource endpoints in the network of an adopted process (the ones it had
    /// ended with the platform that made them).
    async fn serve_endpoints_of(&self, pid: u32) {
        let Some(host) = &self.launch.resources else { return };
        let Some(netns) = tovuk_sandbox::network::namespace_of(pid) else { return };
        let token = CancellationToken::new();
        match host.serve_in(&netns, &self.launch.app, token.clone()).await {
            Ok(()) => self.set_endpoints(token),
            Err(error) => {
                tracing::warn!(app = %self.launch.app, %error, "cannot serve the app's resources in its network")
            }
        }
    }

    fn set_netns(&self, netns: Option<PathBuf>) {
        if let Ok(mut current) = self.netns.lock() {
            *current = netns;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.launch.port))
    }

    pub fn life(&self) -> Life {
        self.life.borrow().clone()
    }

    /// Follows the instance's life from now: `changed()` fires for the next change, not
    /// for ones from before this call.
    pub fn watch(&self) -> watch::Receiver<Life> {
        let mut life = self.life.clone();
        life.borrow_and_update();
        life
    }

    pub fn pass_gate(&self) {
        self.gated.store(true, Ordering::SeqCst);
    }

    /// The last lines the app printed, oldest first.
    /// Its control group, when this machine has them.
    pub fn group(&self) -> Option<tovuk_sandbox::cgroup::Group> {
        self.launch.cgroups.group(&group_name(&self.launch))
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.lock().map(|tail| tail.iter().cloned().collect()).unwrap_or_default()
    }

    /// A token for a new watcher of this instance; the one before it is cancelled.
    pub fn new_watcher(&self) -> CancellationToken {
        let token = self.stop.child_token();
        if let Ok(mut watcher) = self.watcher.lock() {
            std::mem::replace(&mut *watcher, token.clone()).cancel();
        }
        token
    }

    /// Stops the running process (SIGTERM, then SIGKILL after the grace); the supervisor
    /// starts it again like after a crash.
    pub fn restart(&self) {
        self.kick.notify_one();
    }

    /// Stops the instance for good: SIGTERM, then SIGKILL after the grace. Returns once it
    /// is gone and its last output read (its directory is then free for a new instance).
    pub async fn stop(&self) {
        self.stop.cancel();
        let mut life = self.life.clone();
        let _ = life.wait_for(|life| matches!(life, Life::Stopped | Life::ExitedEarly { .. })).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.output_done.cancelled()).await;
    }
}

/// A free loopback port for a new instance.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An instance's limits: `[limits]`, the plan's defaults where it is silent.
pub(crate) fn limits_of(manifest: &tovuk_manifest::Manifest) -> tovuk_sandbox::cgroup::Limits {
    let limits = manifest.limits();
    tovuk_sandbox::cgroup::Limits {
        memory_bytes: Some(u64::from(limits.memory_mb_or_default()) << 20),
        cpu_cores: Some(limits.cpu_cores_or_default()),
        pids: Some(tovuk_types::instance_limits::INSTANCE_PIDS),
    }
}

/// The control group of an instance: one per deploy and slot, kept across its restarts.
fn group_name(launch: &Launch) -> String {
    match launch.slot {
        0 => format!("app-{}", launch.deploy_id),
        slot => format!("app-{}.{slot}", launch.deploy_id),
    }
}

/// The slot a release's `[release] command` runs in: never an instance's (at most 100).
pub(crate) const RELEASE_SLOT: u32 = 9999;

/// The slot the run of the release's `index`th cron resource takes: above every other
/// (a binding runs one at a time).
pub(crate) fn cron_slot(index: usize) -> u32 {
    10_000 + u32::try_from(index).unwrap_or(u32::MAX / 2)
}

/// The slot of instance `ordinal` of the release's `index`th `[[processes]]` entry: above
/// every web instance's, below [`RELEASE_SLOT`].
pub(crate) fn process_slot(index: usize, ordinal: u32) -> u32 {
    1000 + u32::try_from(index).unwrap_or(u32::MAX / 200).saturating_mul(100) + ordinal
}

/// How an instance is named in logs: `<deploy>` for the first, `<deploy>.<slot>` after,
/// `<deploy>.release` for the release phase, `<deploy>.<process>[.<n>]` for a process,
/// `<deploy>.cron.<binding>` for a cron run.
pub(crate) fn instance_label(launch: &Launch) -> String {
    let deploy_id = &launch.deploy_id;
    if let Some(binding) = &launch.cron {
        return format!("{deploy_id}.cron.{binding}");
    }
    match (&launch.process, launch.slot) {
        (Some((name, 0)), _) => format!("{deploy_id}.{name}"),
        (Some((name, ordinal)), _) => format!("{deploy_id}.{name}.{ordinal}"),
        (None, 0) => deploy_id.to_owned(),
        (None, RELEASE_SLOT) => format!("{deploy_id}.release"),
        (None, slot) => format!("{deploy_id}.{slot}"),
    }
}

/// The hosts file of an instance that calls other apps, written next to its records; `None`
/// when it calls none (the host's is bound) or it cannot be written (said in the log).
fn hosts_file(launch: &Launch) -> Option<PathBuf> {
    if launch.hosts.is_empty() {
        return None;
    }
    let file = launch.instance_dir.join("hosts");
    let written = std::fs::create_dir_all(&launch.instance_dir)
        .and_then(|()| std::fs::write(&file, crate::bindings::hosts_file(&launch.hosts)));
    match written {
        Ok(()) => Some(file),
        Err(error) => {
            tracing::warn!(app = %launch.app, %error, "cannot write the instance's hosts file");
            None
        }
    }
}

fn spec(launch: &Launch, group: Option<tovuk_sandbox::cgroup::Group>) -> SandboxSpec {
    // How many worker processes servers such as gunicorn start (Heroku's convention): one per
    // core of the CPU limit, unless the app's config says.
    let web_concurrency = (!launch.env.iter().any(|(name, _)| name == "WEB_CONCURRENCY")).then(|| {
        let cores = launch.limits.cpu_cores.unwrap_or(1.0).ceil().max(1.0);
        ("WEB_CONCURRENCY".to_owned(), format!("{cores:.0}"))
    });
    SandboxSpec {
        // The release is read-only: an app writes to /data and /tmp, never to its own code.
        // It runs at the path it was built at, so virtualenvs, shebangs and rpaths that
        // baked that path in work unchanged; `/app` is the same tree, kept for habit.
        workspace: PathBuf::new(),
        workdir: tovuk_types::PROJECT_ROOT.into(),
        binds: vec![(launch.volume_dir.clone(), "/data".into())],
        ro_binds: [
            (launch.release_dir.clone(), tovuk_types::PROJECT_ROOT.to_owned()),
            (launch.release_dir.clone(), "/app".to_owned()),
        ]
        .into_iter()
        .chain(hosts_file(launch).map(|file| (file, "/etc/hosts".to_owned())))
        .collect(),
        env: launch
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().to_owned()))
            .chain([
                (
                    "PATH".into(),
                    format!(
                        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        tovuk_types::PROJECT_PATH
                    ),
                ),
                ("HOME".into(), "/data".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("PORT".into(), launch.port.to_string()),
                ("HOST".into(), "127.0.0.1".into()),
                ("TOVUK_APP".into(), launch.app.clone()),
                ("TOVUK_DEPLOY_ID".into(), launch.deploy_id.clone()),
                ("TOVUK_INSTANCE".into(), launch.slot.to_string()),
            ])
            .chain(web_concurrency)
            .collect(),
        // The app listens on its own loopback, where the router reaches it.
        network: launch.network.clone(),
        // A cron run is not adopted after a restart: it ends with the platform, recorded failed.
        outlives_platform: launch.cron.is_none(),
        cgroup: group,
        tmp_bytes: Some(u64::from(tovuk_types::instance_limits::tmp_mb(launch.memory_mb)) << 20),
        // Its resources' endpoints are served in its network before it runs.
        held: launch.resources.is_some(),
    }
}

/// Starts the instance under a supervisor, a task under `shutdown`. With `adopted`, the
/// process the record names (alive, and the one started for this deploy) is supervised
/// instead of a new one: it already passed its health gate. When the platform stops the
/// supervisor lets go of the process, which goes on serving.
pub(crate) fn start(launch: Launch, shutdown: &Shutdown, adopted: Option<Record>) -> std::io::Result<Instance> {
    std::fs::create_dir_all(&launch.volume_dir)?;
    let adopted = adopted.map(|record| (Process::adopt(&record), record));
    // An adopted process is running already: a health gate it passes before its supervisor
    // first runs must report it running (with its address), not starting.
    let first = match &adopted {
        Some((process, record)) => {
            Life::Running { pid: process.pid(), started_at: record.started_at.clone(), restarts: record.restarts }
        }
        None => Life::Starting,
    };
    let (life_tx, life_rx) = watch::channel(first);
    let instance = Instance {
        launch,
        life: life_rx,
        gated: Arc::new(AtomicBool::new(adopted.is_some())),
        stop: CancellationToken::new(),
        kick: Arc::default(),
        watcher: Arc::default(),
        output_done: CancellationToken::new(),
        tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
        netns: Arc::default(),
        endpoints: Arc::default(),
    };
    if let Some((process, _)) = &adopted {
        instance.set_netns(tovuk_sandbox::network::namespace_of(process.pid()));
    }
    let generation = Arc::new(AtomicU32::new(adopted.as_ref().map_or(0, |(_, record)| record.restarts) + 1));
    let output =
        Arc::new(Output::open(&instance.launch.instance_dir, adopted.is_none(), line_sink(&instance, &generation))?);
    let output_done = instance.output_done.clone();
    shutdown.spawn("instance-output", {
        let (output, shutdown) = (output.clone(), shutdown.clone());
        let mut life = instance.life.clone();
        let (over_tx, over) = watch::channel(false);
        async move {
            // The instance is over once its process is gone for good; a supervisor that let
            // go of it (the platform stops, the app runs on) drops `life` without that.
            let ended = async move {
                if life.wait_for(|life| matches!(life, Life::Stopped | Life::ExitedEarly { .. })).await.is_ok() {
                    let _ = over_tx.send(true);
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::join!(crate::output::follow(output, over, shutdown.clone()), async {
                tokio::select! {
                    () = ended => {}
                    () = shutdown.wait() => {}
                }
            });
            output_done.cancel();
            Ok(())
        }
    });
    let supervised = instance.clone();
    let supervisor_shutdown = shutdown.clone();
    shutdown.spawn("instance", async move {
        supervise(supervised, life_tx, adopted, output, generation, supervisor_shutdown).await;
        Ok(())
    });
    Ok(instance)
}

/// Where each line the instance prints goes: masked, into its tail and the app's log.
fn line_sink(
    instance: &Instance,
    generation: &Arc<AtomicU32>,
) -> Box<dyn Fn(tovuk_api_types::LogStream, String) + Send + Sync> {
    let (launch, tail, generation) = (instance.launch.clone(), instance.tail.clone(), generation.clone());
    let dropped = AtomicU64::new(0);
    Box::new(move |stream, line| {
        let line = match launch.masker.mask(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(masked) => masked,
        };
        push_tail(&tail, line.clone());
        let log = |line: String| tovuk_api_types::AppLogLine {
            seq: 0,
            at: now(),
            app: launch.app.clone(),
            deploy_id: launch.deploy_id.clone(),
            instance: format!("{}/{}", instance_label(&launch), generation.load(Ordering::SeqCst)),
            stream,
            line,
        };
        // A full channel means the platform is behind: drop the line rather than block the
        // app, and say how many went once lines pass again.
        let behind = dropped.swap(0, Ordering::Relaxed);
        if behind > 0 {
            let marker = format!("[tovuk: {behind} lines dropped: the platform's log was behind]");
            if launch.logs.try_send(log(marker)).is_err() {
                dropped.fetch_add(behind + 1, Ordering::Relaxed);
                return;
            }
        }
        if launch.logs.try_send(log(line)).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    })
}

/// Starts a new sandbox process writing to the instance's output files, and records it.
async fn spawn(instance: &Instance, output: &Output, restarts: u32) -> std::io::Result<(Process, String)> {
    let launch = &instance.launch;
    let (stdout, stderr) = output.files()?;
    let argv = tovuk_sandbox::app_argv(&launch.command);
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let group = launch.cgroups.create(&group_name(launch), &launch.limits)?;
    if let Some(group) = &group {
        // What a crashed run left in the group goes before the next run starts.
        if !group.pids().is_empty() {
            group.remove();
            launch.cgroups.create(&group_name(launch), &launch.limits)?;
        }
    }
    let spec = spec(launch, group);
    let mut command = tovuk_sandbox::command(&spec, &argv[0], &args);
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let started = match &launch.resources {
        Some(host) => {
            let token = CancellationToken::new();
            let (host, app, serving) = (host.clone(), launch.app.clone(), token.clone());
            let started = tovuk_sandbox::start_with(&spec, command, async move |netns| {
                host.serve_in(&netns, &app, serving).await
            })
            .await?;
            instance.set_endpoints(token);
            started
        }
        None => tovuk_sandbox::start(&spec, command).await?,
    };
    instance.set_netns(started.netns);
    let child = started.child;
    let pid = child.id().unwrap_or(0);
    let started_at = now();
    let record = Record {
        app: launch.app.clone(),
        deploy_id: launch.deploy_id.clone(),
        pid,
        start_ticks: crate::process::start_ticks(pid).unwrap_or(0),
        port: launch.port,
        started_at: started_at.clone(),
        restarts,
        stop_grace_ms: u64::try_from(launch.stop_grace.as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(error) = record.write(&launch.instance_dir) {
        // It runs, but a platform restart could not adopt it: it would be started again.
        tracing::warn!(%error, app = %launch.app, "cannot record the instance's process");
    }
    Ok((Process::Child(child), started_at))
}

/// SIGTERM to everything in the sandbox, SIGKILL after the grace; the exit code when known.
async fn stop_process(process: &mut Process, grace: Duration) -> Option<i32> {
    signal::terminate(process.pid());
    match tokio::time::timeout(grace, process.wait()).await {
        Ok(code) => code,
        Err(_) => {
            process.kill().await;
            Some(137)
        }
    }
}

async fn supervise(
    instance: Instance,
    life: watch::Sender<Life>,
    mut adopted: Option<(Process, Record)>,
    output: Arc<Output>,
    generation: Arc<AtomicU32>,
    shutdown: Shutdown,
) {
    let dir = instance.launch.instance_dir.clone();
    let group = instance.launch.cgroups.group(&group_name(&instance.launch));
    let oom_kills = || group.as_ref().map_or(0, tovuk_sandbox::cgroup::Group::oom_kills);
    let end = |dir: &Path| {
        Record::remove(dir);
        if let Some(group) = &group {
            group.remove();
        }
    };
    let mut restarts: u32 = adopted.as_ref().map_or(0, |(_, record)| record.restarts);
    let mut quick_crashes: u32 = 0;
    loop {
        let ooms_before = oom_kills();
        let spawned = match adopted.take() {
            Some((process, record)) => {
                instance.serve_endpoints_of(process.pid()).await;
                Ok((process, record.started_at))
            }
            None => spawn(&instance, &output, restarts).await,
        };
        let (mut process, started_at) = match spawned {
            Ok(spawned) => spawned,
            Err(error) => {
                tracing::warn!(app = %instance.launch.app, %error, "the sandbox could not start");
                push_tail(&instance.tail, format!("[tovuk] the sandbox could not start: {error}"));
                let _ = life.send(Life::ExitedEarly { code: Some(127) });
                return;
            }
        };
        let started = Instant::now();
        // An adopted process was running from the start: saying so again is no change (a
        // watcher would take it for a restart).
        let running = Life::Running { pid: process.pid(), started_at, restarts };
        life.send_if_modified(|current| {
            let changed = *current != running;
            *current = running;
            changed
        });
        let code = tokio::select! {
            code = process.wait() => code,
            () = instance.kick.notified() => stop_process(&mut process, instance.launch.stop_grace).await,
            () = instance.stop.cancelled() => {
                stop_process(&mut process, instance.launch.stop_grace).await;
                instance.end_endpoints();
                end(&dir);
                let _ = life.send(Life::Stopped);
                return;
            }
            // The platform stops; the app goes on serving, and the next start adopts it.
            () = shutdown.wait() => return,
        };
        instance.end_endpoints();
        // The last lines explain the exit.
        output.catch_up();
        let exit = code.map_or_else(|| "with an unknown code".to_owned(), |code| format!("with code {code}"));
        let why = if oom_kills() > ooms_before {
            let limit_mb = instance.launch.limits.memory_bytes.unwrap_or(0) >> 20;
            format!(
                "[tovuk] the process exited {exit}: killed for memory, past its limit of {limit_mb} MiB ([limits] memory_mb in tovuk.toml)"
            )
        } else {
            format!("[tovuk] the process exited {exit}")
        };
        output.say(&why);
        push_tail(&instance.tail, why);
        if !instance.gated.load(Ordering::SeqCst) {
            end(&dir);
            let _ = life.send(Life::ExitedEarly { code });
            return;
        }
        restarts += 1;
        generation.store(restarts + 1, Ordering::SeqCst);
        quick_crashes = if started.elapsed() < Duration::from_secs(60) { quick_crashes + 1 } else { 1 };
        let backoff = Duration::from_millis(100u64 << quick_crashes.min(9)).min(Duration::from_secs(30));
        if quick_crashes >= CRASH_LOOP {
            let _ = life.send(Life::CrashLooping { restarts, last_exit: code });
        } else {
            let _ = life.send(Life::Restarting { restarts, last_exit: code });
        }
        tracing::warn!(app = %instance.launch.app, deploy_id = %instance.launch.deploy_id, ?code, restarts, "instance exited; restarting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = instance.stop.cancelled() => {
                end(&dir);
                let _ = life.send(Life::Stopped);
                return;
            }
            () = shutdown.wait() => return,
        }
    }
}

fn push_tail(tail: &Mutex<VecDeque<String>>, line: String) {
    if let Ok(mut tail) = tail.lock() {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// How long one health probe may take, connecting included.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One `GET path` to the instance, in its own network: Err says why it was not a 2xx.
pub(crate) async fn probe(instance: &Instance, path: &str) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, probe_once(instance, path)).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("{path} did not answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

async fn probe_once(instance: &Instance, path: &str) -> Result<(), String> {
    let addr = instance.addr();
    let netns = instance.netns();
    // Never the host's loopback for an instance with a network of its own: whatever
    // listens there is not the app.
    if netns.is_none() && instance.launch.network != tovuk_sandbox::Network::Host {
        return Err(format!("nothing listens on $PORT ({}) yet: the sandbox is starting", instance.launch.port));
    }
    let stream = tovuk_sandbox::network::connect(netns.as_deref(), addr)
        .await
        .map_err(|_| format!("nothing listens on $PORT ({})", instance.launch.port))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|error| format!("{path} did not answer: {error}"))?;
    let request = hyper::Request::get(path)
        .header(
            hyper::header::HOST,
            if instance.launch.host.is_empty() { addr.to_string() } else { instance.launch.host.clone() },
        )
        .header(hyper::header::USER_AGENT, "tovuk-health")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|error| format!("{path} is not a path a probe can ask for: {error}"))?;
    // The connection is driven here, beside the request, until the answer's head is in:
    // no task per probe.
    let response = sender.send_request(request);
    tokio::pin!(response, connection);
    let answer = tokio::select! {
        answer = &mut response => answer,
        // It ended (an app that closes after answering): the answer, if any, is in.
        _ = &mut connection => response.await,
    };
    match answer {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{path} answered {}", response.status())),
        Err(error) => Err(format!("{path} did not answer: {error}")),
    }
}

/// Polls `path` on the instance until it answers 2xx. Err says why it never did.
pub(crate) async fn wait_healthy(
    instance: &Instance,
    path: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut life = instance.watch();
    let mut probes: u32 = 0;
    loop {
        if let Life::ExitedEarly { code } = instance.life() {
            let code = code.map_or_else(|| "unknown".to_owned(), |code| code.to_string());
            return Err(format!("the process exited with code {code} before answering {path}"));
        }
        // Until bwrap has made the sandbox's namespace there is nothing to probe: look
        // again in a moment, without backing off.
        if instance.launch.network != tovuk_sandbox::Network::Host
            && instance.netns().is_none()
            && matches!(instance.life(), Life::Running { .. } | Life::Starting)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let last = match probe(instance, path).await {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(format!("not healthy within {}s: {last}", timeout.as_secs()));
        }
        // Probe fast while the app is starting (most answer within tens of milliseconds),
        // backing off to the contract's interval.
        probes += 1;
        let pause = Duration::from_millis(5u64 << probes.min(6)).min(interval).min(Duration::from_millis(250));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = life.changed() => {}
        }
    }
}

/// The release's static root, refusing one that leaves the release.
pub(crate) fn static_root(release_dir: &Path, root: &str) -> PathBuf {
    let root = root.trim_matches('/');
    if root.is_empty() || root == "." || root.split('/').any(|part| part == "..") {
        release_dir.to_owned()
    } else {
        release_dir.join(root)
    }
}
