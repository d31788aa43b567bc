//! Resource limits for sandboxes: one control group per app instance or build, with
//! memory, CPU and pids limits, under the platform's own `tovuk` group.
//!
//! Both cgroup versions are supported and detected at start: v2 (one unified hierarchy, what
//! current distributions run) and v1 (one hierarchy per controller). A controller that is
//! missing, or a hierarchy the platform may not write, is reported as not enforced; nothing
//! claims a limit that is not applied. A sandbox enters its group before `bwrap` starts (see
//! [`crate::command`]), so everything it ever runs is counted and limited.

use std::path::{Path, PathBuf};

/// The platform's group under each hierarchy.
const PLATFORM_GROUP: &str = "tovuk";
/// The CPU period quotas are expressed in, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The control group hierarchies this machine offers the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// cgroup v2: the platform's group in the unified hierarchy.
    V2 { group: PathBuf, memory: bool, cpu: bool, pids: bool },
    /// cgroup v1: the platform's group in each controller's hierarchy that exists.
    V1 { memory: Option<PathBuf>, cpu: Option<PathBuf>, cpuacct: Option<PathBuf>, pids: Option<PathBuf> },
    /// None can be used; why.
    Unavailable(String),
}

/// Which limits are applied on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enforced {
    pub memory: bool,
    pub cpu: bool,
    pub pids: bool,
}

/// The limits of one group. `None` leaves a limit unset.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// Hard CPU quota in cores (`1.5` = one and a half cores).
    pub cpu_cores: Option<f64>,
    pub pids: Option<u64>,
}

/// One sandbox's group: a directory per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    name: String,
    version: u8,
    /// Every directory of the group (one for v2; one per controller for v1).
    dirs: Vec<PathBuf>,
    memory: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

impl Cgroups {
    /// Finds the hierarchies in `/proc/self/mounts` and makes the platform's group in each.
    pub fn detect() -> Cgroups {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        Cgroups::detect_in(&mounts)
    }

    fn detect_in(mounts: &str) -> Cgroups {
        let mut v1: [Option<PathBuf>; 4] = Default::default();
        let mut v2 = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, dir, kind, options, ..] = fields[..] else { continue };
            match kind {
                "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(dir)),
                "cgroup" => {
                    for (slot, controller) in v1.iter_mut().zip(["memory", "cpu", "cpuacct", "pids"]) {
                        if slot.is_none() && options.split(',').any(|option| option == controller) {
                            *slot = Some(PathBuf::from(dir));
                        }
                    }
                }
                _ => {}
            }
        }
        // v2 only where it holds the controllers: a hybrid host's v2 mount is empty.
        if let Some(root) = v2 {
            let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |name: &str| offered.split_whitespace().any(|controller| controller == name);
            if has("memory") || has("cpu") || has("pids") {
                return Cgroups::prepare_v2(&root, has("memory"), has("cpu"), has("pids"));
            }
        }
        let [memory, cpu, cpuacct, pids] = v1;
        if memory.is_none() && cpu.is_none() && pids.is_none() {
            return Cgroups::Unavailable(
                "no cgroup hierarchy with the memory, cpu or pids controller is mounted".into(),
            );
        }
        let prepare = |root: Option<PathBuf>| {
            let group = root?.join(PLATFORM_GROUP);
            std::fs::create_dir_all(&group).ok()?;
            Some(group)
        };
        let cgroups =
            Cgroups::V1 { memory: prepare(memory), cpu: prepare(cpu), cpuacct: prepare(cpuacct), pids: prepare(pids) };
        if cgroups.enforced() == Enforced::default() {
            return Cgroups::Unavailable(
                "the cgroup hierarchies are not writable (the platform runs without root?)".into(),
            );
        }
        cgroups
    }

    fn prepare_v2(root: &Path, memory: bool, cpu: bool, pids: bool) -> Cgroups {
        let group = root.join(PLATFORM_GROUP);
        if let Err(error) = std::fs::create_dir_all(&group) {
            return Cgroups::Unavailable(format!("cannot create {}: {error}", group.display()));
        }
        // Controllers reach a group only when every parent hands them down.
        let wanted: Vec<&str> = [("memory", memory), ("cpu", cpu), ("pids", pids)]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        let enable = wanted.iter().map(|name| format!("+{name}")).collect::<Vec<_>>().join(" ");
        let _ = std::fs::write(root.join("cgroup.subtree_control"), &enable);
        let _ = std::fs::write(group.join("cgroup.subtree_control"), &enable);
        let handed = std::fs::read_to_string(group.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |name: &str| handed.split_whitespace().any(|controller| controller.trim_start_matches('+') == name);
        let cgroups = Cgroups::V2 { memory: has("memory"), cpu: has("cpu"), pids: has("pids"), group };
        if cgroups.enforced() == Enforced::default() {
            return Cgroups::Unavailable(format!(
                "no controller can be enabled under {} (is it delegated to this user?)",
                root.join(PLATFORM_GROUP).display()
            ));
        }
        cgroups
    }

    /// `v2`, `v1` or `none`.
    pub fn version(&self) -> &'static str {
        match self {
            Cgroups::V2 { .. } => "v2",
            Cgroups::V1 { .. } => "v1",
            Cgroups::Unavailable(_) => "none",
        }
    }

    /// Why no limit is applied, when none is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            Cgroups::Unavailable(why) => Some(why),
            _ => None,
        }
    }

    pub fn enforced(&self) -> Enforced {
        match self {
            Cgroups::V2 { memory, cpu, pids, .. } => Enforced { memory: *memory, cpu: *cpu, pids: *pids },
            Cgroups::V1 { memory, cpu, pids, .. } => {
                Enforced { memory: memory.is_some(), cpu: cpu.is_some(), pids: pids.is_some() }
            }
            Cgroups::Unavailable(_) => Enforced::default(),
        }
    }

    /// The group `name`, as paths: nothing is made or changed. For a sandbox that outlived
    /// the platform and is adopted, and for reading a group's counters.
    pub fn group(&self, name: &str) -> Option<Group> {
        let name = sanitize(name);
        match self {
            Cgroups::V2 { group, .. } => {
                let dir = group.join(&name);
                Some(Group { name, version: 2, dirs: vec![dir.clone()], memory: Some(dir.clone()), cpuacct: Some(dir) })
            }
            Cgroups::V1 { memory, cpu, cpuacct, pids } => {
                let at = |root: &Option<PathBuf>| root.as_ref().map(|root| root.join(&name));
                let dirs = [memory, cpu, cpuacct, pids].into_iter().filter_map(at).collect();
                let (memory, cpuacct) = (at(memory), at(cpuacct).or_else(|| at(cpu)));
                Some(Group { name, version: 1, dirs, memory, cpuacct })
            }
            Cgroups::Unavailable(_) => None,
        }
    }

    /// Makes the group `name` with `limits` (what this machine cannot enforce is left out).
    pub fn create(&self, name: &str, limits: &Limits) -> std::io::Result<Option<Group>> {
        let Some(group) = self.group(name) else { return Ok(None) };
        for dir in &group.dirs {
            std::fs::create_dir_all(dir)?;
        }
        let write = |dir: &Path, file: &str, value: String| -> std::io::Result<()> {
            std::fs::write(dir.join(file), value).map_err(|error| {
                std::io::Error::new(error.kind(), format!("cannot set {}: {error}", dir.join(file).display()))
            })
        };
        match self {
            Cgroups::V2 { memory, cpu, pids, .. } => {
                let dir = &group.dirs[0];
                if let (true, Some(bytes)) = (*memory, limits.memory_bytes) {
                    write(dir, "memory.max", bytes.to_string())?;
                    // No swap: past its memory the sandbox is stopped, not slowed to a crawl.
                    let _ = write(dir, "memory.swap.max", "0".into());
                    let _ = write(dir, "memory.oom.group", "1".into());
                }
                if let (true, Some(cores)) = (*cpu, limits.cpu_cores) {
                    write(dir, "cpu.max", format!("{} {CPU_PERIOD_US}", quota_us(cores)))?;
                }
                if let (true, Some(count)) = (*pids, limits.pids) {
                    write(dir, "pids.max", count.to_string())?;
                }
            }
            Cgroups::V1 { memory, cpu, pids, .. } => {
                if let (Some(root), Some(bytes)) = (memory, limits.memory_bytes) {
                    let dir = root.join(group.name());
                    write(&dir, "memory.limit_in_bytes", bytes.to_string())?;
                    // Memory and swap together: no swap past the limit (when swap accounting is on).
                    let _ = write(&dir, "memory.memsw.limit_in_bytes", bytes.to_string());
                }
                if let (Some(root), Some(cores)) = (cpu, limits.cpu_cores) {
                    let dir = root.join(group.name());
                    write(&dir, "cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                    write(&dir, "cpu.cfs_quota_us", quota_us(cores).to_string())?;
                }
                if let (Some(root), Some(count)) = (pids, limits.pids) {
                    write(&root.join(group.name()), "pids.max", count.to_string())?;
                }
            }
            Cgroups::Unavailable(_) => {}
        }
        Ok(Some(group))
    }
}

impl Cgroups {
    /// Removes the groups a crashed or killed platform left: empty, and older than a
    /// minute (a group just made waits for its sandbox to enter it).
    pub fn remove_stale(&self) -> usize {
        let roots: Vec<&PathBuf> = match self {
            Cgroups::V2 { group, .. } => vec![group],
            Cgroups::V1 { memory, cpu, cpuacct, pids } => [memory, cpu, cpuacct, pids].into_iter().flatten().collect(),
            Cgroups::Unavailable(_) => Vec::new(),
        };
        let mut removed = 0;
        for root in roots {
            let Ok(entries) = std::fs::read_dir(root) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let old = entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age.as_secs() >= 60));
                let empty = std::fs::read_to_string(entry.path().join("cgroup.procs"))
                    .is_ok_and(|procs| procs.trim().is_empty());
                if (name.starts_with("app-") || name.starts_with("build-"))
                    && old
                    && empty
                    && std::fs::remove_dir(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// A group name: what a path component may hold.
fn sanitize(name: &str) -> String {
    name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '_' }).collect()
}

fn quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

impl Group {
    /// The group's name under the platform's group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `cgroup.procs` files a process writes its pid to, to enter the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// How many times the kernel killed a process of the group for memory.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else { return 0 };
        let file = if self.version == 2 { "memory.events" } else { "memory.oom_control" };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the group used, in nanoseconds.
    pub fn cpu_nanos(&self) -> Option<u64> {
        let dir = self.cpuacct.as_ref()?;
        if self.version == 2 {
            let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
            let usec: u64 = stat.lines().find_map(|line| line.strip_prefix("usage_usec "))?.trim().parse().ok()?;
            Some(usec * 1000)
        } else {
            std::fs::read_to_string(dir.join("cpuacct.usage")).ok()?.trim().parse().ok()
        }
    }

    /// Memory the group's processes hold now, in bytes: anonymous memory and shared memory
    /// (its `/tmp` among it), not the file cache the kernel can drop.
    pub fn memory_bytes(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
        let keys: [&str; 2] = if self.version == 2 { ["anon", "shmem"] } else { ["total_rss", "total_shmem"] };
        let value = |key: &str| {
            stat.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(keys.iter().map(|key| value(key)).sum())
    }

    /// The pids of every process in the group.
    pub fn pids(&self) -> Vec<u32> {
        let Some(dir) = self.dirs.first() else { return Vec::new() };
        let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|line| line.trim().parse().ok()).collect()
    }

    /// Kills whatever is left in the group and removes it.
    pub fn remove(&self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake v2 root: the files the kernel would show.
    fn fake_v2(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("cgroup.controllers"), controllers).expect("write");
        root
    }

    #[test]
    fn a_hybrid_host_with_an_empty_v2_mount_uses_its_v1_controllers() {
        let v2 = fake_v2("");
        let v1 = tempfile::tempdir().expect("tempdir");
        let mounts = format!(
            "cgroup2 {} cgroup2 rw 0 0\ncgroup {}/memory cgroup rw,memory 0 0\ncgroup {}/pids cgroup rw,pids 0 0\n",
            v2.path().display(),
            v1.path().display(),
            v1.path().display()
        );
        let cgroups = Cgroups::detect_in(&mounts);
        assert_eq!(cgroups.version(), "v1", "{cgroups:?}");
        assert_eq!(cgroups.enforced(), Enforced { memory: true, cpu: false, pids: true });
        let group =
            cgroups.create("dep_1", &Limits { memory_bytes: Some(1 << 20), cpu_cores: Some(1.0), pids: Some(9) });
        let group = group.expect("create").expect("group");
        assert_eq!(
            std::fs::read_to_string(v1.path().join("memory/tovuk/dep_1/memory.limit_in_bytes")).ok().as_deref(),
            Some("1048576")
        );
        assert_eq!(std::fs::read_to_string(v1.path().join("pids/tovuk/dep_1/pids.max")).ok().as_deref(), Some("9"));
        assert_eq!(group.procs_files().len(), 2, "one per hierarchy");
        assert!(matches!(Cgroups::detect_in(""), Cgroups::Unavailable(_)));
    }

    #[test]
    fn v2_limits_are_written_as_the_kernel_reads_them() {
        let root = fake_v2("cpuset cpu io memory pids");
        // A fake root takes any write, so subtree_control reads back what was enabled.
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\n", root.path().display());
        let cgroups = Cgroups::detect_in(&mounts);
        assert_eq!(cgroups.version(), "v2");
        assert_eq!(cgroups.enforced(), Enforced { memory: true, cpu: true, pids: true });
        let limits = Limits { memory_bytes: Some(64 << 20), cpu_cores: Some(0.5), pids: Some(128) };
        let group = cgroups.create("dep_1/2", &limits).expect("create").expect("a group");
        let dir = root.path().join("tovuk").join("dep_1_2");
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect(file);
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("pids.max"), "128");
        assert_eq!(group.procs_files(), [dir.join("cgroup.procs")]);
        std::fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").expect("write");
        assert_eq!(group.oom_kills(), 1);
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").expect("write");
        assert_eq!(group.cpu_nanos(), Some(2_500_000));
    }

    #[test]
    fn v2_without_controllers_handed_down_claims_nothing() {
        let root = fake_v2("");
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\n", root.path().display());
        assert!(matches!(Cgroups::detect_in(&mounts), Cgroups::Unavailable(_)));
    }
}
