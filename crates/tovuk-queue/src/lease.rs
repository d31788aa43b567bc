//! Lease ids: which message, which delivery of it, and a secret of that delivery, so an
//! ack names exactly one lease and an old one is told apart from one never given.

use std::fmt;

/// One lease of one message: `l_<seq>_<attempt>_<nonce>` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseId {
    pub seq: i64,
    /// The attempt this lease is (1 for the first delivery).
    pub attempt: u32,
    /// Random per lease operation: a lease id cannot be made up from a message id.
    pub nonce: i64,
}

impl LeaseId {
    pub fn parse(text: &str) -> Option<LeaseId> {
        let mut parts = text.strip_prefix("l_")?.split('_');
        let seq = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        let nonce = u64::from_str_radix(parts.next()?, 16).ok()?;
        parts.next().is_none().then_some(LeaseId { seq, attempt, nonce: nonce as i64 })
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l_{}_{}_{:016x}", self.seq, self.attempt, self.nonce as u64)
    }
}

/// A fresh lease nonce.
pub(crate) fn new_nonce() -> i64 {
    let mut bytes = [0u8; 8];
    // Without randomness a nonce still tells leases apart, only less secretly.
    if getrandom::fill(&mut bytes).is_err() {
        return crate::now_ms();
    }
    i64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_id_reads_back_and_nothing_else_does() {
        for nonce in [0, 1, -1, i64::MIN, i64::MAX] {
            let lease = LeaseId { seq: 42, attempt: 3, nonce };
            assert_eq!(LeaseId::parse(&lease.to_string()), Some(lease));
        }
        for bad in ["", "l_", "l_1_2", "l_1_2_zz", "x_1_2_3", "l_1_2_3_4", "l_-_2_3", "msg_1"] {
            assert_eq!(LeaseId::parse(bad), None, "{bad}");
        }
    }
}
