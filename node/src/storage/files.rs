//! The few file-system steps that durability rests on, each turning I/O errors into
//! [`StorageError::Io`] that name the path.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::StorageError;

/// Builds the error for a failed `action` on `path`.
pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` if it is missing; when `fsync` is on, also makes its name durable in the
/// parent, so that a node which voted cannot come back with no data dir at all.
pub(crate) fn create_dir(dir: &Path, fsync: bool) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    match dir.parent() {
        Some(parent) if fsync && !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Makes the creations, renames and deletions of files in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Makes the data written to `file` durable, and says how long that took.
pub(crate) fn sync_file(file: &File, path: &Path) -> Result<Duration, StorageError> {
    let started = Instant::now();
    file.sync_data().map_err(io_error("fsync", path))?;
    Ok(started.elapsed())
}

/// Deletes `path`; one that is already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(io_error("delete", path)(error))
        }
        _ => Ok(()),
    }
}
