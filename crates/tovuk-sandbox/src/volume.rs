//! An app's `/data` with a size it cannot pass: an ext4 image of that size, loop-mounted
//! where the volume lives. A write past it fails with "no space left" inside the app, and
//! the host's disk never fills. The mount outlives the platform, as the apps do.

use std::path::Path;
use std::process::Command;

/// Whether this machine can give volumes a size, found once at start.
#[derive(Debug, Clone)]
pub struct Volumes {
    /// Why it cannot; `None` when it can.
    pub unavailable: Option<String>,
    /// Why a mounted volume cannot grow here (online resize needs `CAP_SYS_RESOURCE`);
    /// `None` when it can.
    pub cannot_grow: Option<String>,
}

/// What a volume is once ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sized {
    /// Mounted with this many bytes.
    Limited(u64),
    /// A plain directory: made before volumes had a size, or on a machine without loop
    /// devices. Its size is measured, not limited.
    Unlimited,
}

impl Volumes {
    /// Root, a loop device to attach, and `mkfs.ext4`, `mount`, `resize2fs` on `PATH`.
    pub fn detect() -> Volumes {
        let unavailable = if !rustix::process::geteuid().is_root() {
            Some("the platform does not run as root, which mounting a volume needs".to_owned())
        } else if !Path::new("/dev/loop-control").exists() {
            Some("this machine has no loop devices (/dev/loop-control)".to_owned())
        } else {
            ["mkfs.ext4", "resize2fs", "mount", "umount"].into_iter().find_map(|tool| {
                Command::new(tool)
                    .arg("-V")
                    .output()
                    .err()
                    .map(|_| format!("{tool} is not installed (Debian: apt-get install e2fsprogs mount)"))
            })
        };
        let cannot_grow = (!has_capability(CAP_SYS_RESOURCE))
            .then(|| "the platform lacks CAP_SYS_RESOURCE, which growing a mounted volume needs".to_owned());
        Volumes { unavailable, cannot_grow }
    }

    /// A machine where volumes are plain directories.
    pub fn unlimited(why: &str) -> Volumes {
        Volumes { unavailable: Some(why.to_owned()), cannot_grow: Some(why.to_owned()) }
    }

    /// Makes `dir` a volume of `bytes` backed by `image`: created (and mounted) the first
    /// time, mounted again after a reboot, grown when `bytes` grew (where this machine
    /// can). It never shrinks: a smaller size keeps the one it has. The returned size is
    /// the one it has. A directory that already holds files and is not a volume stays as
    /// it is.
    pub fn ensure(&self, image: &Path, dir: &Path, bytes: u64) -> std::io::Result<Sized> {
        if self.unavailable.is_some() {
            std::fs::create_dir_all(dir)?;
            return Ok(Sized::Unlimited);
        }
        if !is_mountpoint(dir)? {
            let fresh = !image.exists();
            if fresh {
                std::fs::create_dir_all(dir)?;
                if std::fs::read_dir(dir)?.next().is_some() {
                    return Ok(Sized::Unlimited);
                }
                create_image(image, bytes)?;
            }
            run(Command::new("mount").arg("-o").arg("loop,nosuid,nodev").arg(image).arg(dir))?;
            if fresh {
                // Nothing of the filesystem's own shows in the app's /data.
                let _ = std::fs::remove_dir(dir.join("lost+found"));
            }
        }
        let size = std::fs::metadata(image)?.len();
        if bytes > size && self.cannot_grow.is_none() {
            let file = std::fs::OpenOptions::new().write(true).open(image)?;
            file.set_len(bytes)?;
            drop(file);
            let device = loop_device_of(dir)?;
            run(Command::new("losetup").arg("--set-capacity").arg(&device))?;
            run(Command::new("resize2fs").arg(&device))?;
            return Ok(Sized::Limited(bytes));
        }
        Ok(Sized::Limited(size))
    }
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process holds `capability` (from `CapEff` in /proc).
fn has_capability(capability: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|effective| effective & (1 << capability) != 0)
}

/// A sparse image of `bytes` with an empty ext4 on it: no reserved blocks, so the app
/// gets all of it but what ext4 itself needs.
fn create_image(image: &Path, bytes: u64) -> std::io::Result<()> {
    let partial = image.with_extension("partial");
    let file = std::fs::File::create(&partial)?;
    file.set_len(bytes)?;
    drop(file);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1"])
        .arg(&partial))?;
    std::fs::rename(&partial, image)
}

fn run(command: &mut Command) -> std::io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Whether something is mounted at `dir` (its device differs from its parent's).
fn is_mountpoint(dir: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else { return Ok(false) };
    let parent = dir.parent().map_or_else(|| std::fs::metadata("/"), std::fs::metadata)?;
    Ok(meta.dev() != parent.dev())
}

/// The loop device mounted at `dir`, from the mount table.
fn loop_device_of(dir: &Path) -> std::io::Result<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let target = dir.canonicalize()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            Some((fields.next()?, fields.next()?))
        })
        .rfind(|(device, mountpoint)| device.starts_with("/dev/loop") && Path::new(mountpoint) == target)
        .map(|(device, _)| device.to_owned())
        .ok_or_else(|| std::io::Error::other(format!("no loop device is mounted at {}", target.display())))
}
