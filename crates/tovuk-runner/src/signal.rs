//! Signalling a sandboxed app: the `bwrap` processes pass no signals on, so SIGTERM goes
//! to every process below the sandbox that is not `bwrap` itself.

use rustix::process::{Pid, Signal, kill_process};

/// Every process whose ancestry leads to `root`, read from /proc.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parents: Vec<(u32, u32, String)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses; split at the last `)`.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map(|(_, comm)| comm.to_owned()).unwrap_or_default();
        let Some(ppid) = tail.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) else { continue };
        parents.push((pid, ppid, comm));
    }
    let mut found = vec![root];
    let mut result = Vec::new();
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, comm) in &parents {
            if found.contains(ppid) && !found.contains(pid) {
                found.push(*pid);
                result.push((*pid, comm.clone()));
                grew = true;
            }
        }
    }
    result
}

/// Asks the app inside the sandbox rooted at `sandbox_pid` to stop (SIGTERM).
pub(crate) fn terminate(sandbox_pid: u32) {
    for (pid, comm) in descendants(sandbox_pid) {
        if comm == "bwrap" {
            continue;
        }
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::TERM);
        }
    }
}

/// Kills the sandbox rooted at `sandbox_pid` and everything in it (SIGKILL). An app's
/// sandbox outlives the platform, so its inner `bwrap` (the pid namespace's init) does not
/// die with the outer one: both are killed, the init first, which ends the namespace.
pub(crate) fn kill_sandbox(sandbox_pid: u32) {
    for pid in descendants(sandbox_pid).into_iter().map(|(pid, _)| pid).chain([sandbox_pid]) {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}
