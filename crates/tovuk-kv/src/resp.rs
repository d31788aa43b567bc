//! RESP framing: incremental request decoding (multibulk and inline) and reply encoding.
//!
//! The decoder never reserves a declared length up front: a bulk's bytes are taken from the
//! socket buffer only once they have all arrived, so memory grows with bytes actually received.

use bytes::{Buf, Bytes, BytesMut};

/// Largest single argument this server accepts. Redis allows 512 MiB; apps on a shared host
/// get a smaller bound so one connection cannot pin that much memory.
pub const MAX_ARG_BYTES: usize = 64 << 20;
/// Largest whole command (all arguments together), for the same reason.
pub const MAX_COMMAND_BYTES: usize = 128 << 20;
/// Redis's `proto-max-bulk-len`: lengths above this are a protocol error, as in redis.
const REDIS_MAX_BULK: i64 = 512 << 20;
/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline line or `*`/`$` header line.
const MAX_LINE: usize = 64 << 10;
/// Redis caps what an unauthenticated client may declare (CVE-2021-32675).
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

/// A protocol error: the text (after `-`) to send before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

fn proto_err(msg: &str) -> ProtocolError {
    ProtocolError(format!("ERR Protocol error: {msg}"))
}

/// One in-progress multibulk command whose arguments have partly arrived.
#[derive(Default)]
struct Partial {
    remaining: usize,
    args: Vec<Bytes>,
    bytes: usize,
}

/// Splits a byte stream into commands; keeps state across reads so a large command is not
/// re-parsed from its start each time more bytes arrive.
#[derive(Default)]
pub struct Decoder {
    partial: Option<Partial>,
}

impl Decoder {
    /// Takes the next complete command from `buf`. `Ok(None)` means more bytes are needed.
    /// An empty `Vec` is a command redis ignores (blank inline line, `*0`).
    pub fn decode(&mut self, buf: &mut BytesMut, authenticated: bool) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.partial.is_none() {
            let Some(&first) = buf.first() else { return Ok(None) };
            if first != b'*' {
                return decode_inline(buf);
            }
            let Some(count) = read_header(buf, "too big mbulk count string", "invalid multibulk length")? else {
                return Ok(None);
            };
            if count > i64::from(i32::MAX) {
                return Err(proto_err("invalid multibulk length"));
            }
            if !authenticated && count > UNAUTH_MAX_ARGS {
                return Err(proto_err("unauthenticated multibulk length"));
            }
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            let remaining = usize::try_from(count).map_err(|_| proto_err("invalid multibulk length"))?;
            // Never trust the declared count for allocation.
            let args = Vec::with_capacity(remaining.min(64));
            self.partial = Some(Partial { remaining, args, bytes: 0 });
        }
        let Some(partial) = self.partial.as_mut() else { return Ok(None) };
        while partial.remaining > 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'$' {
                return Err(proto_err(&format!("expected '$', got '{}'", char::from(buf[0]))));
            }
            let Some(len) = peek_header(buf, "too big bulk count string", "invalid bulk length")? else {
                return Ok(None);
            };
            let (header_len, len) = len;
            if !(0..=REDIS_MAX_BULK).contains(&len) {
                return Err(proto_err("invalid bulk length"));
            }
            if !authenticated && len > UNAUTH_MAX_BULK {
                return Err(proto_err("unauthenticated bulk length"));
            }
            let len = usize::try_from(len).map_err(|_| proto_err("invalid bulk length"))?;
            if len > MAX_ARG_BYTES {
                return Err(ProtocolError(format!(
                    "ERR Protocol error: bulk of {len} bytes is over this server's limit of {MAX_ARG_BYTES} bytes"
                )));
            }
            if partial.bytes + len > MAX_COMMAND_BYTES {
                return Err(ProtocolError(format!(
                    "ERR Protocol error: command is over this server's limit of {MAX_COMMAND_BYTES} bytes"
                )));
            }
            // Redis skips the two bytes after the payload without checking them; so do we.
            if buf.len() < header_len + len + 2 {
                return Ok(None);
            }
            buf.advance(header_len);
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            partial.bytes += len;
            partial.args.push(arg);
            partial.remaining -= 1;
        }
        Ok(self.partial.take().map(|p| p.args))
    }
}

/// Parses a `<prefix><integer>\r\n` line without consuming it: `(line length, value)`.
fn peek_header(buf: &[u8], too_big: &str, invalid: &str) -> Result<Option<(usize, i64)>, ProtocolError> {
    let Some(nl) = memchr(b'\r', buf) else {
        if buf.len() > MAX_LINE {
            return Err(proto_err(too_big));
        }
        return Ok(None);
    };
    if nl > MAX_LINE {
        return Err(proto_err(too_big));
    }
    if buf.len() < nl + 2 {
        return Ok(None);
    }
    let value = parse_i64(&buf[1..nl]).ok_or_else(|| proto_err(invalid))?;
    Ok(Some((nl + 2, value)))
}

fn read_header(buf: &mut BytesMut, too_big: &str, invalid: &str) -> Result<Option<i64>, ProtocolError> {
    let Some((len, value)) = peek_header(buf, too_big, invalid)? else { return Ok(None) };
    buf.advance(len);
    Ok(Some(value))
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn decode_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_LINE {
            return Err(proto_err("too big inline request"));
        }
        return Ok(None);
    };
    if nl > MAX_LINE {
        return Err(proto_err("too big inline request"));
    }
    let line = buf.split_to(nl + 1);
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    split_args(&line[..end]).map(Some).ok_or_else(|| proto_err("unbalanced quotes in request"))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Redis's `sdssplitargs`: whitespace-separated words, with "double" (escapes) and 'single' quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut cur = Vec::new();
        while !done {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' && hex_val(at(p + 2)).is_some() && hex_val(at(p + 3)).is_some() {
                    cur.push(hex_val(at(p + 2)).unwrap_or(0) * 16 + hex_val(at(p + 3)).unwrap_or(0));
                    p += 3;
                } else if c == b'\\' && p + 1 < line.len() {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if p + 1 < line.len() && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if p >= line.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < line.len() && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if p >= line.len() {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if p >= line.len() || matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                done = true;
            } else if c == b'"' {
                inq = true;
            } else if c == b'\'' {
                insq = true;
            } else {
                cur.push(c);
            }
            if p < line.len() {
                p += 1;
            }
        }
        out.push(Bytes::from(cur));
    }
}

/// Redis's `string2ll`: strict decimal, no sign other than `-`, no leading zeros or spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(v).ok()
    }
}

/// A reply, encoded per the connection's protocol version at write time.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok,
    Status(&'static str),
    /// Error text without the leading `-` (it starts with the code, e.g. `ERR ...`).
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk string: `$-1` in RESP2, `_` in RESP3.
    Nil,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A verbatim `txt` string in RESP3 (INFO), a bulk string in RESP2.
    Verbatim(String),
}

impl Reply {
    pub fn err(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    pub fn encode(&self, resp3: bool, out: &mut BytesMut) {
        match self {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => {
                // Redis replaces newlines in error texts so the reply stays one line.
                let clean: Vec<u8> = s.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
                line(out, b'-', &clean);
            }
            Reply::Int(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => {
                int_line(out, b'$', b.len() as i64);
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(resp3, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
            Reply::Verbatim(s) => {
                if resp3 {
                    int_line(out, b'=', s.len() as i64 + 4);
                    out.extend_from_slice(b"txt:");
                } else {
                    int_line(out, b'$', s.len() as i64);
                }
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, prefix: u8, n: i64) {
    // Formats without allocating: this runs for every bulk reply.
    let mut digits = [0u8; 24];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        digits[i] = b'-';
    }
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
