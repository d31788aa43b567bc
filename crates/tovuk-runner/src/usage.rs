//! Measuring what instances use: CPU time and resident memory of each instance, reported as
//! `cpu_ms` and `memory_gb_s`. An instance in a control group is read from its group's
//! counters (a few small files, whatever else runs on the machine); without one, from its
//! process tree in /proc, read once per sample for every instance.

use std::collections::HashMap;
use std::time::Duration;
use tovuk_api_types::{UsageBatch, UsageSample};

/// How often instances are measured.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One process's line of `/proc/<pid>/stat`, the fields metering needs.
struct ProcStat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks: its own CPU and its reaped children's.
    ticks: u64,
    rss_pages: u64,
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields start after the last `)`.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|value| value.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)? + field(16)? + field(17)?,
        rss_pages: field(24)?,
    })
}

/// Every process's stat, by pid, and each pid's children: one pass over /proc.
struct ProcessTable {
    stats: HashMap<u32, ProcStat>,
    children: HashMap<u32, Vec<u32>>,
}

impl ProcessTable {
    fn read() -> Option<ProcessTable> {
        let mut stats: HashMap<u32, ProcStat> = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            if let Some(stat) = read_stat(pid) {
                stats.insert(pid, stat);
            }
        }
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, stat) in &stats {
            children.entry(stat.ppid).or_default().push(*pid);
        }
        Some(ProcessTable { stats, children })
    }

    /// CPU time in ms and resident bytes of `root` and everything under it.
    fn tree_usage(&self, root: u32) -> Option<(u64, u64)> {
        self.stats.get(&root)?;
        let (mut ticks, mut pages) = (0u64, 0u64);
        let mut queue = vec![root];
        while let Some(pid) = queue.pop() {
            if let Some(stat) = self.stats.get(&pid) {
                ticks += stat.ticks;
                pages += stat.rss_pages;
            }
            queue.extend(self.children.get(&pid).into_iter().flatten());
        }
        let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
        Some((ticks * 1000 / ticks_per_second, pages * rustix::param::page_size() as u64))
    }
}

/// CPU time in ms and resident bytes of `root` and everything under it.
#[cfg(test)]
pub(crate) fn tree_usage(root: u32) -> Option<(u64, u64)> {
    ProcessTable::read()?.tree_usage(root)
}

/// One instance to measure.
pub(crate) struct Measured {
    pub app: String,
    /// Its process, and its control group when it has one.
    pub pid: u32,
    pub group: Option<tovuk_sandbox::cgroup::Group>,
}

/// Turns successive measurements of each instance into usage since the last one.
#[derive(Default)]
pub(crate) struct Sampler {
    /// CPU ms last seen, by instance pid (or group: its counter outlives a restart).
    last_cpu_ms: HashMap<String, u64>,
}

impl Sampler {
    /// The usage of `instances` over the last `interval`.
    pub(crate) fn sample(&mut self, instances: &[Measured], interval: Duration) -> UsageBatch {
        let mut batch = UsageBatch::default();
        let mut seen = HashMap::new();
        // /proc is read only for instances without a group, and then once for all of them.
        let table = instances
            .iter()
            .any(|instance| instance.group.as_ref().and_then(|group| group.cpu_nanos()).is_none())
            .then(ProcessTable::read)
            .flatten();
        for instance in instances {
            let from_group = instance.group.as_ref().and_then(|group| {
                let cpu_ms = group.cpu_nanos()? / 1_000_000;
                Some((format!("group:{}", group.name()), cpu_ms, group.memory_bytes()?))
            });
            let measured = from_group.or_else(|| {
                let (cpu_ms, rss) = table.as_ref()?.tree_usage(instance.pid)?;
                Some((format!("pid:{}", instance.pid), cpu_ms, rss))
            });
            let Some((key, cpu_ms, rss_bytes)) = measured else { continue };
            // A new process or group (first sample, a restart) counts from zero.
            let before = self.last_cpu_ms.get(&key).copied().unwrap_or(0);
            let cpu = cpu_ms.saturating_sub(before);
            seen.insert(key, cpu_ms);
            let app = &instance.app;
            if cpu > 0 {
                batch.entries.push(UsageSample { app: app.clone(), meter: "cpu_ms".into(), quantity: cpu as f64 });
            }
            let gb_s = rss_bytes as f64 / 1e9 * interval.as_secs_f64();
            if gb_s > 0.0 {
                batch.entries.push(UsageSample { app: app.clone(), meter: "memory_gb_s".into(), quantity: gb_s });
            }
        }
        self.last_cpu_ms = seen;
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_tree_that_burns_cpu() {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5"])
            .spawn()
            .expect("spawn sh");
        std::thread::sleep(Duration::from_millis(800));
        let measured = tree_usage(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let (cpu_ms, rss) = measured.expect("the process is there");
        assert!(cpu_ms > 0, "cpu {cpu_ms}");
        assert!(rss > 0, "rss {rss}");
        assert!(tree_usage(u32::MAX - 1).is_none());
    }
}
