//! Hash commands (redis's t_hash.c). A hash is stored whole, fields in insertion order.

use bytes::Bytes;

use super::{CmdResult, NOT_INT, WRONGTYPE, wrong_args};
use crate::resp::{Reply, parse_i64};
use crate::store::{Access, StoreError};
use crate::value::{Entry, Hash, Kind};

/// A hash and its expiry.
type Loaded = Option<(Hash, Option<u64>)>;

/// The hash at `key` with its expiry (`None` if absent), or the WRONGTYPE reply.
fn load<A: Access>(a: &mut A, key: &[u8]) -> Result<Result<Loaded, Reply>, StoreError> {
    Ok(match a.get(key)? {
        None => Ok(None),
        Some(e) if e.kind != Kind::Hash => Err(Reply::err(WRONGTYPE)),
        Some(e) => Ok(Some((Hash::decode(&e.data), e.expire_at))),
    })
}

macro_rules! hash_or_reply {
    ($a:expr, $key:expr) => {
        match load($a, $key)? {
            Ok(v) => v,
            Err(reply) => return Ok(reply),
        }
    };
}

fn store<A: Access>(a: &mut A, key: &[u8], hash: &Hash, expire_at: Option<u64>) -> Result<(), StoreError> {
    if hash.0.is_empty() {
        a.remove(key)?;
        Ok(())
    } else {
        a.put(key, &Entry::hash(hash, expire_at))
    }
}

pub fn hset<A: Access>(a: &mut A, args: &[Bytes], cmd: &str) -> CmdResult {
    if args.len() % 2 == 1 {
        return Ok(wrong_args(cmd));
    }
    let (mut hash, expire_at) = hash_or_reply!(a, &args[1]).unwrap_or_default();
    let mut added = 0;
    for pair in args[2..].chunks_exact(2) {
        if hash.set(pair[0].clone(), pair[1].clone()) {
            added += 1;
        }
    }
    store(a, &args[1], &hash, expire_at)?;
    Ok(if cmd == "hmset" { Reply::Ok } else { Reply::Int(added) })
}

pub fn hsetnx<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let (mut hash, expire_at) = hash_or_reply!(a, &args[1]).unwrap_or_default();
    if hash.get(&args[2]).is_some() {
        return Ok(Reply::Int(0));
    }
    hash.set(args[2].clone(), args[3].clone());
    store(a, &args[1], &hash, expire_at)?;
    Ok(Reply::Int(1))
}

pub fn hget<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]);
    Ok(hash.and_then(|(h, _)| h.get(&args[2]).cloned()).map_or(Reply::Nil, Reply::Bulk))
}

pub fn hmget<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]).map(|(h, _)| h).unwrap_or_default();
    Ok(Reply::Array(args[2..].iter().map(|f| hash.get(f).cloned().map_or(Reply::Nil, Reply::Bulk)).collect()))
}

pub fn hgetall<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]).map(|(h, _)| h).unwrap_or_default();
    Ok(Reply::Map(hash.0.into_iter().map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v))).collect()))
}

pub fn hdel<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let Some((mut hash, expire_at)) = hash_or_reply!(a, &args[1]) else { return Ok(Reply::Int(0)) };
    let mut removed = 0;
    for field in &args[2..] {
        if hash.remove(field) {
            removed += 1;
        }
    }
    if removed > 0 {
        store(a, &args[1], &hash, expire_at)?;
    }
    Ok(Reply::Int(removed))
}

pub fn hexists<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]);
    Ok(Reply::Int(i64::from(hash.is_some_and(|(h, _)| h.get(&args[2]).is_some()))))
}

pub fn hkeys_or_vals<A: Access>(a: &mut A, args: &[Bytes], keys: bool) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]).map(|(h, _)| h).unwrap_or_default();
    Ok(Reply::Array(hash.0.into_iter().map(|(f, v)| Reply::Bulk(if keys { f } else { v })).collect()))
}

pub fn hlen<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let hash = hash_or_reply!(a, &args[1]);
    Ok(Reply::Int(hash.map_or(0, |(h, _)| h.0.len() as i64)))
}

pub fn hincrby<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let Some(by) = parse_i64(&args[3]) else { return Ok(Reply::err(NOT_INT)) };
    let (mut hash, expire_at) = hash_or_reply!(a, &args[1]).unwrap_or_default();
    let current = match hash.get(&args[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(v) => v,
            None => return Ok(Reply::err("ERR hash value is not an integer")),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return Ok(Reply::err("ERR increment or decrement would overflow"));
    };
    hash.set(args[2].clone(), Bytes::from(new.to_string()));
    store(a, &args[1], &hash, expire_at)?;
    Ok(Reply::Int(new))
}
