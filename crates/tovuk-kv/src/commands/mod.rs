//! The command table (names, arities, read/write class, metering cost) and dispatch of data
//! commands onto a storage [`Access`]. Connection commands live in [`connection`].

pub mod connection;
mod hashes;
mod keys;
mod strings;

use std::sync::Arc;

use bytes::Bytes;

use crate::resp::{Reply, parse_i64};
use crate::store::{Access, Cursors, StoreError};
use crate::value::{Entry, Kind};

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";

/// Every command this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    // connection
    Ping,
    Echo,
    Select,
    Auth,
    Hello,
    Client,
    Info,
    Quit,
    Command,
    // keyspace
    Dbsize,
    Flushdb,
    Del,
    Unlink,
    Exists,
    Expire,
    Pexpire,
    Expireat,
    Pexpireat,
    Ttl,
    Pttl,
    Persist,
    Type,
    Scan,
    Keys,
    Rename,
    // strings
    Get,
    Set,
    Setnx,
    Setex,
    Psetex,
    Getset,
    Getdel,
    Getex,
    Mget,
    Mset,
    Msetnx,
    Incr,
    Decr,
    Incrby,
    Decrby,
    Incrbyfloat,
    Append,
    Strlen,
    // hashes
    Hset,
    Hmset,
    Hsetnx,
    Hget,
    Hmget,
    Hgetall,
    Hdel,
    Hexists,
    Hkeys,
    Hvals,
    Hlen,
    Hincrby,
}

/// How a command touches data: decides where it runs and whether it needs auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Connection state only; answered by the connection itself.
    Connection,
    /// Reads one keyspace; may run on a snapshot.
    Read,
    /// Writes; runs in the group-commit writer.
    Write,
}

pub struct Spec {
    /// Lowercase name as redis prints it in errors.
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (with the name), `-n` at least n.
    pub arity: i32,
    pub op: Op,
    pub class: Class,
    /// Connection commands unauthenticated clients may send (redis's `no-auth` flag).
    pub no_auth: bool,
}

const fn spec(name: &'static str, arity: i32, op: Op, class: Class) -> Spec {
    Spec { name, arity, op, class, no_auth: false }
}

use Class::{Connection as C, Read as R, Write as W};

static SPECS: &[Spec] = &[
    spec("ping", -1, Op::Ping, C),
    spec("echo", 2, Op::Echo, C),
    spec("select", 2, Op::Select, C),
    Spec { name: "auth", arity: -2, op: Op::Auth, class: C, no_auth: true },
    Spec { name: "hello", arity: -1, op: Op::Hello, class: C, no_auth: true },
    spec("client", -2, Op::Client, C),
    spec("info", -1, Op::Info, C),
    Spec { name: "quit", arity: -1, op: Op::Quit, class: C, no_auth: true },
    spec("command", -1, Op::Command, C),
    spec("dbsize", 1, Op::Dbsize, R),
    spec("flushdb", -1, Op::Flushdb, W),
    spec("del", -2, Op::Del, W),
    spec("unlink", -2, Op::Unlink, W),
    spec("exists", -2, Op::Exists, R),
    spec("expire", -3, Op::Expire, W),
    spec("pexpire", -3, Op::Pexpire, W),
    spec("expireat", -3, Op::Expireat, W),
    spec("pexpireat", -3, Op::Pexpireat, W),
    spec("ttl", 2, Op::Ttl, R),
    spec("pttl", 2, Op::Pttl, R),
    spec("persist", 2, Op::Persist, W),
    spec("type", 2, Op::Type, R),
    spec("scan", -2, Op::Scan, R),
    spec("keys", 2, Op::Keys, R),
    spec("rename", 3, Op::Rename, W),
    spec("get", 2, Op::Get, R),
    spec("set", -3, Op::Set, W),
    spec("setnx", 3, Op::Setnx, W),
    spec("setex", 4, Op::Setex, W),
    spec("psetex", 4, Op::Psetex, W),
    spec("getset", 3, Op::Getset, W),
    spec("getdel", 2, Op::Getdel, W),
    spec("getex", -2, Op::Getex, W),
    spec("mget", -2, Op::Mget, R),
    spec("mset", -3, Op::Mset, W),
    spec("msetnx", -3, Op::Msetnx, W),
    spec("incr", 2, Op::Incr, W),
    spec("decr", 2, Op::Decr, W),
    spec("incrby", 3, Op::Incrby, W),
    spec("decrby", 3, Op::Decrby, W),
    spec("incrbyfloat", 3, Op::Incrbyfloat, W),
    spec("append", 3, Op::Append, W),
    spec("strlen", 2, Op::Strlen, R),
    spec("hset", -4, Op::Hset, W),
    spec("hmset", -4, Op::Hmset, W),
    spec("hsetnx", 4, Op::Hsetnx, W),
    spec("hget", 3, Op::Hget, R),
    spec("hmget", -3, Op::Hmget, R),
    spec("hgetall", 2, Op::Hgetall, R),
    spec("hdel", -3, Op::Hdel, W),
    spec("hexists", 3, Op::Hexists, R),
    spec("hkeys", 2, Op::Hkeys, R),
    spec("hvals", 2, Op::Hvals, R),
    spec("hlen", 2, Op::Hlen, R),
    spec("hincrby", 4, Op::Hincrby, W),
];

/// Looks a command name up case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 16 {
        return None;
    }
    SPECS.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

pub fn command_count() -> usize {
    SPECS.len()
}

/// Whether `argc` (including the name) satisfies a redis arity.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity >= 0 { argc == arity } else { argc >= -arity }
}

pub fn wrong_args(name: &str) -> Reply {
    Reply::err(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Metering: `(reads, writes)` for one command, per the rule in the crate docs.
pub fn cost(op: Op, args: &[Bytes]) -> (u64, u64) {
    let n = args.len().saturating_sub(1) as u64;
    match op {
        Op::Ping | Op::Echo | Op::Select | Op::Auth | Op::Hello | Op::Client | Op::Info | Op::Quit | Op::Command => {
            (0, 0)
        }
        Op::Dbsize => (0, 0),
        Op::Mget | Op::Exists => (n, 0),
        Op::Get
        | Op::Ttl
        | Op::Pttl
        | Op::Type
        | Op::Scan
        | Op::Keys
        | Op::Strlen
        | Op::Hget
        | Op::Hmget
        | Op::Hgetall
        | Op::Hexists
        | Op::Hkeys
        | Op::Hvals
        | Op::Hlen => (1, 0),
        Op::Del | Op::Unlink => (0, n),
        Op::Mset | Op::Msetnx => (0, n / 2),
        Op::Rename => (0, 2),
        Op::Flushdb
        | Op::Expire
        | Op::Pexpire
        | Op::Expireat
        | Op::Pexpireat
        | Op::Persist
        | Op::Set
        | Op::Setnx
        | Op::Setex
        | Op::Psetex
        | Op::Getset
        | Op::Getdel
        | Op::Getex
        | Op::Incr
        | Op::Decr
        | Op::Incrby
        | Op::Decrby
        | Op::Incrbyfloat
        | Op::Append
        | Op::Hset
        | Op::Hmset
        | Op::Hsetnx
        | Op::Hdel
        | Op::Hincrby => (0, 1),
    }
}

/// A data command ready to run: arity, auth and admission already checked.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub op: Op,
    /// Whether the command writes (then the batch goes through the group-commit writer).
    pub writes: bool,
    pub args: Vec<Bytes>,
}

/// Per-batch context: one clock reading for the whole batch, as redis caches time per command.
pub struct Ctx<'a> {
    pub now: u64,
    pub cursors: &'a Cursors,
    pub ks: Arc<str>,
}

pub type CmdResult = Result<Reply, StoreError>;

pub fn execute<A: Access>(cmd: &Cmd, a: &mut A, ctx: &Ctx<'_>) -> CmdResult {
    let args = &cmd.args[..];
    match cmd.op {
        Op::Dbsize => Ok(Reply::Int(a.dbsize()? as i64)),
        Op::Flushdb => keys::flushdb(a, args),
        Op::Del | Op::Unlink => keys::del(a, args),
        Op::Exists => keys::exists(a, args),
        Op::Expire => keys::expire(a, ctx, args, "expire", 1000, ctx.now),
        Op::Pexpire => keys::expire(a, ctx, args, "pexpire", 1, ctx.now),
        Op::Expireat => keys::expire(a, ctx, args, "expireat", 1000, 0),
        Op::Pexpireat => keys::expire(a, ctx, args, "pexpireat", 1, 0),
        Op::Ttl => keys::ttl(a, ctx, args, false),
        Op::Pttl => keys::ttl(a, ctx, args, true),
        Op::Persist => keys::persist(a, args),
        Op::Type => keys::key_type(a, args),
        Op::Scan => keys::scan(a, ctx, args),
        Op::Keys => keys::keys(a, args),
        Op::Rename => keys::rename(a, args),
        Op::Get => strings::get(a, args),
        Op::Set => strings::set(a, ctx, args),
        Op::Setnx => strings::setnx(a, args),
        Op::Setex => strings::setex(a, ctx, args, "setex", 1000),
        Op::Psetex => strings::setex(a, ctx, args, "psetex", 1),
        Op::Getset => strings::getset(a, args),
        Op::Getdel => strings::getdel(a, args),
        Op::Getex => strings::getex(a, ctx, args),
        Op::Mget => strings::mget(a, args),
        Op::Mset => strings::mset(a, args),
        Op::Msetnx => strings::msetnx(a, args),
        Op::Incr => strings::incr_by(a, &args[1], 1),
        Op::Decr => strings::incr_by(a, &args[1], -1),
        Op::Incrby => match parse_i64(&args[2]) {
            Some(by) => strings::incr_by(a, &args[1], by),
            None => Ok(Reply::err(NOT_INT)),
        },
        Op::Decrby => match parse_i64(&args[2]) {
            Some(i64::MIN) => Ok(Reply::err("ERR decrement would overflow")),
            Some(by) => strings::incr_by(a, &args[1], -by),
            None => Ok(Reply::err(NOT_INT)),
        },
        Op::Incrbyfloat => strings::incr_by_float(a, args),
        Op::Append => strings::append(a, args),
        Op::Strlen => strings::strlen(a, args),
        Op::Hset => hashes::hset(a, args, "hset"),
        Op::Hmset => hashes::hset(a, args, "hmset"),
        Op::Hsetnx => hashes::hsetnx(a, args),
        Op::Hget => hashes::hget(a, args),
        Op::Hmget => hashes::hmget(a, args),
        Op::Hgetall => hashes::hgetall(a, args),
        Op::Hdel => hashes::hdel(a, args),
        Op::Hexists => hashes::hexists(a, args),
        Op::Hkeys => hashes::hkeys_or_vals(a, args, true),
        Op::Hvals => hashes::hkeys_or_vals(a, args, false),
        Op::Hlen => hashes::hlen(a, args),
        Op::Hincrby => hashes::hincrby(a, args),
        Op::Ping | Op::Echo | Op::Select | Op::Auth | Op::Hello | Op::Client | Op::Info | Op::Quit | Op::Command => {
            Ok(Reply::err("ERR connection command reached storage"))
        }
    }
}

/// A live string value, `Ok(None)` if absent, or the WRONGTYPE reply.
fn get_string<A: Access>(a: &mut A, key: &[u8]) -> Result<Result<Option<Entry>, Reply>, StoreError> {
    Ok(match a.get(key)? {
        Some(e) if e.kind != Kind::String => Err(Reply::err(WRONGTYPE)),
        other => Ok(other),
    })
}

fn eq_ci(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
