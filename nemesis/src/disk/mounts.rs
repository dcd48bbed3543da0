//! Faultline's FUSE mounts as the kernel lists them (`/proc/self/mountinfo`): finding one by
//! its name, unmounting it, and removing those of processes that are gone.
//!
//! Every mount is named `faultline-<pid>-<n>` (its `fsname`, the source column of the mount
//! table), so a mount whose process was SIGKILLed can be recognised by its dead pid, as
//! [`super::super::remove_leftover_chains`] recognises iptables chains (`crate::owned_names`
//! makes and reads both kinds of name).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::MntFlags;

use super::DiskError;
use crate::owned_names;
use crate::time_limit::output_within_blocking;

/// How long `fusermount3` gets before it is killed: an unmount can hang on a FUSE daemon that
/// stopped answering, and a run's teardown must not hang with it.
const FUSERMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every Faultline mount's fsname starts with this.
pub(crate) const FSNAME_PREFIX: &str = "faultline-";

/// One line of the mount table, the parts used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub mount_point: PathBuf,
    /// `fuse.faultline` for ours.
    pub fstype: String,
    /// The fsname: `faultline-<pid>-<n>` for ours.
    pub source: String,
}

impl MountEntry {
    /// Whether this is a FUSE mount of Faultline's.
    pub(crate) fn is_faultline(&self) -> bool {
        self.fstype.starts_with("fuse") && self.source.starts_with(FSNAME_PREFIX)
    }
}

/// The mounts this process can see.
pub(crate) fn mounts() -> io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&std::fs::read("/proc/self/mountinfo")?))
}

/// Where the mount named `fsname` is mounted (more than once if it was bind-mounted).
pub(crate) fn mount_points(fsname: &str) -> io::Result<Vec<PathBuf>> {
    Ok(mounts()?
        .into_iter()
        .filter(|entry| entry.is_faultline() && entry.source == fsname)
        .map(|entry| entry.mount_point)
        .collect())
}

/// Parses `/proc/<pid>/mountinfo`, whose lines read
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`
/// with spaces and the like in paths escaped as `\ooo`. Other lines are skipped.
pub(crate) fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|byte| *byte == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|byte| *byte == b' ').collect();
            let separator = fields.iter().position(|field| *field == b"-")?;
            let mount_point = fields.get(4).filter(|_| separator >= 6)?;
            let fstype = fields.get(separator + 1)?;
            let source = fields.get(separator + 2)?;
            Some(MountEntry {
                mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
                fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|digits| byte == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                rest = &tail[3..];
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

/// Unmounts the FUSE mount at `path`. Root unmounts it directly; if it is busy (a process
/// still has a file open in it or its cwd there) the connection is aborted and the mount
/// detached, so that it is gone from the mount table either way. Other users go through
/// `fusermount3 -u`, lazily (`-z`) when busy. A path that is no longer a mount is fine.
pub(crate) fn unmount(path: &Path) -> Result<(), DiskError> {
    let failed = |source| DiskError::Unmount {
        path: path.to_path_buf(),
        source,
    };
    if !nix::unistd::geteuid().is_root() {
        return fusermount_unmount(path).map_err(failed);
    }
    match nix::mount::umount2(path, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) => Ok(()),
        // MNT_FORCE aborts a FUSE connection: pending and later requests fail with ENOTCONN.
        Err(Errno::EBUSY) => {
            match nix::mount::umount2(path, MntFlags::MNT_FORCE | MntFlags::MNT_DETACH) {
                Ok(()) | Err(Errno::EINVAL) => Ok(()),
                Err(errno) => Err(failed(errno.into())),
            }
        }
        Err(errno) => Err(failed(errno.into())),
    }
}

fn fusermount_unmount(path: &Path) -> io::Result<()> {
    let Some(fusermount) = super::available::fusermount3() else {
        return Err(io::Error::other(
            "only root or fusermount3 (Debian's fuse3 package) can unmount it",
        ));
    };
    let mut last = String::new();
    for args in [&["-u", "-q"][..], &["-u", "-q", "-z"][..]] {
        let mut command = Command::new(&fusermount);
        command.args(args).arg(path);
        let output = output_within_blocking(&mut command, FUSERMOUNT_TIMEOUT)?;
        if output.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if last.contains("not found") || last.contains("not mounted") {
            return Ok(());
        }
    }
    Err(io::Error::other(format!("fusermount3 -u: {last}")))
}

/// Unmounts the Faultline filesystems of processes that no longer exist (a run that was
/// SIGKILLed where fusermount3's auto-unmount was not available to clean up after it), and
/// returns where they were mounted. Mounts of live processes, this one included, are left
/// alone.
pub fn remove_leftover_mounts() -> Result<Vec<PathBuf>, DiskError> {
    let table = mounts().map_err(|source| DiskError::Unmount {
        path: PathBuf::from("/proc/self/mountinfo"),
        source,
    })?;
    let mut removed = Vec::new();
    for entry in leftovers(&table) {
        unmount(&entry.mount_point)?;
        removed.push(entry.mount_point.clone());
    }
    Ok(removed)
}

/// The Faultline mounts in `table` whose process is gone.
fn leftovers(table: &[MountEntry]) -> impl Iterator<Item = &MountEntry> {
    table.iter().filter(|entry| {
        entry.is_faultline() && owned_names::is_leftover(&entry.source, FSNAME_PREFIX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mount_point_type_and_source_with_escapes_undone() {
        let text = b"22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
            36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:2 - ext3 /dev/root rw\n\
            90 22 0:52 / /tmp/a\\040b/data rw,nosuid,nodev - fuse.faultline faultline-77-0 rw,user_id=0\n\
            garbage\n";
        let table = parse_mountinfo(text);
        assert_eq!(table.len(), 3);
        assert_eq!(table[1].mount_point, Path::new("/mnt/parent"));
        assert_eq!(table[1].fstype, "ext3");
        assert_eq!(
            table[2],
            MountEntry {
                mount_point: PathBuf::from("/tmp/a b/data"),
                fstype: "fuse.faultline".into(),
                source: "faultline-77-0".into(),
            }
        );
        assert!(table[2].is_faultline());
        assert!(!table[0].is_faultline());
    }

    #[test]
    fn only_faultline_mounts_of_gone_processes_count_as_leftovers() {
        let own = std::process::id();
        let entry = |fstype: &str, source: &str| MountEntry {
            mount_point: PathBuf::from(format!("/m/{source}")),
            fstype: fstype.into(),
            source: source.into(),
        };
        let table = [
            entry("fuse.faultline", &format!("faultline-{own}-0")),
            // pid 1 always exists; 4194305 is above the kernel's largest pid.
            entry("fuse.faultline", "faultline-1-0"),
            entry("fuse.faultline", "faultline-4194305-2"),
            entry("fuse.sshfs", "user@host:"),
            entry("ext4", "faultline-4194305-3"),
            entry("fuse.faultline", "faultline-x-1"),
        ];
        let found: Vec<&str> = leftovers(&table).map(|e| e.source.as_str()).collect();
        assert_eq!(found, ["faultline-4194305-2"]);
    }
}
