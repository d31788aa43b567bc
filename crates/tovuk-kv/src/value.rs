//! How a stored value is laid out in redb: `[kind: u8][expire_at_ms: u64 LE, 0 = none][payload]`.
//! A hash's payload is its fields in insertion order (as redis's listpack keeps small hashes),
//! each field and value prefixed by a u32 LE length.

use bytes::Bytes;

const HEADER: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String = 0,
    Hash = 1,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
        }
    }
}

/// One decoded value. `expire_at` is absolute milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub expire_at: Option<u64>,
    pub data: Bytes,
}

impl Entry {
    pub fn string(data: Bytes, expire_at: Option<u64>) -> Entry {
        Entry { kind: Kind::String, expire_at, data }
    }

    pub fn hash(fields: &Hash, expire_at: Option<u64>) -> Entry {
        Entry { kind: Kind::Hash, expire_at, data: Bytes::from(fields.encode()) }
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(self.kind as u8);
        out.extend_from_slice(&self.expire_at.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.data);
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at.is_some_and(|at| at <= now_ms)
    }
}

/// Reads only the header: kind, expiry and payload length. Used where the payload is not needed.
pub fn peek(raw: &[u8]) -> Option<(Kind, Option<u64>, usize)> {
    if raw.len() < HEADER {
        return None;
    }
    let kind = match raw[0] {
        0 => Kind::String,
        1 => Kind::Hash,
        _ => return None,
    };
    let mut at = [0u8; 8];
    at.copy_from_slice(&raw[1..HEADER]);
    let at = u64::from_le_bytes(at);
    Some((kind, (at != 0).then_some(at), raw.len() - HEADER))
}

pub fn decode(raw: &[u8]) -> Option<Entry> {
    let (kind, expire_at, _) = peek(raw)?;
    Some(Entry { kind, expire_at, data: Bytes::copy_from_slice(&raw[HEADER..]) })
}

/// A hash's fields in insertion order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hash(pub Vec<(Bytes, Bytes)>);

impl Hash {
    pub fn decode(data: &Bytes) -> Hash {
        let mut fields = Vec::new();
        let mut at = 0;
        let mut take = || -> Option<Bytes> {
            let len_bytes = data.get(at..at + 4)?;
            let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
            let item = data.get(at + 4..at + 4 + len)?;
            let item = data.slice_ref(item);
            at += 4 + len;
            Some(item)
        };
        while let (Some(f), Some(v)) = (take(), take()) {
            fields.push((f, v));
        }
        Hash(fields)
    }

    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.0.iter().map(|(f, v)| 8 + f.len() + v.len()).sum();
        let mut out = Vec::with_capacity(size);
        for (f, v) in &self.0 {
            for part in [f, v] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.0.iter().find(|(f, _)| f == field).map(|(_, v)| v)
    }

    /// Sets a field in place (keeping its position) or appends it; true if it is new.
    pub fn set(&mut self, field: Bytes, value: Bytes) -> bool {
        match self.0.iter_mut().find(|(f, _)| *f == field) {
            Some(slot) => {
                slot.1 = value;
                false
            }
            None => {
                self.0.push((field, value));
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        let before = self.0.len();
        self.0.retain(|(f, _)| f != field);
        self.0.len() != before
    }
}
