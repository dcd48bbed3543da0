//! [`PowerLossDisk`]: one mounted power-loss filesystem, served by a fuser session on a
//! thread of this process, and its end.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Session, SessionACL};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::DiskError;
use super::available::fusermount3;
use super::fs::{PowerLossFs, SharedModel, lock};
use super::model::{Loss, Model};
use super::mounts::{FSNAME_PREFIX, mount_points, unmount};
use super::tree;
use crate::owned_names::fresh_id;

// The harness shares a disk between its tasks and threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<PowerLossDisk>();
};

/// Numbers the mounts of one process.
static NEXT_MOUNT: AtomicU32 = AtomicU32::new(0);

/// How long an unmount waits for the session's thread to see the connection end.
const SESSION_END_TIMEOUT: Duration = Duration::from_secs(5);

/// A directory served by the power-loss filesystem: what a process writes there is held in
/// this process's memory, and [`PowerLossDisk::lose_unsynced`] cuts the power.
///
/// Written data is visible at once and durable once its file is fsynced or fdatasynced
/// (`close` is no sync); a created, removed or renamed name is visible at once and durable
/// once its directory is fsynced. The cut keeps exactly what is durable. (The rules in full,
/// cross-directory renames included, head `nemesis/src/disk/mod.rs`.)
///
/// It is unmounted by [`PowerLossDisk::unmount_into`] (keeping the files),
/// [`PowerLossDisk::unmount`], or, as a last resort, when dropped (a panic, an early
/// return). Where `fusermount3` is installed the mount is also made with its
/// `auto_unmount`, so that even a SIGKILL of this process leaves no mount behind; elsewhere
/// [`super::remove_leftover_mounts`] removes it on the next run.
pub struct PowerLossDisk {
    mountpoint: PathBuf,
    fsname: String,
    model: SharedModel,
    session: Option<BackgroundSession>,
    auto_unmount: bool,
    /// The fusermount3 that stays this process's child while the mount lives, to unmount
    /// it should this process die. fuser forgets it; it is reaped after the unmount.
    guardian: Option<Pid>,
}

impl fmt::Debug for PowerLossDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerLossDisk")
            .field("mountpoint", &self.mountpoint)
            .field("fsname", &self.fsname)
            .field("mounted", &self.session.is_some())
            .field("auto_unmount", &self.auto_unmount)
            .finish()
    }
}

impl PowerLossDisk {
    /// Mounts a power-loss filesystem on the existing directory `mountpoint`. What the
    /// directory holds is read in first and starts out durable, so the mount shows the same
    /// files (only regular files and directories are allowed).
    pub fn mount(mountpoint: &Path) -> Result<PowerLossDisk, DiskError> {
        PowerLossDisk::mount_with(mountpoint, fusermount3().is_some())
    }

    /// [`PowerLossDisk::mount`], trying fusermount3's auto-unmount first only if
    /// `auto_unmount`.
    pub(crate) fn mount_with(
        mountpoint: &Path,
        auto_unmount: bool,
    ) -> Result<PowerLossDisk, DiskError> {
        let failed = |source| DiskError::Mount {
            path: mountpoint.to_path_buf(),
            source,
        };
        let mountpoint = mountpoint.canonicalize().map_err(failed)?;
        let metadata = std::fs::metadata(&mountpoint).map_err(failed)?;
        if !metadata.is_dir() {
            return Err(failed(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        let mut model = Model::new(tree::meta_of(&metadata));
        tree::load(&mut model, &mountpoint)?;
        let model = Arc::new(Mutex::new(model));
        let fsname = format!("{FSNAME_PREFIX}{}", fresh_id(&NEXT_MOUNT));
        let start = |auto_unmount: bool| {
            let fs = PowerLossFs::new(Arc::clone(&model));
            Session::new(fs, &mountpoint, &config(&fsname, auto_unmount))
        };
        let (session, auto_unmount) = match auto_unmount.then(|| start(true)) {
            Some(Ok(session)) => (session, true),
            Some(Err(error)) => {
                // Non-root users need `user_allow_other` in /etc/fuse.conf for it.
                tracing::debug!(%error, "mounting with fusermount3's auto_unmount failed; mounting without");
                (start(false).map_err(failed)?, false)
            }
            None => (start(false).map_err(failed)?, false),
        };
        let session = session.spawn().map_err(failed)?;
        let guardian = auto_unmount.then(|| find_guardian(&fsname)).flatten();
        Ok(PowerLossDisk {
            mountpoint,
            fsname,
            model,
            session: Some(session),
            auto_unmount,
            guardian,
        })
    }

    /// Where it is mounted (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The name the mount table gives it, `faultline-<pid>-<n>` (the source column of
    /// `/proc/self/mountinfo`).
    pub fn fsname(&self) -> &str {
        &self.fsname
    }

    /// Whether fusermount3 unmounts it should this process die without unmounting.
    pub fn unmounts_on_sigkill(&self) -> bool {
        self.auto_unmount
    }

    /// The power cut: everything written and not fsynced, and every directory change not
    /// made durable by an fsync of its directory, is lost.
    /// With `torn = Some(seed)`, each file keeps a random, reproducible prefix of its
    /// unsynced writes instead. Returns what was lost.
    ///
    /// Kill and reap every process that writes to the mount first: a real power cut stops
    /// them too, and a write arriving after the cut is simply a new write.
    pub fn lose_unsynced(&self, torn: Option<u64>) -> Loss {
        let (loss, files) = {
            let mut model = lock(&self.model);
            (model.lose_unsynced(torn), model.files())
        };
        // Pages of mmapped files live in the page cache despite direct I/O; drop them (with
        // the model unlocked: the kernel may call back into the filesystem meanwhile).
        // Inodes the kernel does not know answer ENOENT, which is fine.
        if let Some(session) = &self.session {
            let notifier = session.notifier();
            for ino in files {
                let _ = notifier.inval_inode(INodeNo(ino), 0, 0);
            }
        }
        loss
    }

    /// Makes everything written so far durable (Jepsen's `lazyfs/checkpoint!`): for the
    /// moment a system is set up and the test begins. The kernel writes dirty pages and
    /// directory changes back within seconds; the disk, stricter, keeps them unsynced until
    /// an fsync, and a power cut late in a run would otherwise take the directories a system
    /// created at its start, a window no real disk leaves open that long.
    pub fn checkpoint(&self) {
        lock(&self.model).sync_all();
    }

    /// Unmounts it and writes the files as they are now (as a clean shutdown would leave
    /// them) into `dir`: the mountpoint itself (its former contents, read in at mount, are
    /// replaced), or a missing or empty directory.
    pub fn unmount_into(mut self, dir: &Path) -> Result<(), DiskError> {
        let unmounted = self.shut_down();
        let into_mountpoint = dir.canonicalize().is_ok_and(|dir| dir == self.mountpoint);
        let save_failed = |source| DiskError::Save {
            path: dir.to_path_buf(),
            source,
        };
        if into_mountpoint {
            // Were it still mounted, clearing it would go through the filesystem itself.
            unmounted?;
            tree::clear_dir(dir).map_err(save_failed)?;
            return tree::save(&lock(&self.model), dir);
        }
        if !tree::is_empty_dir(dir).map_err(save_failed)? {
            return Err(DiskError::NotEmpty {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(save_failed)?;
        // Saved even when the unmount failed: the files are worth more than the error.
        tree::save(&lock(&self.model), dir)?;
        unmounted
    }

    /// Unmounts it, discarding its files.
    pub fn unmount(mut self) -> Result<(), DiskError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), DiskError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let points = mount_points(&self.fsname).map_err(|source| DiskError::Unmount {
            path: self.mountpoint.clone(),
            source,
        });
        let unmounted =
            points.and_then(|points| points.iter().try_for_each(|point| unmount(point)));
        // The session's thread ends when the kernel closes the connection: at once, unless a
        // process still holds a file in a mount that could only be detached lazily.
        let deadline = Instant::now() + SESSION_END_TIMEOUT;
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if session.guard.is_finished() {
            if let Err(error) = session.join() {
                tracing::warn!(fsname = %self.fsname, %error, "the FUSE session ended with an error");
            }
        } else {
            tracing::warn!(
                fsname = %self.fsname,
                "a process still has files open in the detached filesystem; it is served until they are closed"
            );
            drop(session);
        }
        // The session is gone, and with it the socket fusermount3 watches: it exits now.
        if let Some(guardian) = self.guardian.take() {
            reap(guardian);
        }
        unmounted
    }
}

/// The last resort: a filesystem dropped without an unmount (an early return, a panic)
/// still goes.
impl Drop for PowerLossDisk {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!(fsname = %self.fsname, %error, "unmounting on drop failed");
        }
    }
}

/// The fusermount3 child of this process that mounted `fsname` with auto_unmount.
pub(crate) fn find_guardian(fsname: &str) -> Option<Pid> {
    let own = std::process::id();
    let option = format!("fsname={fsname},");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `PID (COMMAND) STATE PPID ...`; the command may hold spaces and parentheses.
            let (_, after_command) = stat.rsplit_once(')')?;
            let parent: u32 = after_command.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (parent == own && String::from_utf8_lossy(&cmdline).contains(&option))
                .then(|| Pid::from_raw(pid))
        })
}

/// Waits a little for `child` to exit and reaps it; one that takes longer is left (a zombie
/// until this process exits, at worst).
fn reap(child: Pid) {
    let deadline = Instant::now() + SESSION_END_TIMEOUT;
    while let Ok(WaitStatus::StillAlive) = waitpid(child, Some(WaitPidFlag::WNOHANG)) {
        if Instant::now() > deadline {
            tracing::debug!(%child, "fusermount3 has not exited yet; not waiting for it");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn config(fsname: &str, auto_unmount: bool) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(fsname.to_owned()),
        MountOption::Subtype("faultline".to_owned()),
        // The kernel checks permissions from the modes the filesystem reports.
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
        // fuser requires it with auto_unmount; as root it changes nothing.
        config.acl = SessionACL::RootAndOwner;
    }
    config
}
