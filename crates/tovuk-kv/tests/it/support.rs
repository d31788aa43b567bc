//! Test peers: an in-process `Kv` on a loopback port, Debian's `redis-server`, a gate, and a raw
//! RESP client that returns each reply's exact bytes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tovuk_kv::{Gate, Keyspace, Kv};

/// Passwords map to keyspaces; `scope`, when set on an entry, must match the connection's.
/// Writes beyond `write_cap` are refused.
#[derive(Default)]
pub struct TestGate {
    pub passwords: HashMap<String, (Keyspace, Option<String>)>,
    pub write_cap: Option<u64>,
    pub writes: AtomicU64,
    pub reads: AtomicU64,
}

impl TestGate {
    pub fn with(mut self, password: &str, keyspace: &str, scope: Option<&str>) -> Self {
        let ks = Keyspace { id: keyspace.into(), app: format!("app_{keyspace}") };
        self.passwords.insert(password.into(), (ks, scope.map(Into::into)));
        self
    }
}

impl Gate for TestGate {
    fn authenticate(&self, scope: Option<&str>, _username: Option<&str>, password: &str) -> Option<Keyspace> {
        let (ks, required) = self.passwords.get(password)?;
        match (scope, required) {
            (Some(s), Some(r)) if s != r => None,
            _ => Some(ks.clone()),
        }
    }

    fn admit(&self, _keyspace: &Keyspace, reads: u64, writes: u64) -> Result<(), String> {
        if let Some(cap) = self.write_cap
            && writes > 0
            && self.writes.load(Ordering::SeqCst) + writes > cap
        {
            return Err(format!("write cap of {cap} writes reached; raise the plan's kv write limit"));
        }
        self.reads.fetch_add(reads, Ordering::SeqCst);
        self.writes.fetch_add(writes, Ordering::SeqCst);
        Ok(())
    }
}

/// A `Kv` served on its own runtime; dropped = stopped.
pub struct KvServer {
    pub addr: SocketAddr,
    pub kv: Arc<Kv>,
    stop: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl KvServer {
    pub fn start(path: &Path, gate: Arc<dyn Gate>, scope: Option<&str>) -> KvServer {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let kv = Kv::open(path).expect("open kv");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let done = runtime.spawn(kv.clone().serve(listener, scope.map(Into::into), gate, stop.clone()));
        KvServer { addr, kv, stop, runtime: Some(runtime), done: Some(done) }
    }

    /// Stops serving and waits for every connection to end.
    fn stop_now(&mut self) {
        self.stop.cancel();
        if let (Some(rt), Some(done)) = (self.runtime.take(), self.done.take()) {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), done).await.expect("serve ends").expect("serve task");
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for KvServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Debian's `redis-server` on a free loopback port; killed on drop.
pub struct RedisServer {
    pub addr: SocketAddr,
    child: Child,
}

impl RedisServer {
    /// None (with a printed reason) when `redis-server` is not installed.
    pub fn start(password: &str) -> Option<RedisServer> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            eprintln!("skipping: `redis-server` is not installed (scripts/test installs it)");
            return None;
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", password, "--daemonize", "no", "--logfile", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = RedisServer { addr, child };
        wait_for(|| TcpStream::connect(addr).is_ok(), "redis-server to listen");
        Some(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Encodes one command as a RESP multibulk.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A blocking RESP client that returns raw reply bytes.
pub struct Raw {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw { reader: BufReader::new(stream.try_clone().expect("clone")), writer: stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&encode(&args));
        self.reply()
    }

    pub fn reply(&mut self) -> Vec<u8> {
        read_reply(&mut self.reader).expect("a complete reply")
    }

    /// True when the server closed the connection (EOF) before sending anything more.
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Reads exactly one RESP2/RESP3 reply and returns its bytes.
pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    read_into(r, &mut out)?;
    Ok(out)
}

fn read_into(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    let n = r.read_until(b'\n', out)?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = &out[start..];
    let kind = line[0];
    let num =
        || -> i64 { std::str::from_utf8(&line[1..line.len() - 2]).ok().and_then(|s| s.parse().ok()).unwrap_or(0) };
    match kind {
        b'$' | b'=' | b'!' => {
            let len = num();
            if len >= 0 {
                let mut body = vec![0u8; len as usize + 2];
                r.read_exact(&mut body)?;
                out.extend_from_slice(&body);
            }
        }
        b'*' | b'~' | b'>' => {
            let len = num();
            for _ in 0..len.max(0) {
                read_into(r, out)?;
            }
        }
        b'%' | b'|' => {
            let len = num();
            for _ in 0..len.max(0) * 2 {
                read_into(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Splits a reply that is a flat array into its element replies (bytes each).
pub fn elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut r = BufReader::new(reply);
    let mut header = Vec::new();
    r.read_until(b'\n', &mut header).expect("header");
    let mut out = Vec::new();
    while let Ok(item) = read_reply(&mut r) {
        out.push(item);
    }
    out
}
