//! Admission: a gate that refuses writes past a cap; the refused command gets `-ERR <message>`
//! and everything else keeps working.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::support::{KvServer, Raw, TestGate, encode};

#[test]
fn writes_past_the_cap_are_refused_and_reads_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(TestGate { write_cap: Some(3), ..TestGate::default() }.with("pw", "res_caps", None));
    let server = KvServer::start(&dir.path().join("kv.redb"), gate.clone(), None);
    let mut conn = Raw::connect(server.addr);
    assert_eq!(conn.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    for i in 0..3 {
        assert_eq!(conn.cmd(&["SET", &format!("k{i}"), "v"]), b"+OK\r\n");
    }
    let refused = b"-ERR write cap of 3 writes reached; raise the plan's kv write limit\r\n";
    assert_eq!(conn.cmd(&["SET", "k3", "v"]), refused);
    assert_eq!(conn.cmd(&["GET", "k0"]), b"$1\r\nv\r\n");
    assert_eq!(conn.cmd(&["GET", "k3"]), b"$-1\r\n");
    // In a pipeline only the refused command fails; order is kept.
    let mut burst = encode(&[b"GET", b"k1"]);
    burst.extend(encode(&[b"DEL", b"k1"]));
    burst.extend(encode(&[b"MGET", b"k0", b"k1", b"k2"]));
    burst.extend(encode(&[b"PING"]));
    conn.send(&burst);
    assert_eq!(conn.reply(), b"$1\r\nv\r\n");
    assert_eq!(conn.reply(), refused);
    assert_eq!(conn.reply(), b"*3\r\n$1\r\nv\r\n$1\r\nv\r\n$1\r\nv\r\n");
    assert_eq!(conn.reply(), b"+PONG\r\n");
    // Counting rule: GET k0, GET k3, GET k1 = 3 reads, MGET of 3 keys = 3; 3 writes admitted.
    assert_eq!(gate.reads.load(Ordering::SeqCst), 6);
    assert_eq!(gate.writes.load(Ordering::SeqCst), 3);
}

#[test]
fn costs_follow_the_counting_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(TestGate::default().with("pw", "res_cost", None));
    let server = KvServer::start(&dir.path().join("kv.redb"), gate.clone(), None);
    let mut conn = Raw::connect(server.addr);
    assert_eq!(conn.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    let cases: &[(&[&str], u64, u64)] = &[
        (&["MSET", "a", "1", "b", "2", "c", "3"], 0, 3),
        (&["MGET", "a", "b", "c", "d"], 4, 0),
        (&["EXISTS", "a", "b"], 2, 0),
        (&["DEL", "a", "b", "zz"], 0, 3),
        (&["INCR", "n"], 0, 1),
        (&["EXPIRE", "n", "100"], 0, 1),
        (&["TTL", "n"], 1, 0),
        (&["HSET", "h", "f", "v", "g", "w"], 0, 1),
        (&["HGETALL", "h"], 1, 0),
        (&["SCAN", "0"], 1, 0),
        (&["KEYS", "*"], 1, 0),
        (&["FLUSHDB"], 0, 1),
        (&["PING"], 0, 0),
        (&["DBSIZE"], 0, 0),
        (&["INFO"], 0, 0),
        (&["SELECT", "0"], 0, 0),
    ];
    for (args, reads, writes) in cases {
        let (r0, w0) = (gate.reads.load(Ordering::SeqCst), gate.writes.load(Ordering::SeqCst));
        conn.cmd(args);
        let (r1, w1) = (gate.reads.load(Ordering::SeqCst), gate.writes.load(Ordering::SeqCst));
        assert_eq!((r1 - r0, w1 - w0), (*reads, *writes), "{args:?}");
    }
}
