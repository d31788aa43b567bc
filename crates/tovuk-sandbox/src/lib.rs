//! Process isolation. Every build and app process the platform starts goes through here.
//!
//! The sandbox is bubblewrap (`bwrap`): a read-only root made of the host's `/usr` and
//! a few named files of `/etc`, private `/proc`, `/dev` and `/tmp`, new user, pid, ipc,
//! uts and cgroup namespaces, and an unprivileged uid. Nothing else of the host is visible:
//! not the platform's data dir, not its keys, not other apps' repositories. Killing the
//! `bwrap` process ends the pid namespace, so every process the job started (daemons
//! included) dies with it. A build dies with the platform (`--die-with-parent`); an app
//! outlives it ([`SandboxSpec::outlives_platform`]), so a platform restart stops no app.

pub mod cgroup;
pub mod network;
pub mod volume;

pub use network::Network;

use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Moves the shell into each `cgroup.procs` file given before `--`, then becomes the rest:
/// the sandbox is in its group before `bwrap` starts anything. The first argument is the
/// platform's pid, or `-`: a sandbox that dies with the platform (`--die-with-parent`)
/// must not start once the platform is gone, as its death signal would never come.
const ENTER_GROUP: &str = r#"parent=$1; shift
while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift
if [ "$parent" != - ]; then read -r _ _ _ now _ < /proc/$$/stat; [ "$now" = "$parent" ] || exit 125; fi
exec "$@""#;

/// Inside a sandbox that may reach the outside: waits for the platform's `go` on stdin
/// (its route is up), then becomes the command. A platform gone meanwhile closes stdin
/// instead, and the command never runs (bwrap's own `--block-fd` would run it on EOF).
const AWAIT_NETWORK: &str = r#"read -r go && [ "$go" = go ] || exit 125
exec "$@""#;

/// The unprivileged identity sandboxed processes run as.
/// How an error starts when `pasta` could not give a sandbox its network: a failure of the
/// machine for a moment (the sandbox may be started again), not of the command.
pub const NETWORK_FAILED: &str = "pasta could not give the sandbox a network";

pub const SANDBOX_UID: u32 = 1000;

/// Host files of `/etc` a process needs to resolve names, find certificates and run
/// Debian's alternatives; bound read-only when they exist. Nothing else of `/etc`.
const HOST_ETC: [&str; 10] = [
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ld.so.cache",
    "/etc/localtime",
];

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("bubblewrap (`bwrap`) is not installed; install it (Debian: apt-get install bubblewrap)")]
    Missing,
    #[error(
        "bubblewrap cannot create a sandbox here: {0}; user namespaces must be enabled (sysctl kernel.unprivileged_userns_clone=1)"
    )]
    Unusable(String),
}

/// What one sandboxed process sees.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    /// Host directory bound read-write at `/workspace` (none when empty).
    pub workspace: PathBuf,
    /// Working directory inside the sandbox.
    pub workdir: String,
    /// Extra host paths bound read-write: (host, inside).
    pub binds: Vec<(PathBuf, String)>,
    /// Extra host paths bound read-only: (host, inside), e.g. toolchains.
    pub ro_binds: Vec<(PathBuf, String)>,
    /// The whole environment: the host's is not inherited.
    pub env: Vec<(String, String)>,
    /// What the process may reach.
    pub network: Network,
    /// The sandbox keeps running when the platform process exits (an app instance, which
    /// the next start adopts); otherwise it dies with it (a build).
    pub outlives_platform: bool,
    /// The control group the sandbox runs in, with its limits.
    pub cgroup: Option<cgroup::Group>,
    /// The size of the private `/tmp` (a tmpfs; unlimited when `None`).
    pub tmp_bytes: Option<u64>,
    /// With a network of its own, the command waits until the platform has made what the
    /// sandbox reaches in it (its resources' endpoints: [`start_with`]'s `prepare`).
    pub held: bool,
}

impl SandboxSpec {
    /// Whether the command waits for the platform's `go` before it runs (`AWAIT_NETWORK`).
    fn awaits_go(&self) -> bool {
        self.network == Network::Outbound || (self.held && self.network == Network::Own)
    }
}

/// `/bin`, `/lib`... are symlinks into `/usr` on merged-usr systems; elsewhere they are
/// bound read-only like `/usr`.
fn top_level_dirs(args: &mut Vec<String>) {
    for dir in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(dir);
        match std::fs::read_link(&host) {
            Ok(target) => {
                args.extend(["--symlink".into(), target.display().to_string(), host.display().to_string()]);
            }
            Err(_) if host.is_dir() => {
                args.extend(["--ro-bind".into(), host.display().to_string(), host.display().to_string()]);
            }
            Err(_) => {}
        }
    }
}

/// The `bwrap` arguments for `spec`, up to (not including) the command.
pub fn bwrap_args(spec: &SandboxSpec) -> Vec<String> {
    let mut args: Vec<String> = if spec.outlives_platform { Vec::new() } else { vec!["--die-with-parent".into()] };
    args.extend(
        [
            "--new-session",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "tovuk",
        ]
        .into_iter()
        .map(str::to_owned),
    );
    match spec.network {
        Network::Host => {}
        // The command waits for its route to the outside (`AWAIT_NETWORK`).
        Network::Own | Network::Outbound => args.push("--unshare-net".into()),
        // Entered before bwrap starts (see `command`).
        Network::Joined(_) => {}
    }
    args.extend(["--uid".into(), SANDBOX_UID.to_string(), "--gid".into(), SANDBOX_UID.to_string()]);
    args.extend(["--ro-bind".into(), "/usr".into(), "/usr".into()]);
    top_level_dirs(&mut args);
    for path in HOST_ETC {
        if Path::new(path).exists() {
            args.extend(["--ro-bind".into(), path.into(), path.into()]);
        }
    }
    args.extend(["--proc".into(), "/proc".into(), "--dev".into(), "/dev".into()]);
    if let Some(bytes) = spec.tmp_bytes {
        args.extend(["--size".into(), bytes.to_string()]);
    }
    args.extend(["--tmpfs".into(), "/tmp".into()]);
    if !spec.workspace.as_os_str().is_empty() {
        args.extend(["--bind".into(), spec.workspace.display().to_string(), "/workspace".into()]);
    }
    for (host, inside) in &spec.binds {
        args.extend(["--bind".into(), host.display().to_string(), inside.clone()]);
    }
    for (host, inside) in &spec.ro_binds {
        args.extend(["--ro-bind".into(), host.display().to_string(), inside.clone()]);
    }
    // Everything outside the binds is read-only: a write lands nowhere.
    args.extend(["--remount-ro".into(), "/".into()]);
    args.extend(["--chdir".into(), spec.workdir.clone()]);
    args
}

/// A command that runs `program args...` inside the sandbox. The caller sets up stdio;
/// killing the returned child's process kills everything inside. A sandbox that
/// outlives the platform is in a process group of its own, so a signal to the platform's
/// group (a Ctrl-C) does not reach it, and dropping the handle leaves it running.
pub fn command(spec: &SandboxSpec, program: &str, args: &[&str]) -> Command {
    // `bwrap`, in the namespace it joins when it joins one (util-linux `nsenter`).
    let bwrap = bwrap_path().display().to_string();
    let launcher: Vec<String> = match &spec.network {
        Network::Joined(netns) => vec!["nsenter".into(), format!("--net={}", netns.display()), "--".into(), bwrap],
        _ => vec![bwrap],
    };
    let mut command = match &spec.cgroup {
        // Entering a v1 group can take milliseconds: a sandbox that dies with the platform
        // gets its death signal first (util-linux `setpriv`, kept across the execs).
        Some(group) if !spec.outlives_platform => {
            let mut command = Command::new("setpriv");
            command
                .args(["--pdeathsig", "KILL", "--", "/bin/sh", "-c", ENTER_GROUP, "tovuk-sandbox"])
                .arg(std::process::id().to_string())
                .args(group.procs_files())
                .arg("--")
                .args(&launcher);
            command
        }
        group => grouped(group.as_ref(), &launcher),
    };
    // The environment reaches the sandbox as bwrap's own (which it passes on), never as
    // arguments: a command line is world-readable in /proc, an environment is not.
    command.args(bwrap_args(spec)).arg("--");
    if spec.awaits_go() {
        command.args(["/bin/sh", "-c", AWAIT_NETWORK, "tovuk-sandbox"]);
    }
    command.arg(program).args(args).env_clear().envs(spec.env.iter().map(|(key, value)| (key, value)));
    if spec.outlives_platform {
        command.process_group(0);
    } else {
        command.kill_on_drop(true);
    }
    command
}

/// A sandbox that is running.
#[derive(Debug)]
pub struct Started {
    pub child: tokio::process::Child,
    /// Its network namespace, where the platform reaches it (`None`: the host's).
    pub netns: Option<PathBuf>,
}

/// Starts `command` (made by [`command`] from `spec`) and gives it its network: the command
/// runs once a sandbox that may reach the outside has its route there. A sandbox with only
/// a network of its own is not waited for: [`network::namespace_of`] finds its namespace
/// once `bwrap` has made it.
pub async fn start(spec: &SandboxSpec, command: Command) -> std::io::Result<Started> {
    start_with(spec, command, async |_| Ok(())).await
}

/// [`start`], and for a sandbox that is `held`, `prepare` runs with its network namespace
/// (after its route out, if any) before the command runs.
pub async fn start_with(
    spec: &SandboxSpec,
    mut command: Command,
    prepare: impl AsyncFnOnce(PathBuf) -> std::io::Result<()>,
) -> std::io::Result<Started> {
    if spec.awaits_go() {
        command.stdin(std::process::Stdio::piped());
    }
    let mut child = command.spawn()?;
    let Some(pid) = child.id() else { return Ok(Started { child, netns: None }) };
    if !spec.awaits_go() {
        return Ok(Started { child, netns: None });
    }
    // A command that ends at once (a crash on start) ends its sandbox before it can be
    // found: its exit is what the caller needs to see, not a missing namespace.
    let ended = |child: &mut tokio::process::Child| matches!(child.try_wait(), Ok(Some(_)));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(200);
    let (first, netns) = loop {
        if let Some(found) = network::first_process(pid) {
            break found;
        }
        if ended(&mut child) {
            return Ok(Started { child, netns: None });
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(std::io::Error::other("the sandbox made no network namespace within 10 s"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(1));
    };
    {
        let opened = async {
            if spec.network == Network::Outbound {
                // pasta is a process of its own: one that fails to start is tried once more.
                if let Err(first_try) = network::open_outbound(first, &netns, spec.outlives_platform).await {
                    if ended(&mut child) {
                        return Err(first_try);
                    }
                    network::open_outbound(first, &netns, spec.outlives_platform).await?;
                }
            }
            if spec.held {
                prepare(netns.clone()).await?;
            }
            // `AWAIT_NETWORK` runs the command; then the command's stdin is at its end.
            if let Some(mut go) = child.stdin.take() {
                use tokio::io::AsyncWriteExt;
                go.write_all(b"go\n").await?;
            }
            Ok::<_, std::io::Error>(())
        };
        if let Err(error) = opened.await {
            if ended(&mut child) {
                return Ok(Started { child, netns: None });
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(error);
        }
    }
    Ok(Started { child, netns: Some(netns) })
}

/// A command running `argv` inside `group` (entered before it starts), or bare.
fn grouped(group: Option<&cgroup::Group>, argv: &[String]) -> Command {
    match (group, argv) {
        (Some(group), argv) => {
            let mut command = Command::new("/bin/sh");
            command.args(["-c", ENTER_GROUP, "tovuk-sandbox", "-"]).args(group.procs_files()).arg("--").args(argv);
            command
        }
        (None, [program, args @ ..]) => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
        (None, []) => Command::new("bwrap"),
    }
}

/// A network namespace with a route to the outside that sandboxes join one after another
/// (the phases of a build, as [`Network::Joined`]): pasta starts once for all of them. It
/// is held by a sandbox that only waits, and ends (with its route) when dropped.
#[derive(Debug)]
pub struct SharedNetwork {
    _holder: tokio::process::Child,
    pub netns: PathBuf,
}

/// Opens a [`SharedNetwork`] held in `spec`'s control group, dying with the platform as
/// `spec` does.
pub async fn open_shared_network(spec: &SandboxSpec) -> std::io::Result<SharedNetwork> {
    let holder = SandboxSpec {
        workdir: "/".into(),
        network: Network::Outbound,
        outlives_platform: spec.outlives_platform,
        cgroup: spec.cgroup.clone(),
        tmp_bytes: Some(1 << 20),
        ..SandboxSpec::default()
    };
    let mut command = command(&holder, "/bin/sleep", &["infinity"]);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let started = start(&holder, command).await?;
    let netns = started.netns.ok_or_else(|| std::io::Error::other("the network holder ended at once"))?;
    Ok(SharedNetwork { _holder: started.child, netns })
}

/// `bwrap` as found on this process's `PATH` (the sandbox's own environment may have none).
fn bwrap_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/bwrap"))
}

/// The argv that runs an app's `[run] command` so that SIGTERM reaches the app itself.
///
/// A simple command (one program and its words, `$VAR`s and quotes allowed) is `exec`ed by
/// the shell: the app replaces it and gets the whole grace period. Anything else (`a && b`,
/// pipes, redirections, assignments) keeps a shell that waits for its child instead of
/// dying on SIGTERM (which would end the sandbox at once), then exits.
pub fn app_argv(command: &str) -> Vec<String> {
    const OPERATORS: &[char] = &[';', '&', '|', '<', '>', '(', ')', '`', '\n', '\\'];
    const KEYWORDS: &[&str] = &["if", "while", "until", "for", "case", "{", "!", "exec", "trap"];
    let first = command.split_whitespace().next().unwrap_or_default();
    let simple = !command.contains(OPERATORS) && !KEYWORDS.contains(&first) && !first.contains('=');
    let script = if simple { format!("exec {command}") } else { format!("trap 'exit 143' TERM INT\n{command}") };
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// Checks that bubblewrap exists and can make a sandbox on this machine.
pub async fn check_available() -> Result<(), SandboxError> {
    let workspace = std::env::temp_dir();
    let spec = SandboxSpec { workspace, workdir: "/".into(), ..SandboxSpec::default() };
    let output = match command(&spec, "/bin/true", &[]).output().await {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(SandboxError::Missing),
        Err(error) => return Err(SandboxError::Unusable(error.to_string())),
    };
    if output.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Unusable(String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(spec: &SandboxSpec, script: &str) -> (bool, String) {
        let output = command(spec, "/bin/sh", &["-c", script]).output().await.expect("bwrap runs");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    fn spec(workspace: &Path) -> SandboxSpec {
        std::fs::create_dir_all(workspace.join("source")).expect("mkdir");
        SandboxSpec {
            workspace: workspace.to_owned(),
            workdir: "/workspace/source".into(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into()), ("ONLY".into(), "this".into())],
            ..SandboxSpec::default()
        }
    }

    #[tokio::test]
    async fn the_sandbox_sees_its_workspace_and_nothing_of_the_host() {
        check_available().await.expect("bubblewrap works here (scripts/test installs it)");
        let host = tempfile::tempdir().expect("tempdir");
        let secret = host.path().join("keys");
        std::fs::create_dir_all(&secret).expect("mkdir");
        std::fs::write(secret.join("build.key"), "secret").expect("write");
        let workspace = host.path().join("work");
        let spec = spec(&workspace);
        let (ok, out) = run(&spec, "pwd; id -u; echo $ONLY; env | wc -l; echo hi > out.txt").await;
        assert!(ok, "{out}");
        assert!(out.starts_with("/workspace/source\n1000\nthis\n"), "{out}");
        assert_eq!(std::fs::read_to_string(workspace.join("source/out.txt")).expect("written"), "hi\n");

        let script = format!("cat {}/build.key", secret.display());
        let (ok, _) = run(&spec, &script).await;
        assert!(!ok, "the host's files outside the binds are not visible");
        for target in ["/usr/x", "/etc/x", "/x"] {
            let (ok, _) = run(&spec, &format!("touch {target}")).await;
            assert!(!ok, "{target} is not writable");
        }
        let (ok, out) = run(&spec, "cat /etc/shadow").await;
        assert!(!ok, "{out}");
    }

    #[test]
    fn simple_commands_are_execed_and_compound_ones_keep_a_waiting_shell() {
        for simple in ["./server", "python3 -m http.server $PORT", "node 'my app.js' --port=$PORT"] {
            assert_eq!(app_argv(simple)[2], format!("exec {simple}"), "{simple}");
        }
        for compound in ["a && b", "a; b", "a | b", "PORT=1 a", "a > log", "exec a", "if true; then a; fi", "$(a)"] {
            assert!(app_argv(compound)[2].starts_with("trap 'exit 143' TERM INT\n"), "{compound}");
        }
    }

    #[tokio::test]
    async fn an_app_gets_its_sigterm_however_its_command_is_written() {
        let host = tempfile::tempdir().expect("tempdir");
        let spec = spec(&host.path().join("work"));
        // The app traps SIGTERM, takes a moment, and leaves a mark: the sandbox must wait for it.
        let app = "trap 'sleep 0.3; echo graceful > /workspace/source/mark; exit 0' TERM; while :; do sleep 0.05; done";
        std::fs::write(host.path().join("work/source/app.sh"), app).expect("write");
        for command in ["sh app.sh", "true && sh app.sh"] {
            let _ = std::fs::remove_file(host.path().join("work/source/mark"));
            let argv = app_argv(command);
            let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
            let mut child = super::command(&spec, &argv[0], &args).spawn().expect("spawn");
            let pid = child.id().expect("pid");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            for victim in descendants_of(pid) {
                let _ = std::process::Command::new("kill").args(["-TERM", &victim.to_string()]).status();
            }
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await;
            let mark = std::fs::read_to_string(host.path().join("work/source/mark")).unwrap_or_default();
            assert_eq!(mark, "graceful\n", "`{command}`: the app was killed before its handler finished");
        }
    }

    /// The processes below `root` that are not `bwrap` itself, read from /proc.
    fn descendants_of(root: u32) -> Vec<u32> {
        let mut found = vec![root];
        let mut result = Vec::new();
        for _ in 0..8 {
            for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
                let Some((head, tail)) = stat.rsplit_once(')') else { continue };
                let ppid = tail.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()).unwrap_or(0);
                if found.contains(&ppid) && !found.contains(&pid) {
                    found.push(pid);
                    if !head.ends_with("(bwrap") {
                        result.push(pid);
                    }
                }
            }
        }
        result
    }

    /// Whether any process's command line contains `needle`, read from /proc.
    fn any_process_named(needle: &str) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else { return false };
        entries.flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
    }

    #[tokio::test]
    async fn a_sandbox_in_its_group_is_held_to_its_memory_pids_and_tmp() {
        check_available().await.expect("bubblewrap works here (scripts/test installs it)");
        let cgroups = cgroup::Cgroups::detect();
        let enforced = cgroups.enforced();
        if !(enforced.memory && enforced.pids) {
            // Said in /v1/status on such a machine; nothing to hold here.
            eprintln!("memory and pids cannot be limited on this machine: {cgroups:?}");
            return;
        }
        let host = tempfile::tempdir().expect("tempdir");
        let name = format!("test-{}", std::process::id());
        let limits = cgroup::Limits { memory_bytes: Some(32 << 20), cpu_cores: Some(0.5), pids: Some(32) };
        let group = cgroups.create(&name, &limits).expect("create").expect("group");
        let mut spec = spec(&host.path().join("work"));
        spec.cgroup = Some(group.clone());
        spec.tmp_bytes = Some(4 << 20);

        // Past its memory: killed by the kernel inside the sandbox, and counted.
        let (ok, out) = run(&spec, "perl -e '$x = \"a\" x 200000000; print \"survived\"'").await;
        assert!(!ok && !out.contains("survived"), "{out}");
        assert!(group.oom_kills() >= 1, "no OOM kill recorded");
        // Past its pids: fork fails inside, nothing else is touched.
        let (_, out) = run(&spec, "for i in $(seq 100); do sleep 5 & done 2>&1 | head -3; echo done").await;
        assert!(out.contains("done") && (out.contains("fork") || out.contains("Resource")), "{out}");
        // Past its /tmp: the write fails with no space.
        let (ok, out) = run(&spec, "head -c 8000000 /dev/zero > /tmp/fill").await;
        assert!(!ok && out.contains("No space"), "{out}");
        // Its counters are what the runner bills from.
        if enforced.cpu {
            assert!(group.cpu_nanos().is_some_and(|nanos| nanos > 0), "no CPU time counted");
        }
        assert!(group.memory_bytes().is_some(), "no memory figure");
        group.remove();
        assert!(group.pids().is_empty());
    }

    #[tokio::test]
    async fn a_sandbox_with_its_own_network_is_reached_only_by_the_platform() {
        check_available().await.expect("bubblewrap works here (scripts/test installs it)");
        if let Some(why) = network::Support::detect().own_unavailable {
            eprintln!("no network of its own here: {why}");
            return;
        }
        let host = tempfile::tempdir().expect("tempdir");
        let mut spec = spec(&host.path().join("work"));
        spec.network = Network::Own;
        // A port that is free on the host, so a connection there is the sandbox's or nobody's.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let host_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("host listener");
        let host_addr = host_listener.local_addr().expect("addr");
        let script = format!(
            "perl -MIO::Socket::INET -e 'my $c = IO::Socket::INET->new(PeerAddr => \"{host_addr}\", Timeout => 1); \
             print STDERR ($c ? \"reached the host\\n\" : \"no host\\n\"); \
             my $s = IO::Socket::INET->new(LocalAddr => \"127.0.0.1:{port}\", Listen => 1, ReuseAddr => 1) or die; \
             my $k = $s->accept; print $k \"inside\\n\"; close $k'"
        );
        let mut command = command(&spec, "/bin/sh", &["-c", &script]);
        command.stderr(std::process::Stdio::piped());
        let started = start(&spec, command).await.expect("start");
        let pid = started.child.id().expect("pid");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let mut answer = String::new();
        for _ in 0..100 {
            assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the sandbox's port is open on the host");
            let Some(netns) = network::namespace_of(pid) else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            if let Ok(mut stream) = network::connect(Some(&netns), addr).await {
                use tokio::io::AsyncReadExt;
                stream.read_to_string(&mut answer).await.expect("read");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(answer, "inside\n");
        let output = started.child.wait_with_output().await.expect("exit");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "no host\n");
    }

    #[tokio::test]
    async fn killing_the_sandbox_kills_everything_it_started() {
        let host = tempfile::tempdir().expect("tempdir");
        let spec = spec(&host.path().join("work"));
        let marker = "tovuk-sandbox-test-sleeper-4242";
        let script = format!("(exec -a {marker} sleep 300 &) ; sleep 300");
        let mut child = command(&spec, "/bin/sh", &["-c", &script]).spawn().expect("spawn");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(any_process_named(marker), "the daemon started");
        child.start_kill().expect("kill");
        let _ = child.wait().await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!any_process_named(marker), "a process outlived its sandbox");
    }
}
