//! The same raw RESP script against Debian's `redis-server` and a `Kv`; replies must match
//! byte for byte, except where a line's mode says how they may differ:
//! - `~ CMD`: both integers within 1500 (TTLs while the clock moves)
//! - `type CMD`: same reply type only (INFO, CLIENT ID)
//! - `hello CMD`: exact after zeroing the connection id
//! - `sort CMD`: same array elements in any order (KEYS)
//! - `scan ARGS`: full SCAN iteration with ARGS; same set of keys
//! - `raw BYTES`: send the escaped bytes as-is, compare the one reply
//! - `skip CMD`: send to both, compare nothing (commands redis 7.0 lacks, e.g. CLIENT SETINFO)

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::support::{KvServer, Raw, RedisServer, TestGate, elements, encode};

const PASSWORD: &str = "s3cret-pw";

const SCRIPT: &str = r#"
PING
GET k
NOSUCH a b
GET
CLIENT NOPE
CLIENT SETNAME
AUTH wrong
AUTH default wrong
AUTH a b c
HELLO 3
HELLO 4
HELLO abc
HELLO 3 AUTH default wrong
HELLO 3 FOO
SET k v
AUTH s3cret-pw
PING
PING hello
PING a b
ECHO hi
ECHO
SELECT 0
SELECT 99
SELECT abc
FLUSHDB
DBSIZE
SET k v
GET k
SET k v2 NX
SET k v3 XX
GET k
SET k2 v XX
GET k2
SET k2 v NX
SET k v NX XX
SET k v XX NX
SET k v EX
SET k v EX 10 PX 100
SET k v EX abc
SET k v EX 0
SET k v EX -1
SET k v PX 0
SET k v EX 9223372036854775807
SET k v PX 9223372036854775807
SET k v KEEPTTL EX 10
SET k v EX 10 KEEPTTL
SET k v FOO
SET k v get
SET k v4 GET
SET newk v GET
SET k v5 NX GET
SET nx1 v NX GET
GET nx1
SET xx1 v XX GET
GET xx1
SET k v EX 100
~ TTL k
SET k v6 KEEPTTL
~ TTL k
SET k v7
TTL k
SET k v PX 100000
~ PTTL k
SET k v EXAT 4102444800
~ TTL k
SET k v PXAT 4102444800000
~ PTTL k
SET k v EXAT 0
SETNX k x
SETNX sn x
GET sn
SETEX se 100 val
~ TTL se
SETEX se 0 val
SETEX se abc val
SETEX se 10
PSETEX pse 100000 val
~ PTTL pse
PSETEX pse -5 val
GETSET k newval
GETSET nogs v
GET nogs
TTL nogs
GETDEL k
GETDEL k
GET k
SET gx v
GETEX gx
GETEX gx EX 100
~ TTL gx
GETEX gx PERSIST
TTL gx
GETEX gx PX 50000
~ PTTL gx
GETEX gx EXAT 4102444800
~ TTL gx
GETEX gx PERSIST EX 10
GETEX gx NX
GETEX gx EX
GETEX gx EX abc
GETEX missing EX 10
GETEX gx EX 0
GETEX gx PXAT 1
GET gx
MSET a 1 b 2 c 3
MGET a b c missing
MSET a 1 b
MSET a
MSETNX a 1 z 2
MSETNX y 1 z 2
MGET y z
MSETNX y
INCR cnt
INCR cnt
INCRBY cnt 10
INCRBY cnt abc
INCRBY cnt 1.5
DECR cnt
DECRBY cnt 5
DECRBY cnt -9223372036854775808
DECRBY cnt -3
GET cnt
SET big 9223372036854775807
INCR big
INCRBY big -1
SET small -9223372036854775808
DECR small
SET notint abc
INCR notint
SET spaced " 1"
INCR spaced
SET lead 01
INCR lead
SET plus +1
INCR plus
SET neg0 -0
INCR neg0
SET exp 100 EX 1000
INCR exp
~ TTL exp
INCRBYFLOAT fl 10.5
INCRBYFLOAT fl 0.1
INCRBYFLOAT fl -5
INCRBYFLOAT fl 4.5e1
INCRBYFLOAT fl abc
INCRBYFLOAT fl ""
INCRBYFLOAT notint 1
INCRBYFLOAT fl2 3
INCRBYFLOAT fl3 0.1
INCRBYFLOAT fl3 0.2
INCRBYFLOAT fl4 1.5e2
INCRBYFLOAT fl4 -150
GET fl4
APPEND ap hello
APPEND ap " world"
GET ap
STRLEN ap
STRLEN missing
DEL a b missing
DEL a
DEL y y
EXISTS c c missing
EXISTS
UNLINK c
EXISTS c
SET e1 v
EXPIRE e1 100
~ TTL e1
EXPIRE e1 100 NX
EXPIRE e1 200 XX
~ TTL e1
EXPIRE e1 50 GT
EXPIRE e1 500 GT
EXPIRE e1 600 LT
EXPIRE e1 10 LT
~ TTL e1
EXPIRE e1 10 NX XX
EXPIRE e1 10 GT LT
EXPIRE e1 10 FOO
EXPIRE e1 abc
EXPIRE e1 abc FOO
EXPIRE e1
EXPIRE missing 10
SET e2 v
EXPIRE e2 10 XX
EXPIRE e2 10 GT
EXPIRE e2 10 LT
~ TTL e2
PERSIST e2
EXPIRE e2 0
GET e2
EXISTS e2
SET e3 v
PEXPIRE e3 100000
~ PTTL e3
PEXPIRE e3 -1
GET e3
SET e4 v
EXPIREAT e4 4102444800
~ TTL e4
PEXPIREAT e4 4102444800000
~ PTTL e4
EXPIREAT e4 1
EXISTS e4
EXPIRE k 9223372036854775807
SET e5 v
EXPIRE e5 9223372036854775807
EXPIRE e5 92233720368547758
EXPIRE e5 9223372036854
PEXPIRE e5 9223372036854775807
EXPIREAT e5 -5
EXISTS e5
TTL missing
PTTL missing
SET p v EX 100
PERSIST p
PERSIST p
TTL p
PERSIST missing
TYPE p
TYPE missing
HSET h f1 v1 f2 v2
TYPE h
HSET h f1 x
HSET h f3
HSET h
HGET h f1
HGET h nope
HGET nohash f
HMGET h f1 nope f2
HMGET nohash a
HGETALL h
HGETALL nohash
HKEYS h
HVALS h
HKEYS nohash
HLEN h
HLEN nohash
HEXISTS h f1
HEXISTS h nope
HEXISTS nohash f
HDEL h f1 nope
HDEL h nope
HDEL nohash a
HGETALL h
HSETNX h f2 y
HSETNX h f9 y
HINCRBY h cnt 5
HINCRBY h cnt -2
HINCRBY h f2 1
HINCRBY h cnt abc
HINCRBY newh cnt 7
HSET h ov 9223372036854775807
HINCRBY h ov 1
HMSET h a 1 b 2
HMSET h a
HGETALL h
HDEL h f2 f9 cnt ov a b
EXISTS h
SET s str
HGET s f
HSET s f v
HGETALL s
HLEN s
HDEL s f
HSETNX s f v
HINCRBY s f 1
HMGET s f
HKEYS s
HEXISTS s f
HSET hh a 1
GET hh
INCR hh
INCRBY hh 2
DECR hh
APPEND hh x
STRLEN hh
GETSET hh x
GETDEL hh
GETEX hh
SET hh v GET
MGET hh a
INCRBYFLOAT hh 1
SETNX hh v
SET hh2 v EX 100
HSET hh2 f v
RENAME hh hh3
TYPE hh
HGETALL hh3
RENAME missing x
RENAME hh3 hh3
SET r1 v EX 100
RENAME r1 r2
~ TTL r2
SET r3 other
RENAME r2 r3
GET r3
~ TTL r3
FLUSHDB
DBSIZE
MSET user:1:name a user:2:name b user:1:email c other d u x us:1 y
HSET hashkey f v
DBSIZE
sort KEYS *
sort KEYS user:*
sort KEYS user:?:name
sort KEYS user:[1]:*
sort KEYS user:[^1]:*
sort KEYS user:[0-1]:*
sort KEYS *a*
sort KEYS us*
KEYS nomatch*
sort KEYS user\:*
sort KEYS *e
scan MATCH *
scan MATCH user:*
scan MATCH *name
scan COUNT 2
scan COUNT 1 MATCH u*
scan TYPE hash
scan TYPE string MATCH user*
SCAN 0 COUNT 0
SCAN 0 COUNT abc
SCAN 0 FOO bar
SCAN abc
SCAN 0 MATCH
SCAN 0 MATCH * COUNT
scan MATCH nomatch*
FLUSHDB ASYNC
FLUSHDB SYNC
FLUSHDB BAD
FLUSHDB SYNC ASYNC
DBSIZE
FOO
FOO a b c
foo "a b" c
NOTACOMMAND list a
raw PING\r\n
raw ECHO hi\r\n
raw SET inl "quoted value"\r\n
GET inl
raw \r\nPING\r\n
raw   set   inl2   'single q'  \r\n
GET inl2
raw GET inl\n
raw *1\r\n$4\r\nPING\r\n
raw *0\r\n*1\r\n$4\r\nPING\r\n
raw *-1\r\n*1\r\n$4\r\nPING\r\n
CLIENT SETNAME myname
CLIENT GETNAME
CLIENT SETNAME "bad name"
CLIENT SETNAME
CLIENT FOO
CLIENT SETNAME a b
type CLIENT ID
skip CLIENT SETINFO LIB-NAME redis-py
type INFO
type INFO server
type COMMAND COUNT
SET k v
HSET hm f1 v1 f2 v2
hello HELLO 3
hello HELLO
PING
PING x
GET missing
GET k
HGETALL hm
HGETALL missing
HGET hm nope
HMGET hm f1 nope
MGET k missing hm
SET k v2 GET
SET newkey3 v GET
TYPE hm
TTL k
EXISTS k hm
INCRBYFLOAT f3 2.5
sort KEYS *
scan MATCH *
SET k v
GET missing
CLIENT GETNAME
DEL k
GETDEL k
FOO bar
HSET k
type INFO
hello HELLO 2
GET missing
HGETALL hm
hello HELLO 3 AUTH default s3cret-pw SETNAME x
CLIENT GETNAME
HELLO 3 SETNAME "bad name"
HELLO 3 AUTH default wrongpw
HELLO 3 AUTH default
GET k
HELLO 2 FOO
hello HELLO 2
QUIT
"#;

/// Splits a script line into words: whitespace-separated, `"..."` quoted with `\` escapes.
fn words(line: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { return out };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => word.push(chars.next().unwrap_or('\\')),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| !c.is_whitespace()) {
                word.push(c);
                chars.next();
            }
        }
        out.push(word.into_bytes());
    }
}

fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\r", "\r").replace("\\n", "\n").into_bytes()
}

fn as_int(reply: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(reply).ok()?;
    text.strip_prefix(':')?.trim_end().parse().ok()
}

fn zero_id(reply: &[u8]) -> Vec<u8> {
    let needle = b"$2\r\nid\r\n:";
    let Some(at) = reply.windows(needle.len()).position(|w| w == needle) else { return reply.to_vec() };
    let start = at + needle.len();
    let end = start + reply[start..].iter().position(|&b| b == b'\r').unwrap_or(0);
    [&reply[..start], b"0", &reply[end..]].concat()
}

fn full_scan(conn: &mut Raw, args: &[Vec<u8>]) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    for _ in 0..10_000 {
        let mut cmd: Vec<&[u8]> = vec![b"SCAN", &cursor];
        cmd.extend(args.iter().map(|a| a.as_slice()));
        conn.send(&encode(&cmd));
        let reply = conn.reply();
        let parts = elements(&reply);
        assert_eq!(parts.len(), 2, "scan reply {}", String::from_utf8_lossy(&reply));
        for key in elements(&parts[1]) {
            keys.insert(key);
        }
        let c = String::from_utf8_lossy(&parts[0]).into_owned();
        cursor = c.lines().nth(1).unwrap_or("0").as_bytes().to_vec();
        if cursor == b"0" {
            return keys;
        }
    }
    panic!("scan did not finish");
}

struct Pair {
    redis: Raw,
    kv: Raw,
}

impl Pair {
    fn run(&mut self, line: &str) -> Result<(), String> {
        let (mode, rest) = match line.split_once(' ') {
            Some((m @ ("~" | "type" | "hello" | "sort" | "scan" | "raw" | "skip"), rest)) => (m, rest),
            _ => ("=", line),
        };
        if mode == "scan" {
            let args = words(rest);
            let (a, b) = (full_scan(&mut self.redis, &args), full_scan(&mut self.kv, &args));
            return if a == b { Ok(()) } else { Err(format!("scan keys differ: redis {a:?} kv {b:?}")) };
        }
        let payload = if mode == "raw" {
            unescape(rest)
        } else {
            let w = words(rest);
            encode(&w.iter().map(|a| a.as_slice()).collect::<Vec<_>>())
        };
        self.redis.send(&payload);
        self.kv.send(&payload);
        let (a, b) = (self.redis.reply(), self.kv.reply());
        let same = match mode {
            "~" => matches!((as_int(&a), as_int(&b)), (Some(x), Some(y)) if (x - y).abs() <= 1500),
            "type" => a.first() == b.first(),
            "hello" => zero_id(&a) == zero_id(&b),
            "sort" => {
                let (mut x, mut y) = (elements(&a), elements(&b));
                x.sort();
                y.sort();
                a.first() == b.first() && x == y
            }
            "skip" => true,
            _ => a == b,
        };
        if same {
            Ok(())
        } else {
            Err(format!("redis: {:?}\n    kv: {:?}", String::from_utf8_lossy(&a), String::from_utf8_lossy(&b)))
        }
    }
}

#[test]
fn script_matches_redis_server() {
    let Some(redis) = RedisServer::start(PASSWORD) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(TestGate::default().with(PASSWORD, "res_diff", None));
    let kv = KvServer::start(&dir.path().join("kv.redb"), gate, None);
    let mut pair = Pair { redis: Raw::connect(redis.addr), kv: Raw::connect(kv.addr) };
    let mut failures = Vec::new();
    let mut count = 0;
    for line in SCRIPT.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        count += 1;
        if let Err(diff) = pair.run(line) {
            failures.push(format!("{line}\n    {diff}"));
        }
    }
    assert!(pair.redis.closed() && pair.kv.closed(), "QUIT closes both connections");
    assert!(failures.is_empty(), "{} of {count} lines differ:\n{}", failures.len(), failures.join("\n"));
}

/// Protocol errors: each payload on a fresh authenticated connection; the error reply must
/// match and both servers must close the connection afterwards.
#[test]
fn protocol_errors_match_redis_server() {
    let Some(redis) = RedisServer::start(PASSWORD) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(TestGate::default().with(PASSWORD, "res_diff", None));
    let kv = KvServer::start(&dir.path().join("kv.redb"), gate, None);
    let cases: &[&[u8]] = &[
        b"*1\r\n$abc\r\n",
        b"*abc\r\n",
        b"*1\r\n+PING\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n",
        b"*1\r\n$-5\r\n",
        b"*3000000000\r\n",
        b"SET x \"unbalanced\r\n",
        b"SET x \"a\"b\r\n",
    ];
    let mut failures = Vec::new();
    for case in cases {
        let mut replies = Vec::new();
        for addr in [redis.addr, kv.addr] {
            let mut conn = Raw::connect(addr);
            assert_eq!(conn.cmd(&["AUTH", PASSWORD]), b"+OK\r\n");
            conn.send(case);
            let reply = conn.reply();
            replies.push((reply, conn.closed()));
        }
        if replies[0] != replies[1] {
            failures.push(format!("{:?}: redis {:?} kv {:?}", String::from_utf8_lossy(case), replies[0], replies[1]));
        }
    }
    // Before AUTH redis applies tighter limits; both must agree on those too.
    for case in [&b"*20\r\n"[..], b"*1\r\n$20000\r\n"] {
        let mut replies = Vec::new();
        for addr in [redis.addr, kv.addr] {
            let mut conn = Raw::connect(addr);
            conn.send(case);
            let reply = conn.reply();
            replies.push((reply, conn.closed()));
        }
        if replies[0] != replies[1] {
            failures.push(format!("{:?}: redis {:?} kv {:?}", String::from_utf8_lossy(case), replies[0], replies[1]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
