//! Generic key commands (redis's db.c and expire.c): DEL, EXISTS, EXPIRE*, TTL, TYPE, SCAN,
//! KEYS, RENAME, FLUSHDB.

use bytes::Bytes;

use super::{CmdResult, Ctx, NOT_INT, SYNTAX, eq_ci};
use crate::glob;
use crate::resp::{Reply, parse_i64};
use crate::store::Access;
use crate::value::Entry;

pub fn del<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if a.remove(key)? {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn exists<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        if a.get(key)?.is_some() {
            n += 1;
        }
    }
    Ok(Reply::Int(n))
}

pub fn flushdb<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let ok = match args.len() {
        1 => true,
        2 => eq_ci(&args[1], "async") || eq_ci(&args[1], "sync"),
        _ => false,
    };
    if !ok {
        return Ok(Reply::err(SYNTAX));
    }
    a.flush()?;
    Ok(Reply::Ok)
}

#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(args: &[Bytes]) -> Result<ExpireFlags, Reply> {
    let mut f = ExpireFlags::default();
    for opt in &args[3..] {
        if eq_ci(opt, "nx") {
            f.nx = true;
        } else if eq_ci(opt, "xx") {
            f.xx = true;
        } else if eq_ci(opt, "gt") {
            f.gt = true;
        } else if eq_ci(opt, "lt") {
            f.lt = true;
        } else {
            return Err(Reply::err(format!("ERR Unsupported option {}", String::from_utf8_lossy(opt))));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f.gt && f.lt {
        return Err(Reply::err("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// Redis's `expireGenericCommand`; `unit_ms` is 1000 for seconds, `base` is now or 0 for *AT.
pub fn expire<A: Access>(a: &mut A, _ctx: &Ctx<'_>, args: &[Bytes], cmd: &str, unit_ms: i64, base: u64) -> CmdResult {
    let flags = match parse_expire_flags(args) {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let Some(mut when) = parse_i64(&args[2]) else { return Ok(Reply::err(NOT_INT)) };
    let invalid = || Ok(Reply::err(format!("ERR invalid expire time in '{cmd}' command")));
    if unit_ms == 1000 {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return invalid();
        }
        when *= 1000;
    }
    let base = base as i64;
    if when > i64::MAX - base {
        return invalid();
    }
    when += base;
    let Some(entry) = a.get(&args[1])? else { return Ok(Reply::Int(0)) };
    let current = entry.expire_at.map(|at| at as i64);
    let refused = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|cur| when <= cur))
        || (flags.lt && current.is_some_and(|cur| when >= cur));
    if refused {
        return Ok(Reply::Int(0));
    }
    // A time at or before now deletes the key, as redis does (put removes expired entries).
    let at = if when <= 0 { 1 } else { when as u64 };
    a.put(&args[1], &Entry { expire_at: Some(at), ..entry })?;
    Ok(Reply::Int(1))
}

pub fn ttl<A: Access>(a: &mut A, ctx: &Ctx<'_>, args: &[Bytes], millis: bool) -> CmdResult {
    let Some(entry) = a.get(&args[1])? else { return Ok(Reply::Int(-2)) };
    let Some(at) = entry.expire_at else { return Ok(Reply::Int(-1)) };
    let left = at.saturating_sub(ctx.now) as i64;
    Ok(Reply::Int(if millis { left } else { (left + 500) / 1000 }))
}

pub fn persist<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    match a.get(&args[1])? {
        Some(entry) if entry.expire_at.is_some() => {
            a.put(&args[1], &Entry { expire_at: None, ..entry })?;
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

pub fn key_type<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Status(a.get(&args[1])?.map_or("none", |e| e.kind.name())))
}

pub fn rename<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let Some(entry) = a.get(&args[1])? else { return Ok(Reply::err("ERR no such key")) };
    if args[1] == args[2] {
        return Ok(Reply::Ok);
    }
    a.remove(&args[1])?;
    a.put(&args[2], &entry)?;
    Ok(Reply::Ok)
}

pub fn keys<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let page = a.scan(b"", usize::MAX)?;
    let keys = page.keys.into_iter().filter(|(k, _)| all || glob::matches(pattern, k)).map(|(k, _)| Reply::Bulk(k));
    Ok(Reply::Array(keys.collect()))
}

/// SCAN with a server-side cursor table (see `store::Cursors`). COUNT is the number of keys
/// examined, as in redis, so a MATCH may return fewer (or no) keys with a non-zero cursor.
pub fn scan<A: Access>(a: &mut A, ctx: &Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = match std::str::from_utf8(&args[1]).ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(c) if !args[1].starts_with(b"+") => c,
        _ => return Ok(Reply::err("ERR invalid cursor")),
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i;
        if eq_ci(&args[i], "count") && more >= 2 {
            match parse_i64(&args[i + 1]) {
                Some(n) if n >= 1 => count = usize::try_from(n).unwrap_or(usize::MAX),
                Some(_) => return Ok(Reply::err(SYNTAX)),
                None => return Ok(Reply::err(NOT_INT)),
            }
        } else if eq_ci(&args[i], "match") && more >= 2 {
            pattern = (&args[i + 1][..] != b"*").then_some(&args[i + 1][..]);
        } else if eq_ci(&args[i], "type") && more >= 2 {
            type_name = Some(&args[i + 1][..]);
        } else {
            return Ok(Reply::err(SYNTAX));
        }
        i += 2;
    }
    let from = if cursor == 0 {
        Vec::new()
    } else {
        match ctx.cursors.load(&ctx.ks, cursor) {
            Some(from) => from,
            None => return Ok(Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(Vec::new())])),
        }
    };
    // Bound one call's work even for a huge COUNT.
    let page = a.scan(&from, count.min(100_000))?;
    let keys = page
        .keys
        .into_iter()
        .filter(|(k, kind)| {
            pattern.is_none_or(|p| glob::matches(p, k)) && type_name.is_none_or(|t| eq_ci(t, kind.name()))
        })
        .map(|(k, _)| Reply::Bulk(k))
        .collect();
    let next = page.next.map_or(0, |resume| ctx.cursors.save(&ctx.ks, resume));
    Ok(Reply::Array(vec![Reply::bulk_str(&next.to_string()), Reply::Array(keys)]))
}
