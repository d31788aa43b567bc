//! One running app instance: its sandboxed process, its output, its health, and the
//! supervisor that restarts it when it crashes.

use crate::signal;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tovuk_sandbox::SandboxSpec;

/// Lines of output kept to explain a failure.
const TAIL_LINES: usize = 40;
/// After this many crashes in a row, each within a minute of starting, the app is crash-looping.
const CRASH_LOOP: u32 = 5;
/// How long a stopping instance has between SIGTERM and SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the supervisor says about the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    Starting,
    Running {
        pid: u32,
        started_at: String,
    },
    /// It exited before the health gate passed: the deploy fails, nothing restarts it.
    /// Final, like `Stopped`.
    ExitedEarly {
        code: i32,
    },
    Restarting {
        restarts: u32,
        last_exit: i32,
    },
    CrashLooping {
        restarts: u32,
        last_exit: i32,
    },
    Stopped,
}

/// How to start an instance.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub app: String,
    /// Web instances are routed to; workers are not.
    pub kind: tovuk_manifest::AppKind,
    pub deploy_id: String,
    pub release_dir: PathBuf,
    pub volume_dir: PathBuf,
    pub command: String,
    pub port: u16,
    /// Where the instance's output lines go (to the app's log).
    pub logs: tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>,
    /// The app's config, opened: it reaches the process's environment and nothing else.
    pub env: Arc<tovuk_secrets::OpenedEnv>,
    /// Hides config values in what the instance prints, before a line is kept anywhere.
    pub masker: Arc<tovuk_secrets::Masker>,
}

/// A handle on a supervised instance.
#[derive(Clone)]
pub(crate) struct Instance {
    pub launch: Launch,
    life: watch::Receiver<Life>,
    /// Passed once the instance answered its health path: crashes restart it from then on.
    gated: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Instance {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.launch.port))
    }

    pub fn life(&self) -> Life {
        self.life.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Life> {
        self.life.clone()
    }

    pub fn pass_gate(&self) {
        self.gated.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The last lines the app printed, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.lock().map(|tail| tail.iter().cloned().collect()).unwrap_or_default()
    }

    /// Stops the instance for good: SIGTERM, then SIGKILL after the grace. Returns once it is gone.
    pub async fn stop(&self) {
        self.stop.cancel();
        let mut life = self.life.clone();
        let _ = life.wait_for(|life| matches!(life, Life::Stopped | Life::ExitedEarly { .. })).await;
    }
}

/// A free loopback port for a new instance.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn spec(launch: &Launch) -> SandboxSpec {
    SandboxSpec {
        workspace: launch.release_dir.clone(),
        workdir: "/app".into(),
        binds: vec![(launch.release_dir.clone(), "/app".into()), (launch.volume_dir.clone(), "/data".into())],
        ro_binds: Vec::new(),
        env: launch
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().to_owned()))
            .chain([
                ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
                ("HOME".into(), "/data".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("PORT".into(), launch.port.to_string()),
                ("HOST".into(), "127.0.0.1".into()),
                ("TOVUK_APP".into(), launch.app.clone()),
                ("TOVUK_DEPLOY_ID".into(), launch.deploy_id.clone()),
            ])
            .collect(),
        // The app listens on the host's loopback, where the router reaches it.
        network: true,
    }
}

/// Starts the instance under a supervisor, a task `shutdown` waits for (it ends when the
/// instance is stopped).
pub(crate) fn start(launch: Launch, shutdown: &tovuk_daemon::Shutdown) -> std::io::Result<Instance> {
    std::fs::create_dir_all(&launch.volume_dir)?;
    let (life_tx, life_rx) = watch::channel(Life::Starting);
    let instance = Instance {
        launch,
        life: life_rx,
        gated: Arc::default(),
        stop: CancellationToken::new(),
        tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
    };
    let supervised = instance.clone();
    shutdown.spawn("instance", async move {
        supervise(supervised, life_tx).await;
        Ok(())
    });
    Ok(instance)
}

async fn supervise(instance: Instance, life: watch::Sender<Life>) {
    let mut restarts: u32 = 0;
    let mut quick_crashes: u32 = 0;
    let mut starts: u32 = 0;
    loop {
        starts += 1;
        let mut command = tovuk_sandbox::command(&spec(&instance.launch), "/bin/sh", &["-c", &instance.launch.command]);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                push_tail(&instance.tail, format!("[tovuk] the sandbox could not start: {error}"));
                let _ = life.send(Life::ExitedEarly { code: 127 });
                return;
            }
        };
        let pid = child.id().unwrap_or(0);
        let started = Instant::now();
        let _ = life.send(Life::Running { pid, started_at: now() });
        let mut pumps = Vec::new();
        let label = format!("{}/{starts}", instance.launch.deploy_id);
        if let Some(stdout) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(stdout, tovuk_api_types::LogStream::Stdout, label.clone(), instance.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(stderr, tovuk_api_types::LogStream::Stderr, label.clone(), instance.clone())));
        }
        let code = tokio::select! {
            status = child.wait() => status.map(|status| status.code().unwrap_or(137)).unwrap_or(1),
            () = instance.stop.cancelled() => {
                signal::terminate(pid);
                if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                let _ = life.send(Life::Stopped);
                return;
            }
        };
        // The last lines explain the exit: let the pipes drain first (briefly).
        for pump in pumps {
            let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        }
        push_tail(&instance.tail, format!("[tovuk] the process exited with code {code}"));
        if !instance.gated.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = life.send(Life::ExitedEarly { code });
            return;
        }
        restarts += 1;
        quick_crashes = if started.elapsed() < Duration::from_secs(60) { quick_crashes + 1 } else { 1 };
        let backoff = Duration::from_millis(100u64 << quick_crashes.min(9)).min(Duration::from_secs(30));
        if quick_crashes >= CRASH_LOOP {
            let _ = life.send(Life::CrashLooping { restarts, last_exit: code });
        } else {
            let _ = life.send(Life::Restarting { restarts, last_exit: code });
        }
        tracing::warn!(app = %instance.launch.app, deploy_id = %instance.launch.deploy_id, code, restarts, "instance exited; restarting");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = instance.stop.cancelled() => {
                let _ = life.send(Life::Stopped);
                return;
            }
        }
    }
}

/// Copies one output stream of an instance into its tail and the app's log.
async fn pump(
    stream: impl tokio::io::AsyncRead + Unpin,
    name: tovuk_api_types::LogStream,
    label: String,
    instance: Instance,
) {
    let mut lines = BufReader::new(stream).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return,
            // Not UTF-8: keep going, the bytes are lost but the stream is not.
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => "\u{fffd}".to_owned(),
            Err(_) => return,
        };
        let line = match instance.launch.masker.mask(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(masked) => masked,
        };
        push_tail(&instance.tail, line.clone());
        let log = tovuk_api_types::AppLogLine {
            seq: 0,
            at: now(),
            app: instance.launch.app.clone(),
            deploy_id: instance.launch.deploy_id.clone(),
            instance: label.clone(),
            stream: name,
            line,
        };
        // A full channel means the platform is behind: drop the line rather than block the app.
        let _ = instance.launch.logs.try_send(log);
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

/// Polls `path` on the instance until it answers 2xx. Err says why it never did.
pub(crate) async fn wait_healthy(
    instance: &Instance,
    path: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|error| format!("cannot make a health client: {error}"))?;
    let url = format!("http://{}{}", instance.addr(), path);
    let deadline = Instant::now() + timeout;
    let mut life = instance.watch();
    let mut probes: u32 = 0;
    loop {
        if let Life::ExitedEarly { code } = instance.life() {
            return Err(format!("the process exited with code {code} before answering {path}"));
        }
        let last = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!("{path} answered {}", response.status()),
            Err(error) if error.is_connect() => format!("nothing listens on $PORT ({})", instance.launch.port),
            Err(error) => format!("{path} did not answer: {error}"),
        };
        if Instant::now() >= deadline {
            return Err(format!("not healthy within {}s: {last}", timeout.as_secs()));
        }
        // Probe fast while the app is starting (most answer within tens of milliseconds),
        // backing off to the contract's interval.
        probes += 1;
        let pause = Duration::from_millis(10u64 << probes.min(5)).min(interval).min(Duration::from_millis(250));
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
