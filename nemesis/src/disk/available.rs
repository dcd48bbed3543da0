//! Whether the power-loss filesystem can be mounted here, and if not, why, in words a user
//! can act on.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use super::PowerLossDisk;

/// Why FUSE cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum FuseUnavailable {
    /// The kernel offers no FUSE device.
    #[error(
        "/dev/fuse does not exist: load the kernel's fuse module (modprobe fuse), or in a \
         container pass the device in (docker run --device /dev/fuse)"
    )]
    NoDevice,
    /// Root, yet the device cannot be opened (a container's device rules, usually).
    #[error(
        "cannot open /dev/fuse ({0}); in a container allow the device \
         (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
    )]
    DeviceRefused(#[source] io::Error),
    /// Not root, and no helper to mount as a user.
    #[error(
        "not root and no fusermount3 to mount as a user: install it (apt-get install fuse3) \
         or run as root"
    )]
    NoFusermount,
    /// A trial mount in a temporary directory failed, or did not serve a file back.
    #[error(
        "a trial FUSE mount failed: {0} (in a container this needs --device /dev/fuse \
         --cap-add SYS_ADMIN, and often --security-opt apparmor=unconfined)"
    )]
    MountFailed(String),
}

/// Says whether [`PowerLossDisk`] works here: mounts one in a temporary directory, writes,
/// fsyncs and reads back a file through it, and unmounts it. As root the mount is made
/// directly; other users need `fusermount3` (Debian's `fuse3` package).
pub fn fuse_available() -> Result<(), FuseUnavailable> {
    let device = Path::new("/dev/fuse");
    if !device.exists() {
        return Err(FuseUnavailable::NoDevice);
    }
    if nix::unistd::geteuid().is_root() {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .map_err(FuseUnavailable::DeviceRefused)?;
    } else if fusermount3().is_none() {
        return Err(FuseUnavailable::NoFusermount);
    }
    let failed = |error: &dyn std::fmt::Display| FuseUnavailable::MountFailed(error.to_string());
    let dir = tempfile::Builder::new()
        .prefix("faultline-fuse-check")
        .tempdir()
        .map_err(|error| {
            failed(&format_args!(
                "cannot create a temporary directory: {error}"
            ))
        })?;
    let disk = PowerLossDisk::mount(dir.path()).map_err(|error| failed(&error))?;
    let probe = dir.path().join("probe");
    let served = std::fs::File::create(&probe)
        .and_then(|mut file| {
            io::Write::write_all(&mut file, b"faultline")?;
            file.sync_all()
        })
        .and_then(|()| std::fs::read(&probe));
    let unmounted = disk.unmount();
    match served {
        Ok(contents) if contents == b"faultline" => {}
        Ok(contents) => {
            return Err(failed(&format_args!(
                "a file written through it read back as {contents:?}"
            )));
        }
        Err(error) => return Err(failed(&format_args!("writing a file through it: {error}"))),
    }
    unmounted.map_err(|error| failed(&error))
}

/// Where `fusermount3` is, if it is on `PATH`.
pub(crate) fn fusermount3() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("fusermount3"))
        .find(|candidate| candidate.is_file())
}
