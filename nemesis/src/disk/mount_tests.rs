//! The power-loss filesystem through real mounts: std::fs calls and real processes that
//! read and write through the kernel. Skipped (with the reason printed) only where FUSE
//! cannot work at all: no /dev/fuse, or neither root nor fusermount3.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::available::fusermount3;
use super::mounts::mount_points;
use super::*;

/// Why these tests cannot mount here, if they cannot.
fn skip_reason() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    if !nix::unistd::geteuid().is_root() && fusermount3().is_none() {
        return Some("not root and no fusermount3".into());
    }
    None
}

macro_rules! skip_without_fuse {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// A mount on a fresh temporary directory; unmounted before the directory is removed.
struct Mounted {
    disk: PowerLossDisk,
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new() -> Mounted {
        let dir = tempfile::tempdir().expect("temporary directory");
        let disk = PowerLossDisk::mount(dir.path()).expect("mount");
        Mounted { disk, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sync_dir(&self) {
        File::open(self.dir.path())
            .and_then(|dir| dir.sync_all())
            .expect("fsync the directory");
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn is_mounted(fsname: &str) -> bool {
    !mount_points(fsname)
        .expect("read the mount table")
        .is_empty()
}

#[test]
fn written_but_unsynced_data_is_lost_and_fsynced_data_stays() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let path = mount.path("wal");
    let mut file = File::create(&path).expect("create");
    file.write_all(b"durable").expect("write");
    file.sync_data().expect("fdatasync");
    mount.sync_dir();
    file.write_all(b" volatile").expect("write");
    drop(file); // close() is not a sync
    let other = File::create(mount.path("never-synced")).expect("create");
    other.set_len(100).expect("ftruncate");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"durable volatile",
        "visible at once"
    );

    let loss = mount.disk.lose_unsynced(None);

    assert_eq!(fs::read(&path).unwrap(), b"durable");
    assert_eq!(fs::metadata(&path).unwrap().len(), 7);
    assert_eq!(mount.names(), ["wal"]);
    assert_eq!(
        loss.to_json(),
        serde_json::json!({"files": 2, "bytes": 9, "entries": 1})
    );
    assert!(
        mount.disk.lose_unsynced(None).is_empty(),
        "nothing left to lose"
    );
}

#[test]
fn a_created_file_vanishes_unless_its_directory_was_fsynced() {
    skip_without_fuse!();
    let mount = Mounted::new();
    for name in ["kept", "lost"] {
        let mut file = File::create(mount.path(name)).expect("create");
        file.write_all(name.as_bytes()).expect("write");
        file.sync_all().expect("fsync");
        if name == "kept" {
            mount.sync_dir();
        }
    }
    fs::create_dir(mount.path("subdir")).expect("mkdir");
    File::create(mount.path("subdir/inner")).expect("create in subdir");
    File::open(mount.path("subdir"))
        .and_then(|dir| dir.sync_all())
        .expect("fsync subdir");

    let loss = mount.disk.lose_unsynced(None);

    // "subdir" was never made durable in the root, so its durable "inner" goes with it.
    assert_eq!(mount.names(), ["kept"]);
    assert_eq!(fs::read(mount.path("kept")).unwrap(), b"kept");
    assert_eq!(loss.entries, 2);
    assert!(File::open(mount.path("lost")).is_err());
}

#[test]
fn a_checkpoint_makes_everything_written_so_far_durable_and_nothing_after_it() {
    skip_without_fuse!();
    let mount = Mounted::new();
    fs::create_dir_all(mount.path("member/wal")).expect("mkdir");
    let mut wal = File::create(mount.path("member/wal/0.wal")).expect("create");
    wal.write_all(b"before").expect("write");

    mount.disk.checkpoint();
    wal.write_all(b" after").expect("write");
    File::create(mount.path("member/later")).expect("create");
    let loss = mount.disk.lose_unsynced(None);

    assert_eq!(fs::read(mount.path("member/wal/0.wal")).unwrap(), b"before");
    assert!(!mount.path("member/later").exists());
    assert_eq!(
        loss.to_json(),
        serde_json::json!({"files": 1, "bytes": 6, "entries": 1})
    );
}

#[test]
fn write_fsync_rename_fsync_dir_survives_and_an_unsynced_rename_rolls_back() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let (temp, target) = (mount.path("state.tmp"), mount.path("state"));
    // The atomic replace pattern, twice: the second time without the final directory fsync.
    for (version, sync_dir) in [(&b"version 1"[..], true), (&b"version 2"[..], false)] {
        let mut file = File::create(&temp).expect("create temp");
        file.write_all(version).expect("write");
        file.sync_all().expect("fsync temp");
        fs::rename(&temp, &target).expect("rename");
        if sync_dir {
            mount.sync_dir();
        }
    }
    assert_eq!(fs::read(&target).unwrap(), b"version 2");

    mount.disk.lose_unsynced(None);

    assert_eq!(
        fs::read(&target).unwrap(),
        b"version 1",
        "the rename rolled back"
    );
    // The replacement's own name never became durable either.
    assert_eq!(mount.names(), ["state"]);
}

#[test]
fn a_torn_cut_keeps_a_reproducible_prefix_of_the_unsynced_bytes_up_to_a_sector() {
    skip_without_fuse!();
    let unsynced: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let cut = |seed| {
        let mount = Mounted::new();
        let mut file = File::create(mount.path("log")).expect("create");
        file.write_all(b"HEAD").expect("write");
        file.sync_all().expect("fsync");
        mount.sync_dir();
        // Three writes of 1000 bytes: a cut may fall inside any of them.
        for chunk in unsynced.chunks(1000) {
            file.write_all(chunk).expect("write");
        }
        let loss = mount.disk.lose_unsynced(Some(seed));
        (fs::read(mount.path("log")).expect("read"), loss)
    };
    let mut kept_lengths = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let (content, loss) = cut(seed);
        assert!(content.starts_with(b"HEAD"), "{content:?}");
        let kept = &content[4..];
        assert!(
            unsynced.starts_with(kept),
            "seed {seed}: kept bytes are not a prefix of what was written"
        );
        assert!(
            content.len() % 512 == 0 || kept.len() == unsynced.len() || kept.is_empty(),
            "seed {seed}: the cut at {} is inside a sector",
            content.len()
        );
        assert_eq!(loss.bytes, (unsynced.len() - kept.len()) as u64);
        assert_eq!(cut(seed).0, content, "seed {seed} again");
        kept_lengths.insert(kept.len());
    }
    assert!(
        kept_lengths.len() >= 3,
        "seeds keep different prefixes: {kept_lengths:?}"
    );
}

/// A shell that writes through the mount, fsyncs some of it with coreutils' `sync FILE`,
/// writes more, and waits to be killed.
#[test]
fn a_killed_process_keeps_exactly_what_it_fsynced() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let script = r#"
        printf 'acknowledged' > "$1/data" && sync "$1/data" && sync "$1"
        printf ' pending' >> "$1/data"
        printf 'x' > "$1/unnamed" && sync "$1/unnamed"
        echo ready
        exec sleep 600
    "#;
    let mut child = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(mount.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sh");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "ready\n");
    assert_eq!(
        fs::read(mount.path("data")).unwrap(),
        b"acknowledged pending"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let loss = mount.disk.lose_unsynced(None);

    assert_eq!(fs::read(mount.path("data")).unwrap(), b"acknowledged");
    assert_eq!(
        mount.names(),
        ["data"],
        "`unnamed` had its data synced, not its name"
    );
    assert_eq!((loss.files, loss.bytes, loss.entries), (1, 8, 1));
}

#[test]
fn readers_with_the_file_open_or_mapped_see_the_durable_content_after_the_cut() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let path = mount.path("page");
    let mut file = File::create(&path).expect("create");
    file.write_all(&[b'D'; 4096]).expect("write");
    file.sync_all().expect("fsync");
    mount.sync_dir();
    file.write_all_at(&[b'U'; 4096], 0).expect("overwrite");

    let mut reader = File::open(&path).expect("open");
    let mut before = Vec::new();
    reader.read_to_end(&mut before).expect("read");
    assert_eq!(page_of(&before), Some(b'U'));
    let mapped = Mapping::new(&reader, 4096);
    if let Some(mapped) = &mapped {
        assert_eq!(page_of(&mapped.bytes()), Some(b'U'));
    } else {
        eprintln!("mmap of a direct-I/O file is refused by this kernel; checking reads only");
    }

    mount.disk.lose_unsynced(None);

    // The mapping first: opening the file again would drop its cached pages anyway.
    if let Some(mapped) = &mapped {
        assert_eq!(page_of(&mapped.bytes()), Some(b'D'), "the mapping");
    }
    let mut after = Vec::new();
    reader.seek(SeekFrom::Start(0)).expect("seek");
    reader.read_to_end(&mut after).expect("read again");
    assert_eq!(page_of(&after), Some(b'D'), "the open reader");
    assert_eq!(
        page_of(&fs::read(&path).unwrap()),
        Some(b'D'),
        "a new reader"
    );
}

/// The byte that a whole 4096-byte page repeats, if it is one such page.
fn page_of(bytes: &[u8]) -> Option<u8> {
    let first = *bytes.first()?;
    (bytes.len() == 4096 && bytes.iter().all(|byte| *byte == first)).then_some(first)
}

/// A read-only shared mapping of a file.
struct Mapping {
    address: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(file: &File, len: usize) -> Option<Mapping> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh read-only mapping of `len` bytes of an open file; it is only read
        // through `bytes` and unmapped on drop.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        (address != libc::MAP_FAILED).then_some(Mapping { address, len })
    }

    fn bytes(&self) -> Vec<u8> {
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`; the file is
        // never shorter than that in these tests.
        unsafe { std::slice::from_raw_parts(self.address as *const u8, self.len).to_vec() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

#[test]
fn handles_to_files_a_cut_removed_go_stale_and_closing_them_is_harmless() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(mount.path("ghost"))
        .expect("create");
    file.write_all(b"boo").expect("write");
    file.seek(SeekFrom::Start(0)).expect("seek");
    mount.disk.lose_unsynced(None);
    let mut buffer = Vec::new();
    let error = file
        .read_to_end(&mut buffer)
        .expect_err("the inode is gone");
    assert_eq!(error.raw_os_error(), Some(libc::ESTALE), "{error}");
    drop(file); // a RELEASE for an inode the model no longer has
    fs::write(mount.path("after"), b"still works").expect("write after");
    assert_eq!(fs::read(mount.path("after")).unwrap(), b"still works");
}

#[test]
fn hard_links_and_fallocate_work_and_other_kinds_of_file_are_refused() {
    skip_without_fuse!();
    let mount = Mounted::new();
    let path = mount.path("file");
    let file = File::create(&path).expect("create");
    nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, 8192).expect("fallocate");
    assert_eq!(fs::metadata(&path).unwrap().len(), 8192);
    fs::hard_link(&path, mount.path("link")).expect("link");
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 2);
    mount.sync_dir();
    let symlink = std::os::unix::fs::symlink("file", mount.path("symlink")).expect_err("symlink");
    assert_eq!(symlink.raw_os_error(), Some(libc::EPERM));
    let fifo =
        nix::unistd::mkfifo(&mount.path("fifo"), nix::sys::stat::Mode::S_IRWXU).expect_err("fifo");
    assert_eq!(fifo, nix::errno::Errno::EPERM);

    let loss = mount.disk.lose_unsynced(None);

    // The growth was never fsynced; both names were.
    assert_eq!(fs::metadata(mount.path("link")).unwrap().len(), 0);
    assert_eq!(mount.names(), ["file", "link"]);
    assert_eq!((loss.files, loss.bytes, loss.entries), (1, 0, 0));
}

#[test]
fn unmount_into_leaves_ordinary_files_and_no_mount() {
    skip_without_fuse!();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mountpoint = dir.path().join("data");
    fs::create_dir(&mountpoint).unwrap();
    fs::write(mountpoint.join("before"), b"was there").unwrap();

    let disk = PowerLossDisk::mount(&mountpoint).expect("mount");
    let fsname = disk.fsname().to_owned();
    assert!(is_mounted(&fsname));
    let guardian = super::mount::find_guardian(&fsname);
    assert_eq!(guardian.is_some(), disk.unmounts_on_sigkill());
    assert_eq!(fs::read(mountpoint.join("before")).unwrap(), b"was there");
    fs::create_dir(mountpoint.join("sub")).unwrap();
    fs::write(mountpoint.join("sub/new"), b"unsynced but kept").unwrap();
    fs::remove_file(mountpoint.join("before")).unwrap();
    disk.unmount_into(&mountpoint)
        .expect("unmount into the mountpoint");

    assert!(!is_mounted(&fsname), "{fsname} still mounted");
    if let Some(pid) = guardian {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "fusermount3 ({pid}) not reaped");
    }
    assert!(!mountpoint.join("before").exists(), "the removal is kept");
    assert_eq!(
        fs::read(mountpoint.join("sub/new")).unwrap(),
        b"unsynced but kept"
    );
    // Into another directory: only an empty or missing one.
    let occupied = dir.path().join("occupied");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("someone's"), b"").unwrap();
    let error = PowerLossDisk::mount(&mountpoint)
        .expect("mount again")
        .unmount_into(&occupied)
        .expect_err("not empty");
    assert!(matches!(error, DiskError::NotEmpty { .. }), "{error}");
    // The files round-trip through another mount.
    let copy = dir.path().join("copy");
    let disk = PowerLossDisk::mount(&mountpoint).expect("mount again");
    disk.unmount_into(&copy)
        .expect("unmount into a new directory");
    assert_eq!(
        fs::read(copy.join("sub/new")).unwrap(),
        b"unsynced but kept"
    );
    assert_eq!(fs::read_dir(&copy).unwrap().count(), 1);
}

#[test]
fn a_panic_while_mounted_still_unmounts() {
    skip_without_fuse!();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().to_owned();
    let panicked = std::thread::spawn(move || {
        let disk = PowerLossDisk::mount(&path).expect("mount");
        let fsname = disk.fsname().to_owned();
        fs::write(path.join("file"), b"x").unwrap();
        panic!("{fsname}");
    })
    .join()
    .expect_err("the thread panics");
    let fsname = panicked
        .downcast_ref::<String>()
        .expect("the panic message is the fsname");
    assert!(fsname.starts_with("faultline-"));
    assert!(
        !is_mounted(fsname),
        "{fsname} still mounted after the panic"
    );
}

/// Set in the child process that [`a_sigkilled_owner_leaves_no_mount`] starts: where to
/// mount, and whether to use fusermount3's auto-unmount.
const HELPER_DIR: &str = "FAULTLINE_DISK_TEST_MOUNT";
const HELPER_AUTO_UNMOUNT: &str = "FAULTLINE_DISK_TEST_AUTO_UNMOUNT";

#[test]
#[ignore = "a helper: a_sigkilled_owner_leaves_no_mount runs it in a child process"]
fn helper_mount_until_killed() {
    let Some(dir) = std::env::var_os(HELPER_DIR) else {
        return;
    };
    let auto_unmount = std::env::var_os(HELPER_AUTO_UNMOUNT).is_some();
    let disk = PowerLossDisk::mount_with(Path::new(&dir), auto_unmount).expect("mount");
    println!("mounted {} {}", disk.fsname(), disk.unmounts_on_sigkill());
    std::io::stdout().flush().expect("flush");
    std::thread::sleep(Duration::from_secs(600));
}

/// Starts the helper mounting on `dir`; returns it and the fsname it mounted.
fn mount_in_child(dir: &Path, auto_unmount: bool) -> (Child, String, bool) {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args([
            "disk::mount_tests::helper_mount_until_killed",
            "--exact",
            "--ignored",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(HELPER_DIR, dir)
        .stdout(Stdio::piped());
    if auto_unmount {
        command.env(HELPER_AUTO_UNMOUNT, "1");
    }
    let mut child = command.spawn().expect("start the helper");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    for line in stdout.lines() {
        let line = line.expect("read the helper's output");
        // libtest prints the test's name first, on the same line.
        if let Some((_, rest)) = line.split_once("mounted ") {
            let (fsname, auto) = rest.split_once(' ').expect("fsname and auto-unmount");
            return (child, fsname.to_owned(), auto == "true");
        }
    }
    let status = child.wait();
    panic!("the helper ended without mounting: {status:?}");
}

#[test]
fn a_sigkilled_owner_leaves_no_mount() {
    skip_without_fuse!();
    // With fusermount3's auto-unmount, the mount goes by itself when its owner dies.
    if fusermount3().is_some() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (mut child, fsname, auto) = mount_in_child(dir.path(), true);
        assert!(auto, "fusermount3 is installed, yet no auto-unmount");
        assert!(is_mounted(&fsname));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_mounted(&fsname) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if is_mounted(&fsname) {
            // Seen once in a CI run (2026-12-06, cause unknown: the watcher fusermount3
            // leaves behind did not unmount, and the mount stayed for minutes). What a run
            // promises then is the fallback: the next run removes the leftover.
            eprintln!("warning: {fsname} outlived its owner; the leftover sweep must take it");
            let removed = remove_leftover_mounts().expect("remove leftovers");
            let mountpoint = dir.path().canonicalize().unwrap();
            assert!(removed.contains(&mountpoint), "{removed:?}");
            assert!(
                !is_mounted(&fsname),
                "{fsname} outlived its owner and the sweep"
            );
        }
    } else {
        eprintln!("no fusermount3: only remove_leftover_mounts is checked");
    }
    // Without it, remove_leftover_mounts finds the mount of the dead process.
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut child, fsname, auto) = mount_in_child(dir.path(), false);
    assert!(!auto);
    let live = Mounted::new();
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(is_mounted(&fsname), "nothing else removes it");

    let removed = remove_leftover_mounts().expect("remove leftovers");

    let mountpoint = dir.path().canonicalize().unwrap();
    assert!(removed.contains(&mountpoint), "{removed:?}");
    assert!(!is_mounted(&fsname));
    assert!(
        is_mounted(live.disk.fsname()),
        "a live process's mount is left alone"
    );
    fs::write(dir.path().join("plain"), b"an ordinary directory again").unwrap();
}

#[test]
fn fuse_is_available_where_the_device_and_privileges_are() {
    skip_without_fuse!();
    assert!(
        fuse_available().is_ok(),
        "{}",
        fuse_available().unwrap_err()
    );
}

#[test]
fn unavailable_fuse_says_what_to_do() {
    assert!(
        FuseUnavailable::NoDevice
            .to_string()
            .contains("modprobe fuse")
    );
    assert!(
        FuseUnavailable::NoFusermount
            .to_string()
            .contains("apt-get install fuse3")
    );
    let refused =
        FuseUnavailable::MountFailed("fusermount3: mount failed: Operation not permitted".into());
    assert!(refused.to_string().contains("Operation not permitted"));
    assert!(refused.to_string().contains("--cap-add SYS_ADMIN"));
}

// ----- the bundled node on the mount -----

/// The node binary beside this test binary (`target/<profile>/faultline-node`), built by
/// `cargo build --release -p faultline-node` or by the workspace's `cargo test`.
fn node_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("faultline-node");
    binary.is_file().then_some(binary)
}

/// Kills the node when the test ends, however it ends.
struct Node(Child);

impl Node {
    fn start(
        binary: &Path,
        data_dir: &Path,
        client: SocketAddr,
        peer: SocketAddr,
        log: &Path,
    ) -> Node {
        let log = File::create(log).expect("node log");
        let child = Command::new(binary)
            .args(["--id", "n1"])
            .arg("--client-addr")
            .arg(client.to_string())
            .arg("--peer-addr")
            .arg(peer.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the node");
        Node(child)
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// One HTTP/1.1 request on a fresh connection: the status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

/// Repeats a request until it gets a 200 (the node may still be starting or electing
/// itself), and returns the body.
fn http_ok(addr: SocketAddr, method: &str, path: &str, body: &str, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http(addr, method, path, body);
        if let Ok((200, body)) = &answer {
            return body.clone();
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(log).unwrap_or_default();
            panic!("{method} {path}: {answer:?}\nnode log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_node_keeps_every_acknowledged_write_across_power_cuts() {
    skip_without_fuse!();
    let Some(binary) = node_binary() else {
        eprintln!(
            "skipped: no faultline-node binary beside the test binary (cargo build --release -p faultline-node)"
        );
        return;
    };
    let mount = Mounted::new();
    let logs = tempfile::tempdir().expect("temporary directory");
    let data_dir = mount.dir.path();
    let mut acknowledged = Vec::new();
    // A plain cut, then a torn one, each after a kill with writes acknowledged just before.
    for (round, torn) in [None, Some(42)].into_iter().enumerate() {
        let (client, peer) = (free_addr(), free_addr());
        let log = logs.path().join(format!("node-{round}.log"));
        let node = Node::start(&binary, data_dir, client, peer, &log);
        for (key, value) in &acknowledged {
            let body = http_ok(client, "GET", &format!("/kv/{key}"), "", &log);
            assert!(
                body.contains(&format!("\"value\":{value}")),
                "round {round}, {key}: {body}"
            );
        }
        for i in 0..100 {
            let key = format!("k{round}-{i}");
            let value = round * 1000 + i;
            http_ok(
                client,
                "PUT",
                &format!("/kv/{key}"),
                &format!("{{\"value\":{value}}}"),
                &log,
            );
            acknowledged.push((key, value));
        }
        node.kill();
        let loss = mount.disk.lose_unsynced(torn);
        eprintln!("round {round}: the cut lost {loss}");
    }
    let (client, peer) = (free_addr(), free_addr());
    let log = logs.path().join("node-last.log");
    let _node = Node::start(&binary, data_dir, client, peer, &log);
    for (key, value) in &acknowledged {
        let body = http_ok(client, "GET", &format!("/kv/{key}"), "", &log);
        assert!(
            body.contains(&format!("\"value\":{value}")),
            "{key}: {body}"
        );
    }
}

// ----- how much the mount costs the node -----

/// Runs `clients` closed-loop writers (one keep-alive connection each, PUTs of random keys)
/// against the node at `addr` for `duration`; returns acknowledged writes per second.
fn write_throughput(addr: SocketAddr, clients: usize, duration: Duration) -> f64 {
    let deadline = Instant::now() + duration;
    let writers: Vec<_> = (0..clients)
        .map(|client| {
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
                let mut writer = stream;
                let mut acknowledged = 0u64;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let body = format!("{{\"value\":{i}}}");
                    write!(
                        writer,
                        "PUT /kv/c{client}-{} HTTP/1.1\r\nHost: {addr}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        i % 1000,
                        body.len()
                    )
                    .expect("send");
                    let mut status = String::new();
                    reader.read_line(&mut status).expect("status line");
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).expect("header");
                        if header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    acknowledged += u64::from(status.starts_with("HTTP/1.1 200"));
                }
                acknowledged
            })
        })
        .collect();
    let total: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    total as f64 / duration.as_secs_f64()
}

/// A measurement, not a test (it never fails on speed): the bundled node's write
/// throughput (fsync on, one node, `BENCH_CLIENTS` concurrent writers, default 16) with its
/// data dir on the power-loss filesystem against a plain directory, alternating the two
/// `BENCH_REPEATS` times (default 3) for `BENCH_SECONDS` each (default 5), and the ratio of
/// the medians. The plain directory is made in `BENCH_PLAIN_PARENT` (default: the system's
/// temporary directory; /dev/shm takes the disk's fsync out of the comparison). Run it with
/// `cargo test --release -p faultline-nemesis --lib -- --ignored --nocapture measure_node_write_throughput`
/// after `cargo build --release -p faultline-node`.
#[test]
#[ignore = "a measurement: run it explicitly"]
fn measure_node_write_throughput_on_the_mount_against_a_plain_dir() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let (clients, repeats) = (env("BENCH_CLIENTS", 16) as usize, env("BENCH_REPEATS", 3));
    let duration = Duration::from_secs(env("BENCH_SECONDS", 5));
    let binary = node_binary().expect("cargo build --release -p faultline-node first");
    let plain = match std::env::var_os("BENCH_PLAIN_PARENT") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("temporary directory");
    let mount = Mounted::new();
    let logs = tempfile::tempdir().expect("temporary directory");
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..repeats {
        for (which, data_dir) in [plain.path(), mount.dir.path()].into_iter().enumerate() {
            let (client, peer) = (free_addr(), free_addr());
            let log = logs.path().join(format!("node-{round}-{which}.log"));
            let node = Node::start(&binary, data_dir, client, peer, &log);
            http_ok(client, "PUT", "/kv/warm-up", "{\"value\":0}", &log);
            let rate = write_throughput(client, clients, duration);
            node.kill();
            eprintln!(
                "round {round} {}: {rate:.0} writes/s",
                ["plain", "fuse "][which]
            );
            rates[which].push(rate);
        }
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (plain_rate, fuse_rate) = (median(&mut rates[0]), median(&mut rates[1]));
    eprintln!(
        "faultline-node, fsync on, {clients} writers: plain dir {plain_rate:.0} writes/s, \
         power-loss filesystem {fuse_rate:.0} writes/s: {:.2}x the plain dir's",
        fuse_rate / plain_rate
    );
}
