//! An instance's sandbox process: started by this run of the platform, or adopted from
//! the run before (apps outlive a platform restart).
//!
//! Each started process leaves a record in its instance directory naming it exactly (pid
//! and kernel start time), so a later start adopts that process and never a stranger
//! that happens to have reused its pid.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

const RECORD_FILE: &str = "instance.json";

/// What the runner wrote down about a process it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub app: String,
    pub deploy_id: String,
    /// The outer `bwrap` process: killing it ends everything in the sandbox.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
    pub port: u16,
    pub started_at: String,
    pub restarts: u32,
    /// `[run] stop_grace` in milliseconds, to stop it the way its contract says.
    #[serde(default)]
    pub stop_grace_ms: u64,
}

impl Record {
    fn path(dir: &Path) -> PathBuf {
        dir.join(RECORD_FILE)
    }

    /// Writes the record whole (a temp file, then a rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let temp = dir.join(format!("{RECORD_FILE}.tmp"));
        std::fs::write(&temp, text)?;
        std::fs::rename(temp, Self::path(dir))
    }

    pub fn read(dir: &Path) -> Option<Record> {
        let text = std::fs::read(Self::path(dir)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(Self::path(dir));
    }

    /// Whether the process it names is alive and is the sandbox the runner started for
    /// this deploy: same pid, same start time, a `bwrap` whose arguments name the deploy.
    pub fn is_alive(&self) -> bool {
        let proc = PathBuf::from(format!("/proc/{}", self.pid));
        let Some((comm, state, start_ticks)) =
            std::fs::read_to_string(proc.join("stat")).ok().as_deref().and_then(stat)
        else {
            return false;
        };
        // A zombie has ended; only its exit status waits to be collected.
        if state == "Z" {
            return false;
        }
        let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
        comm == "bwrap"
            && start_ticks == self.start_ticks
            && String::from_utf8_lossy(&cmdline).contains(self.deploy_id.as_str())
    }
}

/// `(comm, state, start time)` from the text of `/proc/PID/stat`.
fn stat(text: &str) -> Option<(String, String, u64)> {
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; split at the last `)`.
    let (head, tail) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let mut fields = tail.split_whitespace();
    let state = fields.next()?.to_owned();
    // Field 22 overall; the tail starts at field 3, `state`.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some((comm, state, start_ticks))
}

/// The start time of a live process, to record it.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, _, ticks)| ticks)
}

/// How often an adopted process is looked at to see whether it ended: it is not our
/// child, so no exit status reaches us.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

/// A sandbox process the runner supervises.
pub(crate) enum Process {
    /// Started by this run: its exit status is known.
    Child(tokio::process::Child),
    /// Adopted from the run before: only its end is known, seen in /proc.
    Adopted(Record),
}

impl Process {
    /// Adopts the process `record` names, once [`Record::is_alive`] said it is ours.
    pub fn adopt(record: &Record) -> Process {
        Process::Adopted(record.clone())
    }

    pub fn pid(&self) -> u32 {
        match self {
            Process::Child(child) => child.id().unwrap_or(0),
            Process::Adopted(record) => record.pid,
        }
    }

    /// Waits for the process to end; its exit code when known.
    pub async fn wait(&mut self) -> Option<i32> {
        match self {
            Process::Child(child) => child.wait().await.ok().map(|status| status.code().unwrap_or(137)),
            Process::Adopted(record) => {
                while record.is_alive() {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                None
            }
        }
    }

    /// Kills the sandbox and everything in it, and waits for it.
    pub async fn kill(&mut self) {
        match self {
            Process::Child(child) => {
                if let Some(pid) = child.id() {
                    crate::signal::kill_sandbox(pid);
                }
                let _ = child.wait().await;
            }
            Process::Adopted(record) => {
                if record.is_alive() {
                    crate::signal::kill_sandbox(record.pid);
                }
                while record.is_alive() {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
            }
        }
    }
}

/// Kills the process a record names when it is still the one the runner started, and
/// forgets the record: an instance nobody wants after a restart.
pub(crate) async fn kill_recorded(dir: &Path) {
    if let Some(record) = Record::read(dir)
        && record.is_alive()
    {
        let mut process = Process::adopt(&record);
        crate::signal::terminate(record.pid);
        let grace = Duration::from_millis(record.stop_grace_ms.max(1000));
        if tokio::time::timeout(grace, process.wait()).await.is_err() {
            process.kill().await;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_past_a_comm_with_spaces_and_parentheses() {
        let line = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(stat(line), Some(("my (odd) app".to_owned(), "S".to_owned(), 987_654)));
        let own = start_ticks(std::process::id()).expect("our own start time");
        assert!(own > 0);
    }

    #[test]
    fn a_record_of_a_dead_or_foreign_process_is_not_alive() {
        let own = std::process::id();
        let record = Record {
            app: "a".into(),
            deploy_id: "dep_1".into(),
            pid: own,
            start_ticks: start_ticks(own).expect("ticks"),
            port: 1,
            started_at: String::new(),
            restarts: 0,
            stop_grace_ms: 0,
        };
        // Our own process is alive but is not a bwrap sandbox of that deploy.
        assert!(!record.is_alive());
        assert!(!Record { pid: u32::MAX - 1, ..record }.is_alive());
    }
}
