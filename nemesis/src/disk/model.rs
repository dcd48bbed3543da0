//! The rules of the power-loss filesystem, held in memory with no FUSE and no I/O, so that
//! they can be tested on their own: what is visible, what is durable, and what a power cut
//! leaves (the rules themselves are listed in the docs of the `disk` module).
//!
//! Each file keeps its durable bytes (`synced`), the bytes readers see (`current`) and the
//! writes and truncations since its last fsync, in order (`unsynced`). A write lands in
//! `current` and is appended to `unsynced`; an fsync replays `unsynced` onto `synced`, so it
//! costs what was written since the last one, not the file's size. Each directory keeps its
//! visible entries, its durable entries and the names whose entry changed since its last
//! fsync. A power cut throws the visible state away and keeps the durable one.
//!
//! An inode lives while a visible name, a durable name or an open handle refers to it:
//! a file unlinked without fsyncing its directory still has its durable name, which a power
//! cut brings back, so its data must stay.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::SystemTime;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// An inode number, as the kernel sees it. Numbers are never reused.
pub(crate) type Ino = u64;

/// The root directory's inode number (FUSE's convention).
pub(crate) const ROOT: Ino = 1;

/// The largest file the filesystem holds; it lives in memory, twice (visible and durable).
pub(crate) const MAX_FILE_SIZE: u64 = 4 << 30;

/// Why an operation was refused; each maps to the errno the kernel passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsError {
    /// No entry of that name.
    NotFound,
    /// The inode is gone (a power cut or an unlink took it), yet a handle or the kernel's
    /// cache still named it.
    Stale,
    /// The name is taken.
    Exists,
    /// A directory was expected.
    NotDir,
    /// A file was expected.
    IsDir,
    /// The directory still has entries.
    NotEmpty,
    /// A directory would be moved into itself, or a name is `.` or `..`.
    Invalid,
    /// The file would grow past [`MAX_FILE_SIZE`].
    TooBig,
    /// Hard links to directories are not allowed.
    NotPermitted,
}

impl FsError {
    /// The errno for this refusal.
    pub(crate) fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Stale => libc::ESTALE,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Invalid => libc::EINVAL,
            FsError::TooBig => libc::EFBIG,
            FsError::NotPermitted => libc::EPERM,
        }
    }
}

/// What a power cut lost: the harness records it, so that a history shows the fault really
/// took data away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Files that lost writes or truncations they had not fsynced.
    pub files: usize,
    /// Bytes written and not fsynced that are gone.
    pub bytes: u64,
    /// Directory entries (created, removed or renamed names) whose change was not made
    /// durable and was undone.
    pub entries: usize,
}

impl Loss {
    /// Whether the cut lost nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == Loss::default()
    }

    /// The loss as a JSON object, `{"files":..,"bytes":..,"entries":..}`, for the history.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"files": self.files, "bytes": self.bytes, "entries": self.entries})
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} unsynced bytes in {} files and {} directory entries lost",
            self.bytes, self.files, self.entries
        )
    }
}

/// Whether an inode is a regular file or a directory (the only kinds there are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
}

/// Owner, permissions and times: kept as they are set, never lost by a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Permission bits (`0o7777` at most).
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    /// Owned by `uid`/`gid` with permissions `perm`, every time now.
    pub(crate) fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: perm & 0o7777,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }
}

/// A change to an inode's [`Meta`]; `None` leaves that part as it is.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetaChange {
    pub perm: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// What `stat` reports about an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub nlink: u32,
    pub meta: Meta,
}

/// A data change not yet fsynced, in the order it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    /// Applies the first `bytes` bytes of this change to `content` (all of it if
    /// `bytes` reaches its length; a truncation has no bytes and applies whole).
    fn apply_prefix(&self, content: &mut Vec<u8>, bytes: usize) {
        match self {
            Op::Write { offset, data } => {
                write_at(content, *offset, &data[..bytes.min(data.len())])
            }
            Op::SetLen(len) => content.resize(*len as usize, 0),
        }
    }

    fn apply(&self, content: &mut Vec<u8>) {
        self.apply_prefix(content, usize::MAX);
    }

    /// How many units of a torn cut this change counts for: its bytes, or one for a
    /// truncation (so that a cut can fall before or after it).
    fn units(&self) -> u64 {
        match self {
            Op::Write { data, .. } => data.len() as u64,
            Op::SetLen(_) => 1,
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Op::Write { data, .. } => data.len() as u64,
            Op::SetLen(_) => 0,
        }
    }

    /// A cut `taken` units into this change, moved back to the sector boundary before it:
    /// a disk writes a sector whole or not at all, so a torn write never leaves a sector
    /// half old and half new. A change kept whole stays whole.
    fn torn_at_sector(&self, taken: u64) -> u64 {
        match self {
            Op::Write { offset, data } if taken < data.len() as u64 => {
                ((offset + taken) / SECTOR * SECTOR).saturating_sub(*offset)
            }
            _ => taken,
        }
    }
}

/// The unit a disk writes atomically: a torn cut falls on a multiple of it in the file (the
/// smallest sector of real disks; systems such as etcd rely on it to tell a torn tail from
/// corruption).
pub(crate) const SECTOR: u64 = 512;

/// Writes `data` at `offset`, filling any gap past the end with zeros.
fn write_at(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let offset = offset as usize;
    if content.len() < offset {
        content.resize(offset, 0);
    }
    let overlap = (content.len() - offset).min(data.len());
    content[offset..offset + overlap].copy_from_slice(&data[..overlap]);
    content.extend_from_slice(&data[overlap..]);
}

#[derive(Debug, Default)]
struct FileData {
    current: Vec<u8>,
    synced: Vec<u8>,
    unsynced: Vec<Op>,
}

impl FileData {
    /// Records a write, merged into the previous one when it continues it: a torn cut keeps
    /// a prefix of the bytes in the order they were written, which merging does not change,
    /// and moves a cut among contiguous writes back to a sector boundary as within one write
    /// (their bytes reach the disk together).
    fn record_write(&mut self, offset: u64, data: &[u8]) {
        if let Some(Op::Write {
            offset: last_offset,
            data: last,
        }) = self.unsynced.last_mut()
            && *last_offset + last.len() as u64 == offset
        {
            last.extend_from_slice(data);
            return;
        }
        self.unsynced.push(Op::Write {
            offset,
            data: data.to_vec(),
        });
    }

    /// fsync: the unsynced changes become durable, replayed in order.
    fn sync(&mut self) {
        for op in self.unsynced.drain(..) {
            op.apply(&mut self.synced);
        }
    }
}

#[derive(Debug, Default)]
struct DirData {
    /// The directory this one is an entry of (itself, for the root).
    parent: Ino,
    entries: BTreeMap<OsString, Ino>,
    synced: BTreeMap<OsString, Ino>,
    /// Names whose entry may differ between `entries` and `synced`; every other name is
    /// the same in both.
    unsynced: BTreeSet<OsString>,
}

#[derive(Debug)]
enum Content {
    File(FileData),
    Dir(DirData),
}

#[derive(Debug)]
struct Inode {
    content: Content,
    meta: Meta,
    /// Visible entries naming this inode.
    names: u32,
    /// Durable entries naming this inode.
    durable_names: u32,
    /// Open handles (files and directories).
    open: u32,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.content {
            Content::File(_) => Kind::File,
            Content::Dir(_) => Kind::Dir,
        }
    }
}

/// The whole filesystem: every inode, visible and durable.
#[derive(Debug)]
pub(crate) struct Model {
    /// Ordered, so that a torn cut draws its random prefixes in the same order every time.
    inodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
}

impl Model {
    /// An empty filesystem: a root directory with `meta`, durable from the start.
    pub(crate) fn new(meta: Meta) -> Model {
        let root = Inode {
            content: Content::Dir(DirData {
                parent: ROOT,
                ..DirData::default()
            }),
            meta,
            names: 1,
            durable_names: 1,
            open: 0,
        };
        Model {
            inodes: BTreeMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
        }
    }

    fn inode(&self, ino: Ino) -> Result<&Inode, FsError> {
        self.inodes.get(&ino).ok_or(FsError::Stale)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, FsError> {
        self.inodes.get_mut(&ino).ok_or(FsError::Stale)
    }

    fn dir(&self, ino: Ino) -> Result<&DirData, FsError> {
        match &self.inode(ino)?.content {
            Content::Dir(dir) => Ok(dir),
            Content::File(_) => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirData, FsError> {
        match &mut self.inode_mut(ino)?.content {
            Content::Dir(dir) => Ok(dir),
            Content::File(_) => Err(FsError::NotDir),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileData, FsError> {
        match &self.inode(ino)?.content {
            Content::File(file) => Ok(file),
            Content::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// The file `ino` and its meta, for a change to its data.
    fn file_mut(&mut self, ino: Ino) -> Result<(&mut FileData, &mut Meta), FsError> {
        let inode = self.inode_mut(ino)?;
        match &mut inode.content {
            Content::File(file) => Ok((file, &mut inode.meta)),
            Content::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// The inode that `name` in directory `parent` names.
    pub(crate) fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, FsError> {
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// What `stat` says about `ino`.
    pub(crate) fn attr(&self, ino: Ino) -> Result<Attr, FsError> {
        let inode = self.inode(ino)?;
        let (size, nlink) = match &inode.content {
            Content::File(file) => (file.current.len() as u64, inode.names),
            Content::Dir(dir) => {
                let subdirs = dir
                    .entries
                    .values()
                    .filter(|child| self.inodes.get(child).map(Inode::kind) == Some(Kind::Dir))
                    .count();
                (dir.entries.len() as u64, 2 + subdirs as u32)
            }
        };
        Ok(Attr {
            ino,
            kind: inode.kind(),
            size,
            nlink,
            meta: inode.meta,
        })
    }

    /// The directory that directory `ino` is an entry of (itself, for the root).
    pub(crate) fn parent(&self, ino: Ino) -> Result<Ino, FsError> {
        Ok(self.dir(ino)?.parent)
    }

    /// The visible entries of directory `ino`, in name order.
    pub(crate) fn entries(&self, ino: Ino) -> Result<Vec<(OsString, Ino, Kind)>, FsError> {
        Ok(self
            .dir(ino)?
            .entries
            .iter()
            .filter_map(|(name, child)| {
                let kind = self.inodes.get(child)?.kind();
                Some((name.clone(), *child, kind))
            })
            .collect())
    }

    /// Creates an empty file or directory `name` in `parent`; the new entry is visible and
    /// not durable until `parent` is fsynced.
    pub(crate) fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        meta: Meta,
    ) -> Result<Ino, FsError> {
        check_name(name)?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let content = match kind {
            Kind::File => Content::File(FileData::default()),
            Kind::Dir => Content::Dir(DirData {
                parent,
                ..DirData::default()
            }),
        };
        let inode = Inode {
            content,
            meta,
            names: 0,
            durable_names: 0,
            open: 0,
        };
        self.inodes.insert(ino, inode);
        self.set_entry(parent, name, Some(ino));
        Ok(ino)
    }

    /// Adds `name` in `parent` as another name of file `ino` (a hard link).
    pub(crate) fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        check_name(name)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::NotPermitted);
        }
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        self.set_entry(parent, name, Some(ino));
        Ok(())
    }

    /// Removes the file entry `name` from `parent`.
    pub(crate) fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::IsDir);
        }
        self.set_entry(parent, name, None);
        Ok(())
    }

    /// Removes the empty directory `name` from `parent`.
    pub(crate) fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.set_entry(parent, name, None);
        Ok(())
    }

    /// Moves entry `name` of `parent` to `new_name` in `new_parent`, replacing what was
    /// there (a file by a file, an empty directory by a directory) unless `no_replace`.
    /// Each of the two entries becomes durable when its own directory is fsynced.
    pub(crate) fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), FsError> {
        check_name(new_name)?;
        let ino = self.lookup(parent, name)?;
        let kind = self.inode(ino)?.kind();
        match self.lookup(new_parent, new_name) {
            Ok(_) if no_replace => return Err(FsError::Exists),
            // Both names already name the same inode: POSIX says nothing happens.
            Ok(target) if target == ino => return Ok(()),
            Ok(target) => match (kind, self.inode(target)?.kind()) {
                (Kind::File, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::File) => return Err(FsError::NotDir),
                (Kind::Dir, Kind::Dir) if !self.dir(target)?.entries.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                _ => {}
            },
            Err(FsError::NotFound) => {}
            Err(error) => return Err(error),
        }
        if kind == Kind::Dir && self.is_within(new_parent, ino)? {
            return Err(FsError::Invalid);
        }
        // Insert first: the inode then never drops to no name at all.
        self.set_entry(new_parent, new_name, Some(ino));
        self.set_entry(parent, name, None);
        if kind == Kind::Dir {
            self.dir_mut(ino)?.parent = new_parent;
        }
        Ok(())
    }

    /// Whether directory `dir` is `ancestor` or lies below it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> Result<bool, FsError> {
        loop {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ROOT {
                return Ok(false);
            }
            dir = self.dir(dir)?.parent;
        }
    }

    /// Points `name` in `dir` at `target` (or removes it), keeping the name counts, and
    /// frees what no longer has any name or handle. `dir` must exist.
    fn set_entry(&mut self, dir: Ino, name: &OsStr, target: Option<Ino>) {
        let Ok(data) = self.dir_mut(dir) else {
            return;
        };
        let old = match target {
            Some(ino) => data.entries.insert(name.to_owned(), ino),
            None => data.entries.remove(name),
        };
        data.unsynced.insert(name.to_owned());
        if let Ok(inode) = self.inode_mut(dir) {
            let now = SystemTime::now();
            inode.meta.mtime = now;
            inode.meta.ctime = now;
        }
        if let Some(inode) = target.and_then(|ino| self.inodes.get_mut(&ino)) {
            inode.names += 1;
        }
        if let Some(old) = old {
            if let Some(inode) = self.inodes.get_mut(&old) {
                inode.names -= 1;
            }
            self.collect(old);
        }
    }

    /// Frees `ino` if nothing refers to it any more, and then whatever only it referred to.
    fn collect(&mut self, ino: Ino) {
        let mut pending = vec![ino];
        while let Some(ino) = pending.pop() {
            let unreferenced = self.inodes.get(&ino).is_some_and(|inode| {
                inode.names == 0 && inode.durable_names == 0 && inode.open == 0
            });
            if ino == ROOT || !unreferenced {
                continue;
            }
            let Some(Inode {
                content: Content::Dir(dir),
                ..
            }) = self.inodes.remove(&ino)
            else {
                continue;
            };
            for child in dir.entries.values() {
                if let Some(inode) = self.inodes.get_mut(child) {
                    inode.names -= 1;
                }
                pending.push(*child);
            }
            for child in dir.synced.values() {
                if let Some(inode) = self.inodes.get_mut(child) {
                    inode.durable_names -= 1;
                }
                pending.push(*child);
            }
        }
    }

    /// `size` bytes of file `ino` from `offset` on (fewer at the end of the file).
    pub(crate) fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8], FsError> {
        let content = &self.file(ino)?.current;
        let start = (offset.min(content.len() as u64)) as usize;
        let end = start.saturating_add(size as usize).min(content.len());
        Ok(&content[start..end])
    }

    /// The whole visible content of file `ino`.
    pub(crate) fn contents(&self, ino: Ino) -> Result<&[u8], FsError> {
        Ok(&self.file(ino)?.current)
    }

    /// Writes `data` at `offset` of file `ino`: visible at once, durable at its next fsync.
    pub(crate) fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooBig)?;
        if end > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        let (file, meta) = self.file_mut(ino)?;
        if data.is_empty() {
            return Ok(());
        }
        write_at(&mut file.current, offset, data);
        file.record_write(offset, data);
        touch(meta);
        Ok(())
    }

    /// Truncates or extends (with zeros) file `ino` to `len` bytes, like `ftruncate`:
    /// visible at once, durable at its next fsync.
    pub(crate) fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), FsError> {
        if len > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        let (file, meta) = self.file_mut(ino)?;
        file.current.resize(len as usize, 0);
        file.unsynced.push(Op::SetLen(len));
        touch(meta);
        Ok(())
    }

    /// `fallocate` without `FALLOC_FL_KEEP_SIZE`: extends file `ino` to `end` bytes if it
    /// is shorter (allocation itself is not modelled: memory is never full).
    pub(crate) fn allocate(&mut self, ino: Ino, end: u64) -> Result<(), FsError> {
        let len = self.file(ino)?.current.len() as u64;
        if end > len {
            self.set_len(ino, end)?;
        }
        Ok(())
    }

    /// Changes the owner, permissions or times of `ino`.
    pub(crate) fn set_meta(&mut self, ino: Ino, change: MetaChange) -> Result<(), FsError> {
        let meta = &mut self.inode_mut(ino)?.meta;
        if let Some(perm) = change.perm {
            meta.perm = perm & 0o7777;
        }
        meta.uid = change.uid.unwrap_or(meta.uid);
        meta.gid = change.gid.unwrap_or(meta.gid);
        meta.atime = change.atime.unwrap_or(meta.atime);
        meta.mtime = change.mtime.unwrap_or(meta.mtime);
        meta.ctime = SystemTime::now();
        Ok(())
    }

    /// fsync (or fdatasync) of `ino`: a file's data, or a directory's entries, become
    /// durable. Costs what changed since the last fsync of `ino`.
    pub(crate) fn sync(&mut self, ino: Ino) -> Result<(), FsError> {
        let inode = self.inode_mut(ino)?;
        let dir = match &mut inode.content {
            Content::File(file) => {
                file.sync();
                return Ok(());
            }
            Content::Dir(dir) => dir,
        };
        let mut changes = Vec::new();
        for name in std::mem::take(&mut dir.unsynced) {
            let new = dir.entries.get(&name).copied();
            let old = match new {
                Some(target) => dir.synced.insert(name, target),
                None => dir.synced.remove(&name),
            };
            if old != new {
                changes.push((old, new));
            }
        }
        for (old, new) in changes {
            if let Some(inode) = new.and_then(|ino| self.inodes.get_mut(&ino)) {
                inode.durable_names += 1;
            }
            if let Some(old) = old {
                if let Some(inode) = self.inodes.get_mut(&old) {
                    inode.durable_names -= 1;
                }
                self.collect(old);
            }
        }
        Ok(())
    }

    /// Everything written so far becomes durable, as if every file and directory were
    /// fsynced: what a machine that ran for a while has on its disk.
    pub(crate) fn sync_all(&mut self) {
        let inodes: Vec<Ino> = self.inodes.keys().copied().collect();
        for ino in inodes {
            // An inode that a directory's sync collected is simply gone.
            let _ = self.sync(ino);
        }
    }

    /// A handle to `ino` was opened: the inode stays while it is open, even with no name.
    pub(crate) fn open(&mut self, ino: Ino) -> Result<Kind, FsError> {
        let inode = self.inode_mut(ino)?;
        inode.open += 1;
        Ok(inode.kind())
    }

    /// A handle to `ino` was closed. One to an inode that is gone (a power cut took it) is
    /// ignored.
    pub(crate) fn release(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.open = inode.open.saturating_sub(1);
            self.collect(ino);
        }
    }

    /// Bytes held in visible file contents, for `statfs`.
    pub(crate) fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| match &inode.content {
                Content::File(file) => file.current.len() as u64,
                Content::Dir(_) => 0,
            })
            .sum()
    }

    /// The power cut: every file goes back to its durable content and every directory to
    /// its durable entries; what no durable name reaches is gone. With `torn = Some(seed)`,
    /// each file with unsynced changes keeps a random prefix of them instead (drawn from
    /// `seed`, in inode order, so the same history and seed give the same result): the
    /// first k of its unsynced bytes in the order they were written, k uniform over
    /// everything from none to all, a truncation counting as one unit, and a cut inside a
    /// write (or a run of writes, each continuing the one before) moved back to the [`SECTOR`]
    /// boundary before it. What is kept is
    /// durable from then on. Open handles stay valid for inodes that survive; the others
    /// go stale.
    pub(crate) fn lose_unsynced(&mut self, torn: Option<u64>) -> Loss {
        let mut rng = torn.map(ChaCha8Rng::seed_from_u64);
        let mut loss = Loss::default();
        for inode in self.inodes.values_mut() {
            match &mut inode.content {
                Content::File(file) => {
                    if file.unsynced.is_empty() {
                        continue;
                    }
                    let ops = std::mem::take(&mut file.unsynced);
                    let units: u64 = ops.iter().map(Op::units).sum();
                    let mut keep = rng.as_mut().map_or(0, |rng| rng.random_range(0..=units));
                    if keep < units {
                        loss.files += 1;
                    }
                    let mut kept_bytes = 0;
                    for op in &ops {
                        if keep == 0 {
                            break;
                        }
                        let taken = keep.min(op.units());
                        keep -= taken;
                        let taken = op.torn_at_sector(taken);
                        op.apply_prefix(&mut file.synced, taken as usize);
                        kept_bytes += taken.min(op.bytes());
                    }
                    let written: u64 = ops.iter().map(Op::bytes).sum();
                    loss.bytes += written - kept_bytes;
                    file.current.clone_from(&file.synced);
                }
                Content::Dir(dir) => {
                    loss.entries += dir
                        .unsynced
                        .iter()
                        .filter(|name| dir.entries.get(*name) != dir.synced.get(*name))
                        .count();
                    dir.entries.clone_from(&dir.synced);
                    dir.unsynced.clear();
                }
            }
        }
        loss.entries += self.keep_durable_tree();
        loss
    }

    /// After a cut, when every directory's entries are its durable ones: keeps the inodes
    /// the root reaches and recounts their names. A directory reached a second time (a
    /// cross-directory rename made durable on one side only can give it two parents, or
    /// even a cycle) keeps the first place in breadth-first name order and loses the
    /// others; returns how many such entries were dropped.
    fn keep_durable_tree(&mut self) -> usize {
        for inode in self.inodes.values_mut() {
            inode.names = 0;
            inode.durable_names = 0;
        }
        let mut reached = BTreeSet::from([ROOT]);
        let mut queue = VecDeque::from([ROOT]);
        let mut dropped = 0;
        while let Some(dir) = queue.pop_front() {
            let Ok(data) = self.dir(dir) else { continue };
            let mut second_parents = Vec::new();
            let mut children = Vec::new();
            for (name, child) in &data.entries {
                let Some(kind) = self.inodes.get(child).map(Inode::kind) else {
                    second_parents.push(name.clone());
                    continue;
                };
                if kind == Kind::Dir && reached.contains(child) {
                    second_parents.push(name.clone());
                    continue;
                }
                children.push((*child, kind));
            }
            if let Ok(data) = self.dir_mut(dir) {
                for name in &second_parents {
                    data.entries.remove(name);
                    data.synced.remove(name);
                }
            }
            dropped += second_parents.len();
            for (child, kind) in children {
                if let Some(inode) = self.inodes.get_mut(&child) {
                    inode.names += 1;
                    inode.durable_names += 1;
                }
                if reached.insert(child)
                    && kind == Kind::Dir
                    && let Ok(data) = self.dir_mut(child)
                {
                    data.parent = dir;
                    queue.push_back(child);
                }
            }
        }
        if let Some(root) = self.inodes.get_mut(&ROOT) {
            root.names = 1;
            root.durable_names = 1;
        }
        self.inodes.retain(|ino, _| reached.contains(ino));
        dropped
    }

    /// The inode numbers of every file, for invalidating the kernel's caches after a cut.
    pub(crate) fn files(&self) -> Vec<Ino> {
        self.inodes
            .iter()
            .filter(|(_, inode)| inode.kind() == Kind::File)
            .map(|(ino, _)| *ino)
            .collect()
    }
}

fn touch(meta: &mut Meta) {
    let now = SystemTime::now();
    meta.mtime = now;
    meta.ctime = now;
}

/// Refuses the names no directory entry may have.
fn check_name(name: &OsStr) -> Result<(), FsError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    if bytes.is_empty() || name == "." || name == ".." || bytes.contains(&b'/') {
        return Err(FsError::Invalid);
    }
    Ok(())
}

#[cfg(test)]
impl Model {
    /// Checks the invariants that the operations keep, panicking with the first broken one:
    /// the name counts match the entries, nothing unreferenced is kept, no durable entry
    /// names a freed inode, and each file's durable content replayed with its unsynced
    /// changes is its visible content.
    pub(crate) fn check_invariants(&self) {
        let mut names: BTreeMap<Ino, u32> = BTreeMap::from([(ROOT, 1)]);
        let mut durable: BTreeMap<Ino, u32> = BTreeMap::from([(ROOT, 1)]);
        for (ino, inode) in &self.inodes {
            match &inode.content {
                Content::File(file) => {
                    let mut replayed = file.synced.clone();
                    for op in &file.unsynced {
                        op.apply(&mut replayed);
                    }
                    assert_eq!(replayed, file.current, "file {ino}: synced + unsynced");
                }
                Content::Dir(dir) => {
                    for child in dir.entries.values() {
                        *names.entry(*child).or_default() += 1;
                    }
                    for child in dir.synced.values() {
                        *durable.entry(*child).or_default() += 1;
                    }
                    for (name, child) in &dir.entries {
                        if dir.synced.get(name) != Some(child) {
                            assert!(dir.unsynced.contains(name), "dir {ino}: {name:?} changed");
                        }
                    }
                    for name in dir.synced.keys() {
                        if !dir.entries.contains_key(name) {
                            assert!(dir.unsynced.contains(name), "dir {ino}: {name:?} removed");
                        }
                    }
                }
            }
        }
        for (ino, inode) in &self.inodes {
            assert_eq!(
                inode.names,
                names.get(ino).copied().unwrap_or(0),
                "names of {ino}"
            );
            assert_eq!(
                inode.durable_names,
                durable.get(ino).copied().unwrap_or(0),
                "durable names of {ino}"
            );
            assert!(
                *ino == ROOT || inode.names + inode.durable_names + inode.open > 0,
                "{ino} is unreferenced but kept"
            );
        }
        for ino in names.keys().chain(durable.keys()) {
            assert!(
                self.inodes.contains_key(ino),
                "an entry names freed inode {ino}"
            );
        }
    }
}
