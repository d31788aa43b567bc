//! The network a sandbox sees.
//!
//! A sandbox with a network of its own (`bwrap --unshare-net`) has a private loopback and
//! nothing else: the host's loopback (the API, the router, other apps' instances) is not
//! there. The platform reaches into it by making its sockets inside that namespace
//! ([`connect`]): a socket belongs to the namespace it was made in, whatever thread later
//! uses it. A sandbox that may reach the outside gets a user-mode route from `pasta`
//! (Debian's `passt`), which connects out from the host on its behalf and never to the
//! host's loopback (`--no-map-gw`, no port forwarding either way).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// What a sandbox may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's own network: only where this machine cannot give one of its own.
    #[default]
    Host,
    /// A namespace of its own with loopback only; the platform connects into it.
    Own,
    /// A namespace of its own with a route to the outside through `pasta`.
    Outbound,
    /// The namespace at this path, which another sandbox holds (a [`crate::SharedNetwork`]).
    Joined(PathBuf),
}

/// What this machine can give a sandbox, found once at start.
#[derive(Debug, Clone, Default)]
pub struct Support {
    /// Why a sandbox cannot have a namespace of its own here; `None` when it can.
    pub own_unavailable: Option<String>,
    /// Why a sandbox's namespace cannot reach the outside here; `None` when it can.
    pub outbound_unavailable: Option<String>,
}

impl Support {
    /// Whether the platform can make sockets in another network namespace (it needs
    /// `CAP_SYS_ADMIN`) and whether `pasta` runs.
    pub fn detect() -> Support {
        let own_unavailable = can_enter_namespaces().err();
        let outbound_unavailable = match &own_unavailable {
            Some(why) => Some(why.clone()),
            None => [(PASTA, "passt"), ("nsenter", "util-linux")].into_iter().find_map(|(program, package)| {
                match std::process::Command::new(program).arg("--version").output() {
                    Ok(_) => None,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        Some(format!("{program} is not installed (Debian: apt-get install {package})"))
                    }
                    Err(error) => Some(format!("{program} cannot run: {error}")),
                }
            }),
        };
        Support { own_unavailable, outbound_unavailable }
    }

    /// No isolation at all: every sandbox shares the host's network.
    pub fn none(why: &str) -> Support {
        Support { own_unavailable: Some(why.into()), outbound_unavailable: Some(why.into()) }
    }

    /// The network to give a sandbox that `wants` one: the host's where this machine has
    /// no better (said in `/v1/status`).
    pub fn give(&self, wants: Network) -> Network {
        match wants {
            Network::Host => Network::Host,
            Network::Joined(netns) => Network::Joined(netns),
            Network::Own if self.own_unavailable.is_none() => Network::Own,
            Network::Outbound if self.outbound_unavailable.is_none() => Network::Outbound,
            Network::Own | Network::Outbound => Network::Host,
        }
    }
}

pub(crate) const PASTA: &str = "pasta";

/// Entering our own namespace from a fresh thread proves we may enter others.
fn can_enter_namespaces() -> Result<(), String> {
    let own = std::fs::File::open("/proc/self/ns/net").map_err(|error| format!("/proc/self/ns/net: {error}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| rustix::thread::move_into_link_name_space(own.as_fd(), Some(NET)))
            .join()
            .map_err(|_| "the probe thread panicked".to_owned())?
            .map_err(|error| format!("the platform cannot enter network namespaces (it needs CAP_SYS_ADMIN): {error}"))
    })
}

const NET: rustix::thread::LinkNameSpaceType = rustix::thread::LinkNameSpaceType::Network;

/// Connects to `addr` in the network namespace at `netns` (the host's when `None`).
pub async fn connect(netns: Option<&Path>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    match netns {
        None => TcpStream::connect(addr).await,
        Some(netns) => socket_in(netns, addr).await?.connect(addr).await,
    }
}

/// A listener on `addr` inside the namespace at `netns`: what the platform serves there
/// (a resource's endpoint) is reached only from that namespace. The listener keeps the
/// namespace alive: drop it when the sandbox ends.
pub async fn listen_in(netns: &Path, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = socket_in(netns, addr).await?;
    socket.set_reuseaddr(true)?;
    // bwrap brings the namespace's loopback up just after making it: until then binding
    // 127.0.0.1 fails with "cannot assign requested address". It takes milliseconds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match socket.bind(addr) {
            Ok(()) => break,
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrNotAvailable && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
    socket.listen(1024)
}

/// A request to the socket maker: a socket for `addr`, made in the namespace `netns`.
type SocketRequest = (std::fs::File, SocketAddr, tokio::sync::oneshot::Sender<std::io::Result<TcpSocket>>);

/// A TCP socket made inside the namespace at `netns`. One thread of the platform makes
/// them all: it enters the requested namespace before each socket, so whichever it was
/// in before never matters, and it does nothing else.
async fn socket_in(netns: &Path, addr: SocketAddr) -> std::io::Result<TcpSocket> {
    static MAKER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SocketRequest>>> =
        std::sync::OnceLock::new();
    let namespace = std::fs::File::open(netns)?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let maker = MAKER.get_or_init(|| {
        let (requests, incoming) = std::sync::mpsc::channel::<SocketRequest>();
        // Should the thread not start, `incoming` is dropped with it and every request
        // fails with "the socket maker is gone".
        let _ = std::thread::Builder::new().name("tovuk-netns-sockets".into()).spawn(move || {
            for (namespace, addr, answer) in incoming {
                let socket = rustix::thread::move_into_link_name_space(namespace.as_fd(), Some(NET))
                    .map_err(std::io::Error::from)
                    .and_then(|()| if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() });
                let _ = answer.send(socket);
            }
        });
        std::sync::Mutex::new(requests)
    });
    let sent =
        maker.lock().map_err(|_| std::io::Error::other("the socket maker is gone"))?.send((namespace, addr, answer));
    sent.map_err(|_| std::io::Error::other("the socket maker is gone"))?;
    answered.await.map_err(|_| std::io::Error::other("the socket maker is gone"))?
}

/// The network namespace of the sandbox whose `bwrap` is `pid`, when it has one of its own:
/// `bwrap`'s child (the sandbox's first process) lives in it for the sandbox's whole life.
pub fn namespace_of(pid: u32) -> Option<PathBuf> {
    first_process(pid).map(|(_, netns)| netns)
}

/// The sandbox's first process and its network namespace, when not the host's.
pub(crate) fn first_process(pid: u32) -> Option<(u32, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let child: u32 = children.split_whitespace().next()?.parse().ok()?;
    let path = PathBuf::from(format!("/proc/{child}/ns/net"));
    let theirs = std::fs::metadata(&path).ok()?;
    let ours = std::fs::metadata("/proc/self/ns/net").ok()?;
    (theirs.ino() != ours.ino()).then_some((child, path))
}

/// Gives the sandbox whose first process is `first` a route to the outside with `pasta`,
/// and returns once it is up. `pasta` runs inside the sandbox's pid namespace (entered with
/// util-linux `nsenter`), so it ends when the sandbox does, whoever ends it, platform or not.
pub(crate) async fn open_outbound(first: u32, netns: &Path, outlives_platform: bool) -> std::io::Result<()> {
    static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ready = std::env::temp_dir().join(format!("tovuk-pasta-{}-{n}.pid", std::process::id()));
    let said = ready.with_extension("err");
    let _ = std::fs::remove_file(&ready);
    let mut command = tokio::process::Command::new("nsenter");
    command
        .arg(format!("--target={first}"))
        .args(["--pid", "--", PASTA, "--foreground", "--config-net", "--no-map-gw", "--quiet", "--netns-only"])
        .arg("--netns")
        .arg(netns)
        // No port of the host reaches in and none of the namespace reaches the host.
        .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
        // As root, pasta would drop to `nobody` before joining, and nobody may not.
        .args(["--runas", "0:0"])
        // Written once the namespace is configured.
        .arg("--pid")
        .arg(&ready)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&said)?);
    if outlives_platform {
        command.process_group(0);
    } else {
        command.kill_on_drop(true);
    }
    let mut pasta = command.spawn()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(500);
    let outcome = loop {
        if std::fs::metadata(&ready).is_ok_and(|meta| meta.len() > 0) {
            break Ok(());
        }
        if let Ok(Some(status)) = pasta.try_wait() {
            let said = std::fs::read_to_string(&said).unwrap_or_default();
            let said = said.lines().filter(|line| !line.contains("syslog")).collect::<Vec<_>>().join("; ");
            break Err(std::io::Error::other(format!("{} ({status}): {said}", crate::NETWORK_FAILED)));
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = pasta.start_kill();
            break Err(std::io::Error::other("pasta did not configure the sandbox's network within 10 s"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(2));
    };
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(&said);
    outcome
}

#[cfg(test)]
mod tests {
    /// A listener in a namespace whose loopback is not up yet (as a new sandbox's, a moment
    /// after bwrap makes it) binds, and serves once the loopback is up.
    #[tokio::test]
    async fn a_listener_waits_for_the_namespace_loopback_to_come_up() {
        let name = format!("tovuk-test-lo-{}", std::process::id());
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        assert!(ip(&["netns", "add", &name]), "ip netns add needs root and iproute2 (scripts/test installs it)");
        let netns = std::path::PathBuf::from(format!("/run/netns/{name}"));
        let up = {
            let name = name.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                std::process::Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]).status()
            })
        };
        let listened = super::listen_in(&netns, "127.0.0.1:6379".parse().expect("addr")).await;
        let _ = up.await;
        let _ = ip(&["netns", "delete", &name]);
        let listener = listened.expect("bound once the loopback was up");
        assert_eq!(listener.local_addr().expect("addr").port(), 6379);
    }
}
