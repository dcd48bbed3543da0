//! End-to-end: `faultline serve` over a store of fake runs: the index lists them newest first
//! with their verdicts, each run's files are listed and served, and nothing outside the store
//! can be reached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// A running `faultline serve`, stopped when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free loopback port and reads the address it prints.
fn serve(store: &Path) -> Server {
    let child = Command::new(faultline())
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        addr: String::new(),
    };
    let mut line = String::new();
    BufReader::new(server.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    server.addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    server
}

/// Sends `GET <target>` exactly as written (no client normalizes it); returns the status
/// code and the body.
fn get(server: &Server, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// The committed fixture run's `name`, as `faultline test` writes it.
fn fixture_json(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid");
    serde_json::from_slice(&std::fs::read(path.join(name)).unwrap()).unwrap()
}

/// A run directory with the fixture's `test.json` (renamed, started at `started`) and, if
/// given, its `results.json` with that verdict and number of operations.
fn fake_run(
    store: &Path,
    test: &str,
    dir: &str,
    started: &str,
    results: Option<(bool, u64)>,
) -> PathBuf {
    let path = store.join(test).join(dir);
    std::fs::create_dir_all(path.join("nodes/n1")).unwrap();
    let mut test_json = fixture_json("test.json");
    test_json["options"]["name"] = test.into();
    test_json["options"]["workload"] = "register".into();
    test_json["started"] = started.into();
    std::fs::write(path.join("test.json"), test_json.to_string()).unwrap();
    std::fs::write(path.join("nodes/n1/node.log"), "elected leader\n").unwrap();
    if let Some((valid, operations)) = results {
        let mut results = fixture_json("results.json");
        results["valid"] = valid.into();
        results["linearizability"][0]["operations"] = operations.into();
        results["linearizability"][1]["operations"] = 0.into();
        std::fs::write(path.join("results.json"), results.to_string()).unwrap();
    }
    path
}

#[test]
fn the_index_lists_every_run_newest_first_and_serves_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    fake_run(
        &store,
        "older-valid",
        "20260101T100000",
        "2026-01-01T10:00:00+00:00",
        Some((true, 4321)),
    );
    let invalid = fake_run(
        &store,
        "newer-invalid",
        "20260101T110000",
        "2026-01-01T11:00:00+00:00",
        Some((false, 99)),
    );
    std::fs::write(invalid.join("report.html"), "<h1>the report</h1>").unwrap();
    fake_run(
        &store,
        "interrupted",
        "20260101T120000",
        "2026-01-01T12:00:00+00:00",
        None,
    );
    let server = serve(&store);

    let (status, index) = get(&server, "/");
    assert_eq!(status, 200, "{index}");
    let position = |text: &str| {
        index
            .find(text)
            .unwrap_or_else(|| panic!("{text} not in the index:\n{index}"))
    };
    assert!(position("interrupted") < position("newer-invalid"));
    assert!(position("newer-invalid") < position("older-valid"));
    assert!(
        index.contains(">INVALID<") && index.contains(">valid<"),
        "{index}"
    );
    assert!(index.contains(">no verdict<"), "{index}");
    assert!(
        index.contains(">4321<") && index.contains("kill,partition"),
        "{index}"
    );
    assert!(index.contains("href=\"/files/newer-invalid/20260101T110000/report.html\""));

    let (status, report) = get(&server, "/files/newer-invalid/20260101T110000/report.html");
    assert_eq!((status, report.as_str()), (200, "<h1>the report</h1>"));
    let (status, listing) = get(&server, "/files/older-valid/20260101T100000/");
    assert_eq!(status, 200);
    for entry in ["nodes/", "results.json", "test.json"] {
        assert!(
            listing.contains(&format!(">{entry}<")),
            "{entry}: {listing}"
        );
    }
    let (status, log) = get(
        &server,
        "/files/older-valid/20260101T100000/nodes/n1/node.log",
    );
    assert_eq!((status, log.as_str()), (200, "elected leader\n"));
    let (status, _) = get(&server, "/files/older-valid/20260101T100000/missing.json");
    assert_eq!(status, 404);
}

#[test]
fn nothing_outside_the_store_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    fake_run(&store, "t", "1", "2026-01-01T10:00:00Z", None);
    std::fs::write(dir.path().join("secret.txt"), "do not serve").unwrap();
    std::os::unix::fs::symlink(dir.path(), store.join("t/1/escape")).unwrap();
    let server = serve(&store);

    for attempt in [
        "/files/../secret.txt",
        "/files/t/../../secret.txt",
        "/files/..%2fsecret.txt",
        "/files/t/1/..%2F..%2F..%2Fsecret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/t/1/escape/secret.txt",
    ] {
        let (status, body) = get(&server, attempt);
        assert_eq!(
            (status, body.as_str()),
            (403, "outside the store\n"),
            "{attempt}"
        );
    }
}

#[test]
fn only_loopback_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(faultline())
        .args(["serve", "--addr", "0.0.0.0:0", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}
