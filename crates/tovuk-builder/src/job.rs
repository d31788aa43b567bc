//! One build, from claim to artifact: clean checkout, the three phases in the sandbox,
//! pack, seal, report. The workspace is removed whatever happens.

use crate::BuilderConfig;
use crate::phase::{self, LogShipper, PhaseEnd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tovuk_api_types::{
    ArtifactSummary, BuildFinish, BuildOutcome, ClaimedBuild, DeployFailure, DeployState, FailureReason, LogStream,
    PhaseReport, PhaseStatus,
};
use tovuk_artifact::{ArtifactManifest, BuildKey};
use tovuk_client::Client;
use tovuk_daemon::Shutdown;
use tovuk_manifest::{MANIFEST_FILE, Manifest};
use tovuk_sandbox::SandboxSpec;

/// Times a phase is started when bubblewrap fails making its sandbox, and the first pause
/// between (each next one is longer).
const SANDBOX_ATTEMPTS: u32 = 5;
const SANDBOX_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Where the checkout sits inside the sandbox; every phase starts here.
pub(crate) use tovuk_types::PROJECT_ROOT;

/// The host's directories every release sandbox sees read-only: an artifact may link into them
/// (a virtualenv's `python3 -> /usr/bin/python3`).
const RELEASE_SYSTEM_DIRS: [&str; 7] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The sandbox's `PATH`: the host's `/usr` is bound read-only.
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a build ended, before it is reported.
enum Outcome {
    Ready(ArtifactSummary),
    Failed(DeployFailure),
    Cancelled,
    Stopped,
}

fn failure(
    reason: FailureReason,
    phase: Option<DeployState>,
    exit_code: Option<i64>,
    line: Option<String>,
) -> DeployFailure {
    DeployFailure { reason, phase, exit_code, first_actionable_line: line, blockers: Vec::new() }
}

/// Builds one claimed deploy and reports how it ended.
pub(crate) async fn run(
    client: &Client,
    config: &BuilderConfig,
    key: &Arc<BuildKey>,
    build: ClaimedBuild,
    shutdown: &Shutdown,
) {
    let started = Instant::now();
    let workspace = config.layout.build_workspace(&build.build_id);
    let mut logs = LogShipper::new(client, &build.deploy_id, config.log_limit_bytes);
    tracing::info!(deploy_id = %build.deploy_id, app = %build.app, sha = %build.sha, "build started");
    let outcome = build_in(client, config, key, &build, &workspace, &mut logs, shutdown).await;
    if let Err(error) = std::fs::remove_dir_all(&workspace)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(deploy_id = %build.deploy_id, %error, "cannot remove the build workspace");
    }
    let finish = match outcome {
        Outcome::Ready(artifact) => {
            logs.line(
                DeployState::Testing,
                LogStream::Platform,
                format!("artifact {} sealed and signed", artifact.digest),
            );
            BuildFinish { outcome: BuildOutcome::ArtifactReady, failure: None, artifact: Some(artifact) }
        }
        Outcome::Failed(failure) => {
            BuildFinish { outcome: BuildOutcome::Failed, failure: Some(failure), artifact: None }
        }
        Outcome::Cancelled => BuildFinish { outcome: BuildOutcome::Cancelled, failure: None, artifact: None },
        Outcome::Stopped => BuildFinish {
            outcome: BuildOutcome::Failed,
            failure: Some(failure(
                FailureReason::PlatformRestarted,
                None,
                None,
                Some("the platform stopped while this build ran".into()),
            )),
            artifact: None,
        },
    };
    logs.finish(DeployState::Testing);
    let _ = logs.flush().await;
    // Until the end is reported the app's next build waits: try a few times.
    for attempt in 1..=5 {
        match client.finish_build(&build.deploy_id, &finish).await {
            Ok(_) => {
                tracing::info!(
                    deploy_id = %build.deploy_id,
                    outcome = %finish.outcome,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "build ended"
                );
                return;
            }
            // At the next start the deploy is ended as interrupted.
            Err(error) if attempt == 5 => {
                tracing::warn!(deploy_id = %build.deploy_id, %error, "cannot report the end of a build")
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(attempt)).await,
        }
    }
}

async fn build_in(
    client: &Client,
    config: &BuilderConfig,
    key: &Arc<BuildKey>,
    build: &ClaimedBuild,
    workspace: &Path,
    logs: &mut LogShipper<'_>,
    shutdown: &Shutdown,
) -> Outcome {
    let source = workspace.join("source");
    let home = workspace.join("home");
    if let Err(error) = std::fs::create_dir_all(&source).and_then(|()| std::fs::create_dir_all(&home)) {
        return Outcome::Failed(failure(
            FailureReason::WorkspaceUnavailable,
            None,
            None,
            Some(format!("cannot create the workspace: {error}")),
        ));
    }
    logs.line(DeployState::Building, LogStream::Platform, format!("checking out {} at {}", build.ref_name, build.sha));
    let repo = config.layout.repo(&build.app);
    // The checkout is held to the build's time limit and stops when the deploy is cancelled.
    let limit = committed_build_timeout(&repo, &build.sha).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checked_out = {
        let checkout = checkout(&repo, &build.sha, &source, stop.clone());
        tokio::pin!(checkout);
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                result = &mut checkout => break result,
                () = &mut deadline => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = (&mut checkout).await;
                    let line = format!("the checkout did not finish within {} ([build] timeout in tovuk.toml): stopped", humanize(limit));
                    logs.line(DeployState::Building, LogStream::Platform, line.clone());
                    return Outcome::Failed(failure(FailureReason::Timeout, Some(DeployState::Building), None, Some(line)));
                }
                _ = tick.tick() => {
                    if logs.flush().await {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        let _ = (&mut checkout).await;
                        return Outcome::Cancelled;
                    }
                }
                () = shutdown.wait() => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = (&mut checkout).await;
                    return Outcome::Stopped;
                }
            }
        }
    };
    if let Err(error) = checked_out {
        logs.line(DeployState::Building, LogStream::Platform, error.clone());
        return Outcome::Failed(failure(
            FailureReason::SourceUnavailable,
            Some(DeployState::Building),
            None,
            Some(error),
        ));
    }
    let (manifest, needs) = match read_manifest(&source, &build.app) {
        Ok(read) => read,
        Err(error) => {
            logs.line(DeployState::Building, LogStream::Platform, error.clone());
            return Outcome::Failed(failure(
                FailureReason::ContractInvalid,
                Some(DeployState::Building),
                None,
                Some(error),
            ));
        }
    };
    // `[build] secrets` reach the phases' environment; their values are hidden in the log.
    let secrets = match tovuk_secrets::open_env(&config.secrets_key, &build.app_id, &build.env) {
        Ok(secrets) => secrets,
        Err(error) => {
            let line = format!("{error}; then: tovuk deploy retry {}", build.deploy_id);
            logs.line(DeployState::Building, LogStream::Platform, line.clone());
            return Outcome::Failed(failure(
                FailureReason::ConfigUnreadable,
                Some(DeployState::Building),
                None,
                Some(line),
            ));
        }
    };
    let masker = Arc::new(tovuk_secrets::Masker::new(secrets.iter().map(|(_, value)| value.as_str())));
    logs.mask_with(masker.clone());
    let mut spec = sandbox_spec(config, build, workspace, &manifest);
    let sandbox_path =
        spec.env.iter().find(|(name, _)| name == "PATH").map(|(_, path)| path.clone()).unwrap_or_default();
    if let Some(tool) = needs.tools.iter().find(|tool| find_tool(&sandbox_path, tool).is_none()) {
        let line = format!(
            "this app needs `{tool}` to build and run (its contract was detected without a tovuk.toml), and the \
             platform has none: install it on the platform's machine, or give its directory with \
             `tovuk server --build-toolchain DIR` (DIR/bin on PATH)"
        );
        logs.line(DeployState::Building, LogStream::Platform, line.clone());
        return Outcome::Failed(failure(
            FailureReason::ToolchainMissing,
            Some(DeployState::Building),
            None,
            Some(line),
        ));
    }
    if let Some(request) = &needs.runtime
        && let Some(line) = runtime_mismatch(&sandbox_path, request).await
    {
        logs.line(DeployState::Building, LogStream::Platform, line);
    }
    let group = BuildGroup::create(config, build);
    spec.cgroup = group.0.clone();
    // One route out for the whole build, opened when its first command runs: its phases
    // join one namespace, and pasta starts once (or never, for a build with no commands).
    let mut network: Option<tovuk_sandbox::SharedNetwork> = None;
    spec.env.extend(secrets.iter().map(|(name, value)| (name.clone(), value.as_str().to_owned())));
    let build_section = manifest.build();
    let phases = [
        (DeployState::Building, build_section.build.as_deref()),
        (DeployState::Typechecking, build_section.typecheck.as_deref()),
        (DeployState::Testing, build_section.test.as_deref()),
    ];
    for (state, command) in phases {
        if state != DeployState::Building {
            match client.advance_build(&build.deploy_id, state).await {
                Ok(control) if control.cancelled => return Outcome::Cancelled,
                Ok(_) => {}
                Err(error) => tracing::warn!(deploy_id = %build.deploy_id, %error, "cannot report the phase"),
            }
        }
        let Some(command) = command else {
            report(client, build, state, PhaseStatus::Skipped, None, None, true).await;
            logs.line(state, LogStream::Platform, format!("no {state} command in tovuk.toml: passed"));
            continue;
        };
        report(client, build, state, PhaseStatus::Running, Some(command), None, false).await;
        logs.line(state, LogStream::Platform, format!("$ {command}"));
        // The holder of the shared network may have ended (killed with the build's group
        // by the OOM killer, say): the next phase opens a new one rather than fail to join.
        if let Some(shared) = &network
            && !shared.netns.exists()
        {
            tracing::warn!(deploy_id = %build.deploy_id, "the build's shared network ended; opening another");
            network = None;
            spec.network = tovuk_sandbox::Network::Outbound;
        }
        if network.is_none() && spec.network == tovuk_sandbox::Network::Outbound {
            match tovuk_sandbox::open_shared_network(&spec).await {
                Ok(shared) => {
                    spec.network = tovuk_sandbox::Network::Joined(shared.netns.clone());
                    network = Some(shared);
                }
                Err(error) => tracing::warn!(deploy_id = %build.deploy_id, %error, "each phase opens its own network"),
            }
        }
        let mut phase_spec = spec.clone();
        phase_spec.env.push(("TOVUK_PHASE".into(), state.to_string()));
        let started = Instant::now();
        let mut end = phase::run(&phase_spec, state, command, build_section.timeout, logs, shutdown).await;
        for attempt in 1..SANDBOX_ATTEMPTS {
            let PhaseEnd::SandboxFailed(why) = &end else { break };
            logs.line(state, LogStream::Platform, format!("the sandbox did not start ({why}); starting it again"));
            // The build's shared network may be what went: the next attempt opens another.
            if network.as_ref().is_some_and(|shared| !shared.netns.exists()) {
                network = None;
                spec.network = tovuk_sandbox::Network::Outbound;
                if let Ok(shared) = tovuk_sandbox::open_shared_network(&spec).await {
                    spec.network = tovuk_sandbox::Network::Joined(shared.netns.clone());
                    network = Some(shared);
                }
                phase_spec.network = spec.network.clone();
            }
            // Longer each time: a machine short of processes or memory for a moment recovers.
            tokio::time::sleep(SANDBOX_RETRY_PAUSE * attempt).await;
            end = phase::run(&phase_spec, state, command, build_section.timeout, logs, shutdown).await;
        }
        if let PhaseEnd::SandboxFailed(why) = end {
            end = PhaseEnd::NotStarted(why);
        }
        let took = format!("{:.1}s", started.elapsed().as_secs_f64());
        match end {
            PhaseEnd::Exited { code: 0, .. } => {
                report(client, build, state, PhaseStatus::Passed, Some(command), Some(0), true).await;
                logs.line(state, LogStream::Platform, format!("{state} passed in {took}"));
            }
            PhaseEnd::Exited { code, mut actionable } => {
                report(client, build, state, PhaseStatus::Failed, Some(command), Some(i64::from(code)), true).await;
                logs.line(state, LogStream::Platform, format!("{state} failed with exit code {code} after {took}"));
                if group.oom_kills() > 0 {
                    let line = format!(
                        "killed for memory: the build passed its limit of {} MiB",
                        BUILD_LIMITS.memory_bytes.unwrap_or(0) >> 20
                    );
                    logs.line(state, LogStream::Platform, line.clone());
                    actionable = Some(line);
                } else if code == 127 {
                    // The shell's "not found": say where the sandbox looks.
                    let hint = "exit code 127: a command is not on the build sandbox's PATH (it has /usr, \
                                .venv/bin, node_modules/.bin and the operator's `tovuk server --build-toolchain DIR`s)";
                    logs.line(state, LogStream::Platform, hint.to_owned());
                    actionable = Some(match actionable {
                        Some(line) => format!("{line}; {hint}"),
                        None => hint.to_owned(),
                    });
                }
                return Outcome::Failed(failure(
                    FailureReason::PhaseFailed,
                    Some(state),
                    Some(i64::from(code)),
                    actionable,
                ));
            }
            PhaseEnd::TimedOut { actionable } => {
                report(client, build, state, PhaseStatus::TimedOut, Some(command), None, true).await;
                let limit = humanize(build_section.timeout);
                logs.line(state, LogStream::Platform, format!("{state} did not finish within {limit}: stopped"));
                let line = actionable
                    .map(|line| format!("timed out after {limit}; last output: {line}"))
                    .or(Some(format!("timed out after {limit} ([build] timeout in tovuk.toml)")));
                return Outcome::Failed(failure(FailureReason::Timeout, Some(state), None, line));
            }
            PhaseEnd::Cancelled => {
                report(client, build, state, PhaseStatus::Cancelled, Some(command), None, true).await;
                return Outcome::Cancelled;
            }
            PhaseEnd::Stopped => {
                report(client, build, state, PhaseStatus::Interrupted, Some(command), None, true).await;
                return Outcome::Stopped;
            }
            PhaseEnd::NotStarted(error) | PhaseEnd::SandboxFailed(error) => {
                report(client, build, state, PhaseStatus::Failed, Some(command), None, true).await;
                let line =
                    format!("the sandbox could not start: {error}; install bubblewrap (apt-get install bubblewrap)");
                logs.line(state, LogStream::Platform, line.clone());
                return Outcome::Failed(failure(FailureReason::SandboxUnavailable, Some(state), None, Some(line)));
            }
        }
    }
    if logs.flush().await {
        return Outcome::Cancelled;
    }
    match seal(config, key, build, &source, &manifest, masker).await {
        Ok(artifact) => Outcome::Ready(artifact),
        Err(error) => {
            logs.line(DeployState::Testing, LogStream::Platform, error.clone());
            Outcome::Failed(failure(FailureReason::ArtifactFailed, None, None, Some(error)))
        }
    }
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

async fn report(
    client: &Client,
    build: &ClaimedBuild,
    phase: DeployState,
    status: PhaseStatus,
    command: Option<&str>,
    exit_code: Option<i64>,
    ended: bool,
) {
    let report = PhaseReport { phase, status, command: command.map(str::to_owned), exit_code, ended };
    if let Err(error) = client.report_phase(&build.deploy_id, &report).await {
        tracing::warn!(deploy_id = %build.deploy_id, %error, "cannot report a phase");
    }
}

/// `git` on the app's repository, reading no machine or user configuration.
fn git(repo: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("git");
    command.arg("--git-dir").arg(repo).env("GIT_CONFIG_NOSYSTEM", "1").env("GIT_CONFIG_GLOBAL", "/dev/null");
    command
}

/// The `[build] timeout` of the commit's contract, read from git before the checkout.
async fn committed_build_timeout(repo: &Path, sha: &str) -> Duration {
    let output = git(repo).args(["cat-file", "blob", &format!("{sha}:{MANIFEST_FILE}")]).output().await;
    output
        .ok()
        .and_then(|output| tovuk_manifest::check_bytes(MANIFEST_FILE, &output.stdout).0)
        .map_or(tovuk_manifest::DEFAULT_BUILD_TIMEOUT, |manifest| manifest.build().timeout)
}

/// The commit's time (seconds since the epoch): every file of its artifact carries it, so
/// Last-Modified moves when the source does and the same commit still packs the same bytes.
async fn commit_time(repo: &Path, sha: &str) -> u64 {
    let output = git(repo).args(["show", "-s", "--format=%ct", sha]).output().await;
    output.ok().and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok()).unwrap_or(0)
}

/// A clean checkout of `sha`: `git archive` of the commit streamed into the workspace.
/// No `.git`, no files from earlier builds, and memory stays flat whatever the size.
/// Setting `stop` ends it between two entries.
async fn checkout(repo: &Path, sha: &str, dest: &Path, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<(), String> {
    let (repo, sha, dest) = (repo.to_owned(), sha.to_owned(), dest.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut git = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["archive", "--format=tar", &sha])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run git to check out the source: {error}"))?;
        let unpacked = match git.stdout.take() {
            Some(stdout) => unpack_until_stopped(stdout, &dest, &stop),
            None => Err("git gave no output".to_owned()),
        };
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = git.kill();
            let _ = git.wait();
            return Err("the checkout was stopped".to_owned());
        }
        // An unpack that failed first is the cause: git then dies writing into a closed pipe.
        if let Err(error) = unpacked {
            let _ = git.kill();
            let _ = git.wait();
            return Err(format!("cannot unpack the checkout: {error}"));
        }
        let output = git.wait_with_output().map_err(|error| format!("git stopped: {error}"))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let status = output.status;
            let first = stderr
                .lines()
                .next()
                .map_or_else(|| format!("git archive failed ({status})"), |line| line.trim().to_owned());
            return Err(format!("the source of commit {sha} cannot be read from the app's repository: {first}"));
        }
        Ok(())
    })
    .await
    .map_err(|error| format!("the checkout stopped: {error}"))?
}

fn unpack_until_stopped(
    stream: impl std::io::Read,
    dest: &Path,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(|error| error.to_string())? {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let mut entry = entry.map_err(|error| error.to_string())?;
        entry.unpack_in(dest).map_err(|error| error.to_string())?;
    }
    // The tar reader stops at the end-of-archive blocks; git may still write the padding after
    // them, and would die of SIGPIPE if nobody read it.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink()).map_err(|error| error.to_string())?;
    Ok(())
}

/// What a contract detected without a `tovuk.toml` needs from the platform (nothing for a
/// written one: its commands say what they need).
#[derive(Default)]
struct Needs {
    /// The programs its build and run commands use.
    tools: Vec<&'static str>,
    /// The runtime version its files ask for.
    runtime: Option<tovuk_manifest::RuntimeRequest>,
}

/// The checkout's contract: its `tovuk.toml`, or the one detected from its files (with what
/// that one needs from the platform).
fn read_manifest(source: &Path, app: &str) -> Result<(Manifest, Needs), String> {
    let (manifest, report) = match std::fs::read(source.join(MANIFEST_FILE)) {
        Ok(bytes) => tovuk_manifest::check_bytes(MANIFEST_FILE, &bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let names = std::fs::read_dir(source)
                .map_err(|error| format!("cannot list the checkout: {error}"))?
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect();
            let mut root = tovuk_manifest::ProjectRoot::with_names(names);
            for file in root.wanted() {
                let mut bytes = Vec::new();
                let read = std::fs::File::open(source.join(file)).and_then(|opened| {
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(opened, tovuk_manifest::MAX_MANIFEST_BYTES as u64),
                        &mut bytes,
                    )
                });
                read.map_err(|error| format!("cannot read {file} from the checkout: {error}"))?;
                root.files.insert(file.to_owned(), bytes);
            }
            tovuk_manifest::check_detected(app, &root)
        }
        Err(error) => return Err(format!("cannot read {MANIFEST_FILE} from the checkout: {error}")),
    };
    let needs = report
        .detected()
        .map(|detected| Needs { tools: detected.tools.clone(), runtime: detected.requested_runtime.clone() })
        .unwrap_or_default();
    let manifest = manifest.ok_or_else(|| {
        let first = report.errors().first().map(|error| error.message.clone()).unwrap_or_default();
        format!("{MANIFEST_FILE} does not pass the contract check: {first}")
    })?;
    Ok((manifest, needs))
}

/// Where the sandbox finds `tool` on its `PATH`, as the host has it: the sandbox sees the
/// host's system and toolchain directories at the same paths (the checkout's are skipped:
/// they hold what the build installs, not what the platform provides).
fn find_tool(path: &str, tool: &str) -> Option<PathBuf> {
    path.split(':')
        .filter(|dir| !dir.starts_with("/workspace"))
        .map(|dir| Path::new(dir).join(tool))
        .find(|candidate| candidate.is_file())
}

/// The build log's line when the runtime version a detected app asks for is not the one the
/// platform has: which version will run instead, and how the operator provides another.
/// `None` when it is (or the tool is missing, which fails the build before this).
async fn runtime_mismatch(path: &str, request: &tovuk_manifest::RuntimeRequest) -> Option<String> {
    let tool = request.tool;
    let found = find_tool(path, tool)?;
    let (file, language, asked) = (request.file, request.language(), &request.asked);
    let asked_for = if file == "package.json" {
        format!("{file} asks for {language} {asked} (engines.node)")
    } else {
        format!("{file} asks for {language} {asked}")
    };
    // A toolchain's bin comes before the system's on the sandbox's PATH, so its tool wins.
    let provide = format!(
        "To run {language} {asked}, the operator gives a {tool} of that version with \
         `tovuk server --build-toolchain DIR` (DIR/bin on PATH, ahead of the system's)"
    );
    let printed = tool_version(&found).await;
    let version = match printed.as_deref().map(tovuk_manifest::printed_version) {
        Ok(Some(version)) => version,
        Ok(None) | Err(_) => {
            let why = printed.unwrap_or_else(|error| error);
            let why = why.lines().next().unwrap_or("it printed nothing").trim().to_owned();
            return Some(format!(
                "{asked_for}; the platform's {tool} ({}) will run, whose version cannot be read \
                 (`{tool} --version`: {why}). {provide}",
                found.display()
            ));
        }
    };
    if request.accepts(version) {
        return None;
    }
    Some(format!("{asked_for}; {language} {version} will run (the platform's {tool}, {}). {provide}", found.display()))
}

/// What `program --version` prints (both streams: older Pythons print it on stderr), run
/// with nothing of the platform's environment and stopped after a few seconds.
async fn tool_version(program: &Path) -> Result<String, String> {
    let run = tokio::process::Command::new(program)
        .arg("--version")
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(error.to_string()),
        Err(_) => return Err("it did not answer within 10s".to_owned()),
    };
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() { Ok(printed) } else { Err(format!("{}: {printed}", output.status)) }
}

/// What one build may use: memory (the kernel kills inside the build past it) and
/// processes. CPU is shared, not capped: a build gets what is free.
const BUILD_LIMITS: tovuk_sandbox::cgroup::Limits =
    tovuk_sandbox::cgroup::Limits { memory_bytes: Some(4 << 30), cpu_cores: None, pids: Some(4096) };
/// The build's private `/tmp`.
const BUILD_TMP_BYTES: u64 = 1 << 30;

/// A build's control group, removed (with anything left in it) when the build ends.
struct BuildGroup(Option<tovuk_sandbox::cgroup::Group>);

impl BuildGroup {
    fn create(config: &BuilderConfig, build: &ClaimedBuild) -> BuildGroup {
        match config.cgroups.create(&format!("build-{}", build.deploy_id), &BUILD_LIMITS) {
            Ok(group) => BuildGroup(group),
            Err(error) => {
                tracing::warn!(deploy_id = %build.deploy_id, %error, "the build runs without its limits");
                BuildGroup(None)
            }
        }
    }

    fn oom_kills(&self) -> u64 {
        self.0.as_ref().map_or(0, tovuk_sandbox::cgroup::Group::oom_kills)
    }
}

impl Drop for BuildGroup {
    fn drop(&mut self) {
        if let Some(group) = &self.0 {
            group.remove();
        }
    }
}

fn sandbox_spec(config: &BuilderConfig, build: &ClaimedBuild, workspace: &Path, manifest: &Manifest) -> SandboxSpec {
    let binds = crate::cache::binds(&config.layout, &build.app, &workspace.join("source"), &manifest.build().cache);
    let ro_binds = config
        .toolchains
        .iter()
        .filter(|path| path.exists())
        .map(|path| (path.clone(), path.display().to_string()))
        .collect();
    let mut path = format!("{}:", tovuk_types::PROJECT_PATH);
    for toolchain in &config.toolchains {
        path.push_str(&format!("{}:", toolchain.join("bin").display()));
    }
    path.push_str(SANDBOX_PATH);
    SandboxSpec {
        workspace: workspace.to_owned(),
        workdir: PROJECT_ROOT.into(),
        binds,
        ro_binds,
        env: config
            .env
            .iter()
            .cloned()
            .chain([
                ("PATH".into(), path),
                ("HOME".into(), "/workspace/home".into()),
                ("TMPDIR".into(), "/tmp".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("CI".into(), "true".into()),
                ("TOVUK_PROJECT_ROOT".into(), PROJECT_ROOT.into()),
                ("VARY_PROJECT_ROOT".into(), PROJECT_ROOT.into()),
                ("TOVUK_APP".into(), build.app.clone()),
                ("TOVUK_DEPLOY_ID".into(), build.deploy_id.clone()),
                ("TOVUK_BUILD_ID".into(), build.build_id.clone()),
                ("TOVUK_COMMIT_SHA".into(), build.sha.clone()),
            ])
            .chain(crate::cache::package_cache_env())
            .chain(rustup_home(&config.toolchains))
            .collect(),
        // Dependencies come from the outside; the host's loopback (the API, the router,
        // other apps) is not reachable from a build.
        network: config.network.give(tovuk_sandbox::Network::Outbound),
        // A build never outlives the platform: it dies with it and is failed at the next start.
        outlives_platform: false,
        cgroup: None,
        tmp_bytes: Some(BUILD_TMP_BYTES),
        held: false,
    }
}

/// A rustup toolchain bound as `--build-toolchain DIR/.rustup`: its proxies (`cargo`,
/// `rustc` in `.cargo/bin`) find it through `RUSTUP_HOME`, not through the build's `HOME`.
fn rustup_home(toolchains: &[PathBuf]) -> Option<(String, String)> {
    let rustup =
        toolchains.iter().find(|dir| dir.file_name().is_some_and(|name| name == ".rustup" || name == "rustup"))?;
    Some(("RUSTUP_HOME".into(), rustup.display().to_string()))
}

/// Packs the build output, seals it with the build key, and returns its digest.
async fn seal(
    config: &BuilderConfig,
    key: &Arc<BuildKey>,
    build: &ClaimedBuild,
    source: &Path,
    manifest: &Manifest,
    secrets: Arc<tovuk_secrets::Masker>,
) -> Result<ArtifactSummary, String> {
    let secret_names = manifest.build().secrets.join(", ");
    let artifacts = config.layout.artifacts_dir();
    let outputs = manifest.build().output.clone();
    let excludes = manifest.build().exclude.clone();
    let includes = manifest.build().include.clone();
    let options = tovuk_artifact::PackOptions {
        root_inside: Some(PROJECT_ROOT.into()),
        system_dirs: RELEASE_SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
        mtime: commit_time(&config.layout.repo(&build.app), &build.sha).await,
    };
    let caches = manifest.build().cache.clone();
    let layout = config.layout.clone();
    let app = build.app.clone();
    let artifact_manifest = ArtifactManifest::new(
        build.app.clone(),
        build.deploy_id.clone(),
        build.build_id.clone(),
        build.sha.clone(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        manifest.run_command().map(str::to_owned),
        0,
    );
    let source = source.to_owned();
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        // What ships is `[build] output` minus `exclude`, cached or not: the caches are put
        // where the phases saw them for the packing, and back after (when this is dropped).
        let _caches = crate::cache::CachesInCheckout::move_in(&layout, &app, &source, &caches)?;
        let excluded = tovuk_manifest::PathPatterns::new(&excludes)?;
        let included = tovuk_manifest::PathPatterns::new(&includes)?;
        // A tracked `.env` (a development file) never ships unless `[build] include` says so.
        let is_excluded = |path: &str| {
            excluded.matches(path)
                || (path.rsplit('/').next() == Some(tovuk_manifest::DOTENV) && !included.matches(path))
        };
        let (temp, file) = tovuk_artifact::create_temp_archive(&artifacts).map_err(|error| error.to_string())?;
        let packed =
            tovuk_artifact::pack_with(&source, &outputs, &is_excluded, &options, std::io::BufWriter::new(file));
        let packed = match packed {
            Ok(packed) => packed,
            Err(error) => {
                let _ = std::fs::remove_file(&temp);
                return Err(format!("the build output cannot be packed: {error}"));
            }
        };
        // A secret baked into the output would ship to every release: refuse the artifact.
        if !secrets.is_empty() {
            let holds_secret = std::fs::File::open(&temp)
                .and_then(zstd::Decoder::new)
                .and_then(|archive| secrets.find_in_reader(archive));
            if !matches!(holds_secret, Ok(false)) {
                let _ = std::fs::remove_file(&temp);
                return Err(match holds_secret {
                    Err(error) => format!("the packed output cannot be checked for secret values: {error}"),
                    Ok(_) => format!(
                        "the build output holds the value of one of [build] secrets ({secret_names}); \
                         read secrets from the environment at run time instead of writing them into files"
                    ),
                });
            }
        }
        let manifest = ArtifactManifest { files: packed.files, ..artifact_manifest };
        let sealed = tovuk_artifact::seal(&artifacts, &temp, manifest, &key).map_err(|error| {
            let _ = std::fs::remove_file(&temp);
            format!("the artifact cannot be sealed: {error}")
        })?;
        Ok(ArtifactSummary { digest: sealed.digest, size_bytes: sealed.size_bytes })
    })
    .await
    .map_err(|error| format!("packing stopped: {error}"))?
}
