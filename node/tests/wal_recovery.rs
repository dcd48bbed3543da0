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
