//! Hostile and careless clients: oversized declarations, half frames, huge pipelines, unknown
//! commands, unauthenticated or mis-scoped access.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{KvServer, Raw, TestGate, encode, wait_for};

const PW: &str = "pw-a";

fn server(gate: TestGate) -> (tempfile::TempDir, KvServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = KvServer::start(&dir.path().join("kv.redb"), Arc::new(gate), None);
    (dir, server)
}

fn authed(server: &KvServer, password: &str) -> Raw {
    let mut conn = Raw::connect(server.addr);
    assert_eq!(conn.cmd(&["AUTH", password]), b"+OK\r\n");
    conn
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS value")
}

#[test]
fn huge_declared_bulks_are_refused_without_allocating() {
    let (_dir, server) = server(TestGate::default().with(PW, "res_a", None));
    let before = rss_kib();

    // Over redis's 512 MiB: redis's own error, then the connection closes.
    let mut conn = authed(&server, PW);
    // The header alone is refused: nothing waits for (or reserves) the declared gigabyte.
    conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\nxxxx");
    assert_eq!(conn.reply(), b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(conn.closed());

    // Under redis's limit but over ours: an error naming the limit, then close.
    let mut conn = authed(&server, PW);
    conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$400000000\r\n");
    let reply = String::from_utf8(conn.reply()).expect("utf8");
    assert!(reply.starts_with("-ERR Protocol error: bulk of 400000000 bytes is over"), "{reply}");
    assert!(reply.contains("limit of 67108864 bytes"), "{reply}");
    assert!(conn.closed());

    // Within limits but never completed: only the bytes sent are held, then dropped.
    let mut conn = authed(&server, PW);
    conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$60000000\r\n");
    conn.send(&vec![b'x'; 2 << 20]);
    drop(conn);

    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "RSS grew by {grown_mib} MiB");
    let mut conn = authed(&server, PW);
    assert_eq!(conn.cmd(&["GET", "k"]), b"$-1\r\n");
}

#[test]
fn unterminated_frame_then_disconnect_is_dropped() {
    let (_dir, server) = server(TestGate::default().with(PW, "res_a", None));
    let mut observer = authed(&server, PW);
    let clients = |o: &mut Raw| {
        let info = String::from_utf8(o.cmd(&["INFO", "clients"])).expect("utf8");
        info.lines().find_map(|l| l.strip_prefix("connected_clients:")).map(str::to_owned).unwrap_or_default()
    };
    let mut partial = authed(&server, PW);
    partial.send(b"*2\r\n$3\r\nGET\r\n$10\r\nab");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(clients(&mut observer), "2");
    drop(partial);
    wait_for(|| clients(&mut observer) == "1", "the half-sent connection to be dropped");
}

#[test]
fn pipelined_100k_commands_are_answered_in_order() {
    let (_dir, server) = server(TestGate::default().with(PW, "res_a", None));
    let mut conn = authed(&server, PW);
    const N: usize = 100_000;
    let mut writer = conn.writer.try_clone().expect("clone");
    // Write from another thread: the server applies backpressure rather than buffering replies.
    let sender = std::thread::spawn(move || {
        let mut burst = Vec::with_capacity(N * 40);
        for i in 0..N {
            if i % 2 == 0 {
                burst.extend_from_slice(&encode(&[b"INCR", b"counter"]));
            } else {
                burst.extend_from_slice(&encode(&[b"SET", format!("key:{i}").as_bytes(), b"v"]));
            }
        }
        writer.write_all(&burst).expect("write burst");
    });
    let mut next = 1;
    for i in 0..N {
        let reply = conn.reply();
        if i % 2 == 0 {
            assert_eq!(reply, format!(":{next}\r\n").into_bytes(), "reply {i}");
            next += 1;
        } else {
            assert_eq!(reply, b"+OK\r\n", "reply {i}");
        }
    }
    sender.join().expect("sender");
    assert_eq!(conn.cmd(&["DBSIZE"]), format!(":{}\r\n", N / 2 + 1).into_bytes());
}

#[test]
fn unknown_commands_and_noauth_keep_the_connection() {
    let (_dir, server) = server(TestGate::default().with(PW, "res_a", None));
    let mut conn = Raw::connect(server.addr);
    assert_eq!(conn.cmd(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(conn.cmd(&["SET", "k", "v"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(conn.cmd(&["AUTH", "nope"]), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(conn.cmd(&["AUTH", "default", PW]), b"+OK\r\n");
    assert_eq!(
        conn.cmd(&["XADD", "s", "*", "f", "v"]),
        b"-ERR unknown command 'XADD', with args beginning with: 's' '*' 'f' 'v' \r\n"
    );
    assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
    conn.send(b"PING\r\n");
    assert_eq!(conn.reply(), b"+PONG\r\n");
}

#[test]
fn a_password_only_opens_its_own_keyspace() {
    let gate = TestGate::default().with("pw-a", "res_a", None).with("pw-b", "res_b", None);
    let (_dir, server) = server(gate);
    let mut a = authed(&server, "pw-a");
    let mut b = authed(&server, "pw-b");
    assert_eq!(a.cmd(&["SET", "key", "value"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(b.cmd(&["GET", "key"]), b"$-1\r\n");
    assert_eq!(b.cmd(&["KEYS", "*"]), b"*0\r\n");
    assert_eq!(b.cmd(&["SCAN", "0"]), b"*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(b.cmd(&["DBSIZE"]), b":0\r\n");
    assert_eq!(b.cmd(&["FLUSHDB"]), b"+OK\r\n");
    assert_eq!(a.cmd(&["GET", "key"]), b"$5\r\nvalue\r\n");
    assert_eq!(a.cmd(&["DBSIZE"]), b":2\r\n");
    // A SCAN cursor issued to A means nothing to B.
    assert_eq!(a.cmd(&["SET", "key2", "value"]), b"+OK\r\n");
    let page = a.cmd(&["SCAN", "0", "COUNT", "1"]);
    let cursor = crate::support::elements(&page)[0].clone();
    let cursor = String::from_utf8_lossy(&cursor).lines().nth(1).expect("cursor").to_owned();
    assert_ne!(cursor, "0");
    assert_eq!(b.cmd(&["SCAN", &cursor]), b"*2\r\n$1\r\n0\r\n*0\r\n");

    // Metering: key + value bytes ("key"+"value", "key2"+"value", "h" + the hash's encoding).
    let bytes = server.kv.keyspace_bytes("res_a");
    assert_eq!(bytes, 8 + 9 + 1 + (4 + 1 + 4 + 1));
    assert_eq!(server.kv.keyspace_bytes("res_b"), 0);
    assert_eq!(a.cmd(&["DEL", "key2"]), b":1\r\n");
    assert_eq!(server.kv.keyspace_bytes("res_a"), bytes - 9);

    server.kv.delete_keyspace("res_a").expect("delete keyspace");
    assert_eq!(server.kv.keyspace_bytes("res_a"), 0);
    assert_eq!(a.cmd(&["GET", "key"]), b"$-1\r\n");
    assert_eq!(a.cmd(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn a_scope_mismatch_is_wrongpass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = TestGate::default().with("pw-a", "res_a", Some("app_a"));
    let server = KvServer::start(&dir.path().join("kv.redb"), Arc::new(gate), Some("app_b"));
    let mut conn = Raw::connect(server.addr);
    let wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(conn.cmd(&["AUTH", "pw-a"]), wrongpass);
    assert_eq!(conn.cmd(&["HELLO", "3", "AUTH", "default", "pw-a"]), wrongpass);
    assert_eq!(conn.cmd(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn expired_keys_are_swept() {
    let (_dir, server) = server(TestGate::default().with(PW, "res_a", None));
    let mut conn = authed(&server, PW);
    assert_eq!(conn.cmd(&["SET", "short", "v", "PX", "30"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(conn.cmd(&["PEXPIRE", "h", "30"]), b":1\r\n");
    assert_eq!(conn.cmd(&["DBSIZE"]), b":2\r\n");
    // No command touches the keys again: only the background sweep can remove them.
    wait_for(|| server.kv.keyspace_bytes("res_a") == 0, "the sweep to remove expired keys");
    assert_eq!(conn.cmd(&["DBSIZE"]), b":0\r\n");
}
