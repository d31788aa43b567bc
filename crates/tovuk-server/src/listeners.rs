//! Listening sockets that outlive the server process.
//!
//! A restarted server (upgrade, crash, `kill -9`) would otherwise leave its ports closed
//! until the new process binds them, and every client connecting meanwhile is refused. So
//! the server hands its listening sockets to a *keeper*: a small process of the same binary
//! (`tovuk server --hold-listeners`) that holds duplicates of them and nothing else. While no
//! server runs, the kernel keeps completing connections into the sockets' backlog; the next
//! server takes the sockets back from the keeper and answers them.
//!
//! The two talk over `<data>/listeners.sock` (the data directory is 0700; the keeper also
//! checks the peer's uid). Each message is one `sendmsg`: text lines ending in `end`, with
//! the sockets, in the order of their lines, as `SCM_RIGHTS`:
//!   server -> keeper  `give`                     keeper -> server  `<role> <addr>`... `end` + sockets
//!   server -> keeper  `keep`, `<role> <addr>`..., `end` + sockets   keeper -> server  `ok`, `end`
//!   server -> keeper  `quit`                     the keeper closes everything and exits
//! The server keeps its connection open while it runs. A keeper with no server connected
//! for [`KEEP_FOR`] exits (the ports are refused again, as a stopped server's should be),
//! and so does one whose socket file is gone or replaced (its data directory was removed).

use anyhow::Context;
use rustix::event::{PollFd, PollFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a keeper holds the sockets with no server connected.
pub const KEEP_FOR: Duration = Duration::from_secs(30);
/// The most sockets one message carries.
const MAX_SOCKETS: usize = 8;
/// The longest message.
const MAX_MESSAGE: usize = 4096;

/// A listener the server wants: its role, the address it was asked for, and the flag that sets it.
pub struct Wanted<'a> {
    pub role: &'a str,
    pub address: &'a str,
    pub flag: &'a str,
}

/// A listening socket and the address it is bound to.
pub type Bound = (TcpListener, SocketAddr);

/// The server's end of its keeper: held for as long as the server runs.
pub struct KeeperLink {
    stream: UnixStream,
}

impl KeeperLink {
    /// Tells the keeper to close the sockets and exit (a full stop: nothing should queue).
    pub fn release(self) {
        if let Err(error) = send(&self.stream, &["quit"], &[]) {
            tracing::warn!(%error, "cannot tell the listener keeper to let go");
        }
    }
}

/// The wanted listeners, taken back from the keeper where it holds one on a matching address
/// and bound otherwise; then all of them are handed to the keeper (started when none runs).
/// Without a keeper (it cannot start) the server runs as before, with a warning.
pub fn take_or_bind(socket: &Path, wanted: &[Wanted<'_>]) -> anyhow::Result<(Vec<Bound>, Option<KeeperLink>)> {
    let mut link = connect(socket).ok();
    let mut kept = match &link {
        Some(stream) => match request_sockets(stream) {
            Ok(kept) => kept,
            Err(error) => {
                tracing::warn!(%error, "the listener keeper did not hand over its sockets; binding anew");
                link = None;
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut listeners = Vec::new();
    for want in wanted {
        let taken = kept.iter().position(|(role, listener)| {
            role == want.role && listener.local_addr().is_ok_and(|local| matches(want.address, local))
        });
        let listener = match taken {
            Some(index) => {
                let (_, listener) = kept.swap_remove(index);
                tracing::info!(role = want.role, "listening socket taken over from the previous run");
                listener
            }
            None => TcpListener::bind(want.address).with_context(|| {
                format!(
                    "the {role} role cannot listen on `{address}`; pass {flag} with a free address (e.g. {flag} 127.0.0.1:0) or stop what holds it",
                    role = want.role,
                    address = want.address,
                    flag = want.flag,
                )
            })?,
        };
        let local = listener.local_addr()?;
        listeners.push((listener, local));
    }
    drop(kept);
    if link.is_none() {
        link = match start_keeper(socket) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "no listener keeper: a restart will refuse connections until the new server listens");
                None
            }
        };
    }
    let link = link.and_then(|stream| {
        let lines: Vec<String> =
            wanted.iter().zip(&listeners).map(|(want, (_, local))| format!("{} {local}", want.role)).collect();
        let mut message: Vec<&str> = vec!["keep"];
        message.extend(lines.iter().map(String::as_str));
        let fds: Vec<_> = listeners.iter().map(|(listener, _)| listener.as_fd()).collect();
        match send(&stream, &message, &fds).and_then(|()| receive(&stream)) {
            Ok((reply, _)) if reply.first().map(String::as_str) == Some("ok") => Some(KeeperLink { stream }),
            Ok((reply, _)) => {
                tracing::warn!(?reply, "the listener keeper refused the sockets");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "cannot hand the listening sockets to the keeper");
                None
            }
        }
    });
    Ok((listeners, link))
}

/// Whether a socket bound to `local` serves what `address` asks for: the same IP, and the
/// same port unless any port (0) was asked for.
fn matches(address: &str, local: SocketAddr) -> bool {
    let Ok(candidates) = address.to_socket_addrs() else { return false };
    candidates
        .into_iter()
        .any(|wanted| wanted.ip() == local.ip() && (wanted.port() == 0 || wanted.port() == local.port()))
}

fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(stream)
}

fn request_sockets(stream: &UnixStream) -> anyhow::Result<Vec<(String, TcpListener)>> {
    send(stream, &["give"], &[])?;
    let (lines, fds) = receive(stream)?;
    anyhow::ensure!(lines.len() == fds.len(), "{} roles for {} sockets", lines.len(), fds.len());
    Ok(lines
        .into_iter()
        .zip(fds)
        .map(|(line, fd)| (line.split(' ').next().unwrap_or_default().to_owned(), TcpListener::from(fd)))
        .collect())
}

/// Starts a keeper of this binary in a session of its own, and connects to it.
fn start_keeper(socket: &Path) -> anyhow::Result<UnixStream> {
    use std::os::unix::process::CommandExt;
    anyhow::ensure!(
        socket.as_os_str().len() < 100,
        "the data directory's path is too long for a unix socket ({})",
        socket.display()
    );
    let data_dir = socket.parent().context("the keeper's socket has no directory")?;
    let exe = std::env::current_exe().context("cannot find the tovuk binary")?;
    let mut keeper = std::process::Command::new(exe)
        .args(["server", "--hold-listeners", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the listener keeper")?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Ok(stream) = connect(socket) {
            // Reaped by nobody else: the keeper outlives this process on purpose.
            std::thread::spawn(move || keeper.wait());
            return Ok(stream);
        }
        if let Ok(Some(status)) = keeper.try_wait() {
            anyhow::bail!("the listener keeper exited at start ({status})");
        }
        anyhow::ensure!(Instant::now() < deadline, "the listener keeper did not answer within 3 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn send(stream: &UnixStream, lines: &[&str], fds: &[std::os::fd::BorrowedFd<'_>]) -> std::io::Result<()> {
    let mut text = String::new();
    for line in lines.iter().chain(&["end"]) {
        text.push_str(line);
        text.push('\n');
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many sockets for one message"));
    }
    let sent = rustix::net::sendmsg(stream, &[IoSlice::new(text.as_bytes())], &mut control, SendFlags::NOSIGNAL)?;
    if sent != text.len() {
        return Err(std::io::Error::other("the message was cut short"));
    }
    Ok(())
}

/// One message: its lines before `end`, and the sockets that came with it.
fn receive(stream: &UnixStream) -> std::io::Result<(Vec<String>, Vec<OwnedFd>)> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received =
        rustix::net::recvmsg(stream, &mut [IoSliceMut::new(&mut buffer)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    if received.bytes == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let text = String::from_utf8_lossy(&buffer[..received.bytes]);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.pop().as_deref() != Some("end") {
        return Err(std::io::Error::other("a message without its end"));
    }
    Ok((lines, fds))
}

/// `tovuk server --hold-listeners`: the keeper. Holds what servers hand it until none has
/// been connected for [`KEEP_FOR`], its socket file is gone, or a server says `quit`.
pub fn hold(data_dir: &Path) -> anyhow::Result<()> {
    let socket = tovuk_types::DataLayout::new(data_dir).listeners_socket();
    // A socket file nobody answers on is left from a keeper that died: take its place.
    if socket.exists() && UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
    }
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let inode = std::fs::metadata(&socket)?.ino();
    let uid = rustix::process::getuid();
    let mut held: Vec<(String, OwnedFd)> = Vec::new();
    let mut servers: Vec<UnixStream> = Vec::new();
    let mut alone_since = Some(Instant::now());
    let mut quit = false;
    loop {
        if quit
            || alone_since.is_some_and(|since| since.elapsed() >= KEEP_FOR)
            || std::fs::metadata(&socket).ok().map(|meta| meta.ino()) != Some(inode)
        {
            break;
        }
        let mut fds = vec![PollFd::new(&listener, PollFlags::IN)];
        fds.extend(servers.iter().map(|server| PollFd::new(server, PollFlags::IN)));
        let timeout = rustix::event::Timespec { tv_sec: 1, tv_nsec: 0 };
        if rustix::event::poll(&mut fds, Some(&timeout)).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
        drop(fds);
        let mut gone = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            if !ready[index + 1] {
                continue;
            }
            match receive(server) {
                Ok((lines, fds)) => match lines.first().map(String::as_str) {
                    Some("give") => {
                        let lines: Vec<&str> = held.iter().map(|(line, _)| line.as_str()).collect();
                        let fds: Vec<_> = held.iter().map(|(_, fd)| fd.as_fd()).collect();
                        if send(server, &lines, &fds).is_err() {
                            gone.push(index);
                        }
                    }
                    Some("keep") if lines.len() - 1 == fds.len() && fds.len() <= MAX_SOCKETS => {
                        held = lines[1..].iter().cloned().zip(fds).collect();
                        if send(server, &["ok"], &[]).is_err() {
                            gone.push(index);
                        }
                    }
                    Some("quit") => quit = true,
                    _ => gone.push(index),
                },
                Err(_) => gone.push(index),
            }
        }
        for index in gone.into_iter().rev() {
            servers.swap_remove(index);
        }
        if ready[0]
            && let Ok((server, _)) = listener.accept()
        {
            let peer = rustix::net::sockopt::socket_peercred(&server);
            if peer.is_ok_and(|peer| peer.uid == uid) && server.set_nonblocking(false).is_ok() {
                servers.push(server);
            }
        }
        alone_since = if servers.is_empty() { Some(alone_since.unwrap_or_else(Instant::now)) } else { None };
    }
    if std::fs::metadata(&socket).ok().map(|meta| meta.ino()) == Some(inode) {
        let _ = std::fs::remove_file(&socket);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn a_kept_socket_serves_its_address_or_any_port_of_its_ip() {
        let local = "127.0.0.1:4100".parse().expect("addr");
        assert!(matches("127.0.0.1:4100", local));
        assert!(matches("127.0.0.1:0", local), "any port");
        assert!(!matches("127.0.0.1:4101", local));
        assert!(!matches("0.0.0.0:4100", local), "another IP");
        assert!(!matches("not an address", local));
    }
}
