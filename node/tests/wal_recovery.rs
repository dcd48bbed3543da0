//! Start-up of a real node on a damaged WAL: a torn tail is cut and the node rejoins; damage
//! anywhere else stops start-up with an error that names the file and the offset.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{TestCluster, snapshot_files};
use serde_json::json;

/// The WAL segments of a data dir, largest first.
fn segments_by_size(data_dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<(u64, PathBuf)> = fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .map(|p| (fs::metadata(&p).unwrap().len(), p))
        .collect();
    segments.sort_by_key(|s| std::cmp::Reverse(s.0));
    assert!(
        !segments.is_empty(),
        "no WAL segment in {}",
        data_dir.display()
    );
    segments.into_iter().map(|(_, p)| p).collect()
}

/// The newest WAL segment (highest sequence number in its name).
fn newest_segment(data_dir: &Path) -> PathBuf {
    let mut segments = segments_by_size(data_dir);
    segments.sort();
    segments.pop().unwrap()
}

/// Where the records of a segment end: the WAL keeps zeros written ahead of them. Walks the
/// 12-byte record headers (length, body CRC, header CRC) until one is all zeros.
fn records_end(bytes: &[u8]) -> usize {
    let mut offset = 0;
    while let Some(header) = bytes.get(offset..offset + 12) {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let body_len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        offset += 12 + body_len;
    }
    offset.min(bytes.len())
}

fn write_keys(cluster: &TestCluster, range: std::ops::Range<u32>) {
    for i in range {
        cluster.put_acknowledged(&format!("k{i}"), json!(i));
    }
}

#[test]
fn a_torn_record_at_the_tail_is_cut_and_the_node_rejoins() {
    let mut cluster = TestCluster::start(3, &[]);
    write_keys(&cluster, 0..30);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    cluster.kill(victim);

    // What a write cut short leaves: an intact record header (length, CRC32C of the body,
    // CRC32C of the header) promising a 200-byte body, and only 37 bytes of that body.
    let segment = newest_segment(&cluster.nodes[victim].data_dir);
    let clean_len = records_end(&fs::read(&segment).unwrap()) as u64;
    let body = [0x5c; 200];
    let mut torn = 200u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    torn.extend_from_slice(&crc32c::crc32c(&torn).to_le_bytes());
    torn.extend_from_slice(&body[..37]);
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.write_all_at(&torn, clean_len).unwrap();
    drop(file);

    write_keys(&cluster, 30..40);
    cluster.spawn(victim);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let commit = cluster.status(leader).unwrap()["commit"].as_u64().unwrap();
    cluster.wait_for_applied(victim, commit, Duration::from_secs(15));
    assert_eq!(
        fs::metadata(&segment).unwrap().len(),
        clean_len,
        "the torn tail was not cut"
    );
    let log = fs::read_to_string(&cluster.nodes[victim].log).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        log.lines().any(|l| l.contains("WARN") && l.contains(name)),
        "no warning naming {name}:\n{}",
        cluster.logs()
    );
    for i in 0..40 {
        let answer: serde_json::Value = cluster
            .http
            .get(cluster.url(victim, &format!("/kv/k{i}?stale=true")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(answer["value"], json!(i), "k{i} on the repaired node");
    }
}

#[test]
fn damage_in_the_middle_of_the_wal_stops_start_up_naming_file_and_offset() {
    let mut cluster = TestCluster::start(3, &[]);
    write_keys(&cluster, 0..40);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    cluster.kill(victim);

    let segment = segments_by_size(&cluster.nodes[victim].data_dir).remove(0);
    let mut bytes = fs::read(&segment).unwrap();
    let end = records_end(&bytes);
    assert!(
        end > 1000,
        "expected a segment with many records: {end} bytes of them"
    );
    let middle = end / 2;
    bytes[middle] ^= 0x40;
    fs::write(&segment, &bytes).unwrap();

    cluster.spawn(victim);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = cluster.exited(victim) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node started on a corrupt WAL:\n{}",
            cluster.logs()
        );
        sleep(Duration::from_millis(50));
    };
    assert!(
        !status.success(),
        "a corrupt WAL must stop start-up with an error"
    );
    let log = fs::read_to_string(&cluster.nodes[victim].log).unwrap();
    let name = segment.file_name().unwrap().to_str().unwrap();
    let error = log
        .lines()
        .rev()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| {
            panic!("no error naming {name}:\n{log}");
        });
    assert!(
        error.contains("at byte"),
        "the error should give the offset: {error}"
    );
    // The rest of the cluster is unaffected.
    cluster.put_acknowledged("after", json!(true));
}

/// A snapshot file damaged in the middle stops start-up with an error naming the file (no
/// panic), and the file is left in place to be inspected; the rest of the cluster goes on.
#[test]
fn a_damaged_snapshot_stops_start_up_naming_the_file() {
    let mut cluster = TestCluster::start(3, &["--snapshot-threshold", "30"]);
    write_keys(&cluster, 0..40);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    cluster.wait_until(
        "the victim takes a snapshot",
        Duration::from_secs(10),
        || (cluster.status_u64(victim, "snapshot_index")? > 0).then_some(()),
    );
    cluster.kill(victim);

    let snapshots = snapshot_files(&cluster.nodes[victim].data_dir);
    assert_eq!(
        snapshots.len(),
        1,
        "expected one snapshot file: {snapshots:?}"
    );
    let snapshot = &snapshots[0];
    let mut bytes = fs::read(snapshot).unwrap();
    assert!(
        bytes.len() > 100,
        "a snapshot of 40 keys should be larger: {} bytes",
        bytes.len()
    );
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(snapshot, &bytes).unwrap();

    cluster.spawn(victim);
    let status = cluster.wait_for_exit(victim, Duration::from_secs(10));
    let log = fs::read_to_string(&cluster.nodes[victim].log).unwrap();
    assert!(
        !status.success(),
        "a damaged snapshot must stop start-up with an error:\n{log}"
    );
    assert!(
        !log.contains("panicked at"),
        "a panic, not an error:\n{log}"
    );
    let name = snapshot.file_name().unwrap().to_str().unwrap();
    let error = log
        .lines()
        .rev()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no error naming {name}:\n{log}"));
    assert!(
        error.contains("corrupt"),
        "the error should say the file is corrupt: {error}"
    );
    assert_eq!(
        fs::read(snapshot).ok().as_ref(),
        Some(&bytes),
        "the damaged snapshot should be left as it was, for inspection"
    );
    // The rest of the cluster is unaffected.
    cluster.put_acknowledged("after", json!(true));
}

/// How much of the end of each WAL's records the probes below zero: data an fsync had
/// covered and the disk lost (the probe).
const LOST_TAIL_BYTES: usize = 4096;

/// Zeroes the last `LOST_TAIL_BYTES` of the records of node `n`'s newest WAL segment.
fn zero_the_wal_tail(cluster: &TestCluster, n: usize) {
    let segment = newest_segment(&cluster.nodes[n].data_dir);
    let mut bytes = fs::read(&segment).unwrap();
    let end = records_end(&bytes);
    assert!(
        end > 4 * LOST_TAIL_BYTES,
        "{}: only {end} bytes of records",
        cluster.nodes[n].name
    );
    bytes[end - LOST_TAIL_BYTES..end].fill(0);
    fs::write(&segment, &bytes).unwrap();
}

/// Waits until node `n` either exits (returns its log, after checking that it failed and
/// said what was lost and how to recover) or answers `/status` (returns None).
fn refusal_or_start(cluster: &mut TestCluster, n: usize) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = cluster.exited(n) {
            let log = fs::read_to_string(&cluster.nodes[n].log).unwrap();
            assert!(
                !status.success(),
                "{} exited 0:\n{log}",
                cluster.nodes[n].name
            );
            let error = log
                .lines()
                .rev()
                .find(|l| l.contains("are lost"))
                .unwrap_or_else(|| panic!("no error saying what was lost:\n{log}"));
            for expected in ["ends at log index", "entries ", "empty one"] {
                assert!(error.contains(expected), "no `{expected}` in: {error}");
            }
            return Some(log);
        }
        if cluster.status(n).is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "{} neither started nor stopped:\n{}",
            cluster.nodes[n].name,
            cluster.logs()
        );
        sleep(Duration::from_millis(50));
    }
}

/// The probe: acknowledged writes, then the tail of every node's WAL lost. No node
/// may start quietly behind its own durable commit index: each either refuses, saying what
/// was lost, or (if a quorum starts) every acknowledged key reads back.
#[test]
fn a_wal_tail_lost_on_every_node_never_loses_acknowledged_keys_in_silence() {
    const KEYS: u32 = 300;
    let mut cluster = TestCluster::start(3, &[]);
    write_keys(&cluster, 0..KEYS);
    for n in 0..3 {
        cluster.kill(n);
    }
    for n in 0..3 {
        zero_the_wal_tail(&cluster, n);
    }
    for n in 0..3 {
        cluster.spawn(n);
    }
    let refused: Vec<usize> = (0..3)
        .filter(|&n| refusal_or_start(&mut cluster, n).is_some())
        .collect();
    eprintln!(
        "{} of 3 nodes refused to start on a WAL that lost its last {LOST_TAIL_BYTES} bytes",
        refused.len()
    );
    if refused.len() <= 1 {
        for i in 0..KEYS {
            assert_eq!(
                cluster.read(&format!("k{i}")),
                Some(json!(i)),
                "acknowledged k{i} lost in silence (nodes that refused: {refused:?})\n{}",
                cluster.logs()
            );
        }
    }
}

/// One node loses the tail of its WAL, the others keep theirs: it refuses to start, and
/// rejoins as the message says, on an empty data dir, getting every acknowledged key back.
#[test]
fn a_node_that_lost_committed_entries_refuses_and_rejoins_from_an_empty_data_dir() {
    const KEYS: u32 = 200;
    let mut cluster = TestCluster::start(3, &[]);
    write_keys(&cluster, 0..KEYS);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let victim = (leader + 1) % 3;
    cluster.kill(victim);
    zero_the_wal_tail(&cluster, victim);

    cluster.spawn(victim);
    let log = refusal_or_start(&mut cluster, victim)
        .unwrap_or_else(|| panic!("the node started on a WAL that lost committed entries"));
    assert!(
        !log.contains("panicked at"),
        "a panic, not an error:\n{log}"
    );

    // As the message says: only once the others have elected a leader in a later term (so
    // that the node cannot vote twice in its old one, and the leader does not count on its
    // earlier acknowledgements). Restarting the leader makes them elect one.
    let term = cluster.status_u64(leader, "term").unwrap();
    cluster.kill(leader);
    cluster.spawn(leader);
    cluster.wait_until("a leader in a later term", Duration::from_secs(20), || {
        let leader = (0..3).find(|&n| {
            cluster.is_running(n) && cluster.status(n).is_some_and(|s| s["role"] == "leader")
        })?;
        (cluster.status_u64(leader, "term")? > term).then_some(leader)
    });
    let data_dir = cluster.nodes[victim].data_dir.clone();
    fs::rename(&data_dir, data_dir.with_extension("lost-tail")).unwrap();
    cluster.spawn(victim);
    cluster.put_acknowledged("after-rejoining", json!(true));
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let commit = cluster.status_u64(leader, "commit").unwrap();
    cluster.wait_for_applied(victim, commit, Duration::from_secs(15));
    for i in 0..KEYS {
        assert_eq!(
            cluster.stale_read(victim, &format!("k{i}")),
            Some(json!(i)),
            "k{i} on the rejoined node"
        );
    }
}
