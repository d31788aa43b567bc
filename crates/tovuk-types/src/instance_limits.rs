//! The limits the platform adds to an instance's `[limits]`: what the runner applies and
//! what `tovuk app inspect` reports, from one place.

/// Processes (and threads) one instance may run.
pub const INSTANCE_PIDS: u64 = 512;

/// The size of an instance's private `/tmp`, in MiB: half its memory, so a full `/tmp`
/// fails a write before it can use up the memory (tmpfs pages count as memory).
pub fn tmp_mb(memory_mb: u32) -> u32 {
    memory_mb / 2
}
