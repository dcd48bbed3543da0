//! The power-loss filesystem: a FUSE filesystem of Faultline's own, served from this
//! process's memory (as LazyFS does), that loses what was written and not fsynced when the
//! power is cut. SIGKILL alone keeps the page cache, so a node that never fsyncs survives
//! every kill; mounted on its data dir, this filesystem makes a power cut real.
//!
//! # What is durable
//!
//! - **File data.** A `write`, an `ftruncate`/`set_len`, or a `fallocate` that grows the
//!   file is visible to every reader at once and *unsynced* until the file is fsynced or
//!   fdatasynced; both make all of the file's data (and its size) durable. `close` (FUSE's
//!   flush and release) is not a sync.
//! - **Directory entries.** A name created, removed or renamed (`create`, `mkdir`, `link`,
//!   `rename`, `unlink`, `rmdir`) is visible at once and unsynced until that directory is
//!   fsynced. A rename changes two entries, the old name and the new, and each becomes
//!   durable when its own directory is fsynced. Across two directories that means a cut
//!   between the two fsyncs leaves the file under both names (only the target directory was
//!   fsynced) or under neither (only the source was, and it had no other durable name): a
//!   program that must not lose it fsyncs both. A directory that would so end up under two
//!   durable names keeps the first in breadth-first name order. Within one directory (all
//!   the bundled node does) the rename is durable as a whole with that directory's fsync.
//! - **Inodes.** A file or directory lives while a visible name, a durable name or an open
//!   handle refers to it: one whose only durable name was removed stays alive (with its
//!   durable data) until the removal is durable, since a cut brings the name back.
//! - **Metadata** other than sizes and names (owner, permissions, times) is never lost.
//!
//! # The power cut
//!
//! [`PowerLossDisk::lose_unsynced`] puts every file's content back to its durable content
//! and every directory's entries back to its durable entries; whatever no durable name
//! reaches from the root is gone. The torn variant instead keeps, for each file with
//! unsynced writes, a random prefix (seeded, so reproducible) of its unsynced bytes in the
//! order they were written, a partial last write included. Either returns a [`Loss`]: files
//! that lost data, bytes dropped, directory entries undone.
//!
//! The kernel never serves what the cut took away from a cache: entries and attributes
//! have a time-to-live of zero, files are opened with direct I/O, and the pages of mmapped
//! files are invalidated after the cut. A reader that had a file open before the cut reads
//! its durable content after it.
//!
//! # Where the bytes live
//!
//! In memory (the `model` module holds every rule, with no FUSE, and is property-tested
//! against a simple oracle): each file's durable bytes, its visible bytes and the list of its changes
//! since the last fsync, which an fsync replays onto the durable bytes, so that it costs
//! what was written since the previous one, not the file's size (the node fdatasyncs its
//! WAL hundreds of times a second). The FUSE layer (`fs`) only translates requests; it
//! runs on fuser's session thread. A file holds at most 4 GiB.
//!
//! # Life cycle
//!
//! [`fuse_available`] says up front whether a mount works here, and if not why.
//! [`PowerLossDisk::mount`] serves a directory (reading in what it held);
//! [`PowerLossDisk::unmount_into`] ends it and leaves the files as ordinary files in a
//! directory, the mountpoint itself if wanted. Nothing stays mounted on any exit: unmounting
//! is also done on drop (so on a panic), fusermount3's `auto_unmount` covers a SIGKILL of
//! this process where it is installed, and [`remove_leftover_mounts`] unmounts the mounts of
//! dead processes (their mount-table name, `faultline-<pid>-<n>`, names the pid).

mod available;
mod fs;
mod model;
mod mount;
mod mounts;
mod tree;

#[cfg(test)]
mod mount_tests;
#[cfg(test)]
mod oracle_tests;

use std::io;
use std::path::PathBuf;

pub use available::{FuseUnavailable, fuse_available};
pub use model::Loss;
pub use mount::PowerLossDisk;
pub use mounts::remove_leftover_mounts;

/// Mounting, unmounting, or moving files in or out of the power-loss filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The kernel (or fusermount3) refused the mount.
    #[error("cannot mount the power-loss filesystem on {}: {source}", path.display())]
    Mount {
        /// The mountpoint.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Unmounting failed; the mount may still be there.
    #[error("cannot unmount the power-loss filesystem at {}: {source}", path.display())]
    Unmount {
        /// The mountpoint.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// What the mountpoint held could not be read in.
    #[error("cannot read {} into the power-loss filesystem: {source}", path.display())]
    Load {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The mountpoint holds something other than regular files and directories.
    #[error(
        "{} is neither a regular file nor a directory, the only kinds the power-loss \
         filesystem holds; remove it or mount on another directory",
        path.display()
    )]
    Unsupported {
        /// The entry.
        path: PathBuf,
    },
    /// The files could not be written out after the unmount.
    #[error("cannot write the power-loss filesystem's files to {}: {source}", path.display())]
    Save {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The directory to write the files into already holds something.
    #[error(
        "{} is not empty: give a missing or empty directory, or the mountpoint itself",
        path.display()
    )]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
}
