//! Moving a tree of ordinary files into the model (what a mountpoint held before the mount)
//! and out of it again (what the data dir holds after the run).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::DiskError;
use super::model::{Ino, Kind, Meta, Model, ROOT};

/// The owner and permissions of `metadata`, every time now.
pub(crate) fn meta_of(metadata: &fs::Metadata) -> Meta {
    Meta::new(
        (metadata.mode() & 0o7777) as u16,
        metadata.uid(),
        metadata.gid(),
    )
}

/// Adds everything below `dir` to the model's root, durably (as a disk that held it before
/// would). Only regular files and directories can be held.
pub(crate) fn load(model: &mut Model, dir: &Path) -> Result<(), DiskError> {
    load_into(model, ROOT, dir)
}

fn load_into(model: &mut Model, parent: Ino, dir: &Path) -> Result<(), DiskError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DiskError::Load { path, source }
    };
    for entry in fs::read_dir(dir).map_err(failed(dir))? {
        let entry = entry.map_err(failed(dir))?;
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).map_err(failed(&path))?;
        let kind = if metadata.is_file() {
            Kind::File
        } else if metadata.is_dir() {
            Kind::Dir
        } else {
            return Err(DiskError::Unsupported { path });
        };
        let name = entry.file_name();
        let ino = model
            .create(parent, &name, kind, meta_of(&metadata))
            .map_err(|error| refused(&path, error.errno()))?;
        match kind {
            Kind::File => {
                let contents = fs::read(&path).map_err(failed(&path))?;
                model
                    .write(ino, 0, &contents)
                    .map_err(|error| refused(&path, error.errno()))?;
            }
            Kind::Dir => load_into(model, ino, &path)?,
        }
        model
            .sync(ino)
            .map_err(|error| refused(&path, error.errno()))?;
    }
    model
        .sync(parent)
        .map_err(|error| refused(dir, error.errno()))
}

fn refused(path: &Path, errno: i32) -> DiskError {
    DiskError::Load {
        path: path.to_path_buf(),
        source: io::Error::from_raw_os_error(errno),
    }
}

/// Writes the model's visible tree (what a clean shutdown leaves) into the existing, empty
/// directory `dir`, as ordinary files and directories with their permissions.
pub(crate) fn save(model: &Model, dir: &Path) -> Result<(), DiskError> {
    save_from(model, ROOT, dir)
}

fn save_from(model: &Model, from: Ino, dir: &Path) -> Result<(), DiskError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DiskError::Save { path, source }
    };
    let stale = |path: &Path| failed(path)(io::Error::from_raw_os_error(libc::ESTALE));
    for (name, ino, kind) in model.entries(from).map_err(|_| stale(dir))? {
        let path = dir.join(&name);
        match kind {
            Kind::File => {
                let contents = model.contents(ino).map_err(|_| stale(&path))?;
                fs::write(&path, contents).map_err(failed(&path))?;
            }
            Kind::Dir => {
                fs::create_dir(&path).map_err(failed(&path))?;
                save_from(model, ino, &path)?;
            }
        }
        let perm = model.attr(ino).map_err(|_| stale(&path))?.meta.perm;
        set_permissions(&path, perm).map_err(failed(&path))?;
    }
    Ok(())
}

fn set_permissions(path: &Path, perm: u16) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(u32::from(perm)))
}

/// Whether `dir` has no entries (a missing directory counts as empty).
pub(crate) fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(error),
    }
}

/// Removes everything inside `dir`, keeping `dir` itself.
pub(crate) fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}
