//! String commands, following redis 7's t_string.c in argument order and error texts.

use bytes::Bytes;

use super::{CmdResult, Ctx, NOT_INT, SYNTAX, eq_ci, get_string, wrong_args};
use crate::resp::{Reply, parse_i64};
use crate::store::Access;
use crate::value::Entry;

macro_rules! string_or_reply {
    ($a:expr, $key:expr) => {
        match get_string($a, $key)? {
            Ok(v) => v,
            Err(reply) => return Ok(reply),
        }
    };
}

pub fn get<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    Ok(match string_or_reply!(a, &args[1]) {
        Some(e) => Reply::Bulk(e.data),
        None => Reply::Nil,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

#[derive(Default)]
struct SetOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a Bytes)>,
}

/// Redis's `parseExtendedStringArgumentsOrReply` for SET (`for_set`) and GETEX.
fn parse_options(args: &[Bytes], for_set: bool) -> Result<SetOptions<'_>, Reply> {
    let mut o = SetOptions::default();
    let mut j = if for_set { 3 } else { 2 };
    while j < args.len() {
        let opt = &args[j][..];
        let next = args.get(j + 1);
        let exp_kind =
            [("ex", ExpireKind::Ex), ("px", ExpireKind::Px), ("exat", ExpireKind::ExAt), ("pxat", ExpireKind::PxAt)]
                .into_iter()
                .find(|(w, _)| eq_ci(opt, w))
                .map(|(_, k)| k);
        if for_set && eq_ci(opt, "nx") && !o.xx {
            o.nx = true;
        } else if for_set && eq_ci(opt, "xx") && !o.nx {
            o.xx = true;
        } else if for_set && eq_ci(opt, "get") {
            o.get = true;
        } else if for_set && eq_ci(opt, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && eq_ci(opt, "persist") && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let (Some(kind), Some(next)) = (exp_kind, next)
            && !o.keepttl
            && !o.persist
            && o.expire.is_none()
        {
            o.expire = Some((kind, next));
            j += 1;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

fn invalid_expire(cmd: &str) -> Reply {
    Reply::err(format!("ERR invalid expire time in '{cmd}' command"))
}

/// Redis's `getExpireMillisecondsOrReply`: an absolute expiry in ms, or the error reply.
fn expire_at(raw: &[u8], unit_ms: i64, relative: bool, now: u64, cmd: &str) -> Result<i64, Reply> {
    let v = parse_i64(raw).ok_or_else(|| Reply::err(NOT_INT))?;
    if v <= 0 || (unit_ms == 1000 && v > i64::MAX / 1000) {
        return Err(invalid_expire(cmd));
    }
    let mut ms = v * unit_ms;
    if relative {
        ms = ms.checked_add(now as i64).ok_or_else(|| invalid_expire(cmd))?;
    }
    if ms <= 0 {
        return Err(invalid_expire(cmd));
    }
    Ok(ms)
}

fn resolve_expire(o: &SetOptions<'_>, now: u64, cmd: &str) -> Result<Option<u64>, Reply> {
    let Some((kind, raw)) = o.expire else { return Ok(None) };
    let (unit, relative) = match kind {
        ExpireKind::Ex => (1000, true),
        ExpireKind::Px => (1, true),
        ExpireKind::ExAt => (1000, false),
        ExpireKind::PxAt => (1, false),
    };
    expire_at(raw, unit, relative, now, cmd).map(|ms| Some(ms as u64))
}

struct SetArgs<'a> {
    key: &'a [u8],
    value: Bytes,
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    expire_at: Option<u64>,
}

/// Redis's `setGenericCommand`. `ok`/`abort` are the replies for set/not-set when not GET.
fn set_generic<A: Access>(a: &mut A, s: SetArgs<'_>, ok: Reply, abort: Reply) -> CmdResult {
    if !(s.nx || s.xx || s.get || s.keepttl) {
        // Plain SET needs nothing from the old value: skip the lookup (the hot path).
        a.put(s.key, &Entry::string(s.value, s.expire_at))?;
        return Ok(ok);
    }
    let old = if s.get { string_or_reply!(a, s.key) } else { a.get(s.key)? };
    let found = old.is_some();
    let old_reply = || old.as_ref().map_or(Reply::Nil, |e| Reply::Bulk(e.data.clone()));
    if (s.nx && found) || (s.xx && !found) {
        return Ok(if s.get { old_reply() } else { abort });
    }
    let expire_at = s.expire_at.or(if s.keepttl { old.as_ref().and_then(|e| e.expire_at) } else { None });
    a.put(s.key, &Entry::string(s.value.clone(), expire_at))?;
    Ok(if s.get { old_reply() } else { ok })
}

pub fn set<A: Access>(a: &mut A, ctx: &Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let o = match parse_options(args, true) {
        Ok(o) => o,
        Err(r) => return Ok(r),
    };
    let expire_at = match resolve_expire(&o, ctx.now, "set") {
        Ok(at) => at,
        Err(r) => return Ok(r),
    };
    let s = SetArgs {
        key: &args[1],
        value: args[2].clone(),
        nx: o.nx,
        xx: o.xx,
        get: o.get,
        keepttl: o.keepttl,
        expire_at,
    };
    set_generic(a, s, Reply::Ok, Reply::Nil)
}

pub fn setnx<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let s = SetArgs {
        key: &args[1],
        value: args[2].clone(),
        nx: true,
        xx: false,
        get: false,
        keepttl: false,
        expire_at: None,
    };
    set_generic(a, s, Reply::Int(1), Reply::Int(0))
}

pub fn setex<A: Access>(a: &mut A, ctx: &Ctx<'_>, args: &[Bytes], cmd: &str, unit_ms: i64) -> CmdResult {
    let at = match expire_at(&args[2], unit_ms, true, ctx.now, cmd) {
        Ok(at) => at as u64,
        Err(r) => return Ok(r),
    };
    let s = SetArgs {
        key: &args[1],
        value: args[3].clone(),
        nx: false,
        xx: false,
        get: false,
        keepttl: false,
        expire_at: Some(at),
    };
    set_generic(a, s, Reply::Ok, Reply::Nil)
}

pub fn getset<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let old = string_or_reply!(a, &args[1]);
    a.put(&args[1], &Entry::string(args[2].clone(), None))?;
    Ok(old.map_or(Reply::Nil, |e| Reply::Bulk(e.data)))
}

pub fn getdel<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let Some(old) = string_or_reply!(a, &args[1]) else { return Ok(Reply::Nil) };
    a.remove(&args[1])?;
    Ok(Reply::Bulk(old.data))
}

pub fn getex<A: Access>(a: &mut A, ctx: &Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let o = match parse_options(args, false) {
        Ok(o) => o,
        Err(r) => return Ok(r),
    };
    let Some(entry) = string_or_reply!(a, &args[1]) else { return Ok(Reply::Nil) };
    let at = match resolve_expire(&o, ctx.now, "getex") {
        Ok(at) => at,
        Err(r) => return Ok(r),
    };
    if let Some(at) = at {
        // An absolute time already past deletes the key (put does that for expired entries).
        a.put(&args[1], &Entry::string(entry.data.clone(), Some(at)))?;
    } else if o.persist && entry.expire_at.is_some() {
        a.put(&args[1], &Entry::string(entry.data.clone(), None))?;
    }
    Ok(Reply::Bulk(entry.data))
}

pub fn mget<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        out.push(match get_string(a, key)? {
            Ok(Some(e)) => Reply::Bulk(e.data),
            _ => Reply::Nil,
        });
    }
    Ok(Reply::Array(out))
}

pub fn mset<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Ok(wrong_args("mset"));
    }
    for pair in args[1..].chunks_exact(2) {
        a.put(&pair[0], &Entry::string(pair[1].clone(), None))?;
    }
    Ok(Reply::Ok)
}

pub fn msetnx<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Ok(wrong_args("msetnx"));
    }
    for pair in args[1..].chunks_exact(2) {
        if a.get(&pair[0])?.is_some() {
            return Ok(Reply::Int(0));
        }
    }
    for pair in args[1..].chunks_exact(2) {
        a.put(&pair[0], &Entry::string(pair[1].clone(), None))?;
    }
    Ok(Reply::Int(1))
}

pub fn incr_by<A: Access>(a: &mut A, key: &Bytes, by: i64) -> CmdResult {
    let old = string_or_reply!(a, key);
    let (current, expire_at) = match &old {
        None => (0, None),
        Some(e) => match parse_i64(&e.data) {
            Some(v) => (v, e.expire_at),
            None => return Ok(Reply::err(NOT_INT)),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return Ok(Reply::err("ERR increment or decrement would overflow"));
    };
    a.put(key, &Entry::string(Bytes::from(new.to_string()), expire_at))?;
    Ok(Reply::Int(new))
}

/// Redis's `string2ld`, approximated with f64: no surrounding spaces, no NaN.
fn parse_float(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    let named_inf = text.to_ascii_lowercase().contains("inf");
    if v.is_nan() || (v.is_infinite() && !named_inf) {
        return None;
    }
    Some(v)
}

/// Close to redis's `%.17Lf`-then-trim on a long double: print ~15 significant digits so the
/// binary noise of f64 (0.1 + 0.2) does not show, then trim trailing zeros.
pub fn format_float(v: f64) -> String {
    let int_digits = if v.abs() < 1.0 { 1 } else { v.abs().log10().floor() as i64 + 1 };
    let decimals = (15 - int_digits).clamp(0, 17) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".into() } else { s }
}

pub fn incr_by_float<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let old = string_or_reply!(a, &args[1]);
    let (current, expire_at) = match &old {
        None => (0.0, None),
        Some(e) => match parse_float(&e.data) {
            Some(v) => (v, e.expire_at),
            None => return Ok(Reply::err("ERR value is not a valid float")),
        },
    };
    let Some(by) = parse_float(&args[2]) else { return Ok(Reply::err("ERR value is not a valid float")) };
    let new = current + by;
    if new.is_nan() || new.is_infinite() {
        return Ok(Reply::err("ERR increment would produce NaN or Infinity"));
    }
    let text = Bytes::from(format_float(new));
    a.put(&args[1], &Entry::string(text.clone(), expire_at))?;
    Ok(Reply::Bulk(text))
}

pub fn append<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    let old = string_or_reply!(a, &args[1]);
    let (mut data, expire_at) = match old {
        Some(e) => (e.data.to_vec(), e.expire_at),
        None => (Vec::new(), None),
    };
    data.extend_from_slice(&args[2]);
    let len = data.len() as i64;
    a.put(&args[1], &Entry::string(Bytes::from(data), expire_at))?;
    Ok(Reply::Int(len))
}

pub fn strlen<A: Access>(a: &mut A, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(string_or_reply!(a, &args[1]).map_or(0, |e| e.data.len() as i64)))
}
