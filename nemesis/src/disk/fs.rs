//! The FUSE side: translates the kernel's requests into [`Model`] operations and back.
//! No rule lives here.
//!
//! The kernel must never answer from a cache what the model no longer holds after a power
//! cut, so entries and attributes are given with a time-to-live of zero (every lookup and
//! `stat` asks again) and every file is opened with `FOPEN_DIRECT_IO` (reads and writes
//! bypass the page cache). Kernels that allow mmap of such files keep mmapped pages in the
//! page cache; [`super::PowerLossDisk::lose_unsynced`] invalidates those explicitly.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::model::{Attr, FsError, Ino, Kind, MAX_FILE_SIZE, Meta, MetaChange, Model};

/// Nothing the kernel learns may be cached: a power cut can change it at any moment.
const TTL: Duration = Duration::ZERO;

/// The model, shared between the FUSE session's thread and the [`super::PowerLossDisk`].
pub(crate) type SharedModel = Arc<Mutex<Model>>;

/// Locks the model; a panic in another holder leaves it usable (each operation either
/// completed or changed nothing the invariants depend on before it panicked).
pub(crate) fn lock(model: &SharedModel) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The filesystem that fuser serves.
pub(crate) struct PowerLossFs {
    model: SharedModel,
    /// Open handles and the inode each is for; a handle the kernel releases late (after a
    /// power cut took its inode) is simply forgotten.
    handles: Mutex<HashMap<u64, Ino>>,
    next_handle: AtomicU64,
}

impl PowerLossFs {
    pub(crate) fn new(model: SharedModel) -> PowerLossFs {
        PowerLossFs {
            model,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }

    fn add_handle(&self, ino: Ino) -> FileHandle {
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(handle, ino);
        FileHandle(handle)
    }

    fn release_handle(&self, handle: FileHandle) {
        let ino = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&handle.0);
        if let Some(ino) = ino {
            self.model().release(ino);
        }
    }

    /// Opens `ino` if it is of the `expected` kind, and answers with a handle.
    fn open_as(&self, ino: INodeNo, expected: Kind, reply: ReplyOpen) {
        let opened = {
            let mut model = self.model();
            match model.open(ino.0) {
                Ok(kind) if kind == expected => Ok(()),
                Ok(kind) => {
                    model.release(ino.0);
                    Err(match kind {
                        Kind::Dir => FsError::IsDir,
                        Kind::File => FsError::NotDir,
                    })
                }
                Err(error) => Err(error),
            }
        };
        match opened {
            Ok(()) => {
                let flags = match expected {
                    Kind::File => FopenFlags::FOPEN_DIRECT_IO,
                    Kind::Dir => FopenFlags::empty(),
                };
                reply.opened(self.add_handle(ino.0), flags);
            }
            Err(error) => reply.error(errno(error)),
        }
    }

    /// Answers a request that created or looked up `ino`.
    fn entry(&self, ino: Result<Ino, FsError>, reply: ReplyEntry) {
        match ino.and_then(|ino| self.model().attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
            Err(error) => reply.error(errno(error)),
        }
    }
}

fn errno(error: FsError) -> Errno {
    Errno::from_i32(error.errno())
}

fn empty(result: Result<(), FsError>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(error) => reply.error(errno(error)),
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.meta.atime,
        mtime: attr.meta.mtime,
        ctime: attr.meta.ctime,
        crtime: attr.meta.ctime,
        kind: match attr.kind {
            Kind::File => FileType::RegularFile,
            Kind::Dir => FileType::Directory,
        },
        perm: attr.meta.perm,
        nlink: attr.nlink,
        uid: attr.meta.uid,
        gid: attr.meta.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn time(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// The permissions of a new inode: what the caller asked for, less its umask.
fn new_meta(req: &Request, mode: u32, umask: u32) -> Meta {
    Meta::new((mode & !umask & 0o7777) as u16, req.uid(), req.gid())
}

impl Filesystem for PowerLossFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Larger writes mean fewer round trips; the kernel caps the value at what it allows.
        if let Err(nearest) = config.set_max_write(1 << 20) {
            let _ = config.set_max_write(nearest);
        }
        // Lets programs mmap files despite FOPEN_DIRECT_IO (Linux 6.6 and later); older
        // kernels refuse such mmaps, which no program run here so far makes.
        let _ = config.add_capabilities(InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let ino = self.model().lookup(parent.0, name);
        self.entry(ino, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut model = self.model();
        let change = MetaChange {
            perm: mode.map(|mode| (mode & 0o7777) as u16),
            uid,
            gid,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        let result = size
            .map_or(Ok(()), |len| model.set_len(ino.0, len))
            .and_then(|()| model.set_meta(ino.0, change))
            .and_then(|()| model.attr(ino.0));
        match result {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let meta = new_meta(req, mode, umask);
        let ino = self.model().create(parent.0, name, Kind::Dir, meta);
        self.entry(ino, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.model().unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.model().rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported.
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let result = self
            .model()
            .rename(parent.0, name, newparent.0, newname, no_replace);
        empty(result, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let linked = self
            .model()
            .link(ino.0, newparent.0, newname)
            .map(|()| ino.0);
        self.entry(linked, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.open_as(ino, Kind::File, reply);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.model().read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(error) => reply.error(errno(error)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(error) => reply.error(errno(error)),
        }
    }

    /// close() is not a sync: nothing to do.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.release_handle(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.model().sync(ino.0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.open_as(ino, Kind::Dir, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let listing = {
            let model = self.model();
            model.parent(ino.0).and_then(|parent| {
                let mut listing = vec![
                    (".".into(), ino.0, Kind::Dir),
                    ("..".into(), parent, Kind::Dir),
                ];
                listing.extend(model.entries(ino.0)?);
                Ok(listing)
            })
        };
        let listing = match listing {
            Ok(listing) => listing,
            Err(error) => return reply.error(errno(error)),
        };
        // An entry's offset is the position of the next one, where a later call resumes.
        for (position, (name, child, kind)) in listing.iter().enumerate().skip(offset as usize) {
            let kind = match kind {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
            };
            if reply.add(INodeNo(*child), position as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.release_handle(fh);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.model().sync(ino.0), reply);
    }

    /// No extended attributes: ENOSYS, which the kernel remembers for the mount, so it asks
    /// once (for `security.capability`, on the first write) and never again.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCK: u64 = 4096;
        let total = MAX_FILE_SIZE / BLOCK;
        let used = self.model().used_bytes().div_ceil(BLOCK).min(total);
        let free = total - used;
        reply.statfs(
            total,
            free,
            free,
            u64::from(u32::MAX),
            u64::from(u32::MAX),
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions itself (default_permissions); only existence is left.
        empty(self.model().attr(ino.0).map(|_| ()), reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let meta = new_meta(req, mode, umask);
        let created = {
            let mut model = self.model();
            model
                .create(parent.0, name, Kind::File, meta)
                .and_then(|ino| {
                    model.open(ino)?;
                    model.attr(ino)
                })
        };
        match created {
            Ok(attr) => {
                let handle = self.add_handle(attr.ino);
                reply.created(
                    &TTL,
                    &file_attr(&attr),
                    Generation(0),
                    handle,
                    FopenFlags::FOPEN_DIRECT_IO,
                );
            }
            Err(error) => reply.error(errno(error)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = match mode {
            0 => match offset.checked_add(length) {
                Some(end) => self.model().allocate(ino.0, end),
                None => Err(FsError::TooBig),
            },
            // Allocating past the end without growing changes no content.
            libc::FALLOC_FL_KEEP_SIZE => self.model().attr(ino.0).map(|_| ()),
            _ => return reply.error(Errno::EOPNOTSUPP),
        };
        empty(result, reply);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        // Only regular files and directories exist here.
        reply.error(Errno::EPERM);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Only regular files and directories exist here.
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let meta = new_meta(req, mode, umask);
        let ino = self.model().create(parent.0, name, Kind::File, meta);
        self.entry(ino, reply);
    }
}
