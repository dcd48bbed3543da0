//! `test.json`: what a run was. `faultline test` writes it when the run starts; the report
//! and the index of `faultline serve` read it back through the same [`TestRecord`]. Unknown
//! keys are ignored and every field added since the first runs is `#[serde(default)]`, so
//! run directories of older and newer versions still read.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use faultline_nemesis::NodeName;
use serde::{Deserialize, Serialize};

use super::{DATA, NODE_LOG, TestOptions};

/// What `test.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Every option, defaults resolved, the seed included.
    pub options: TestOptions,
    /// The system under test (absent in runs from before it was recorded: the bundled node).
    #[serde(default)]
    pub system: SystemRecord,
    /// The partition backend actually used (`auto` resolved).
    pub partition_backend_used: String,
    /// The command that replays the run.
    pub replay: String,
    pub versions: Versions,
    /// Where each node lived.
    pub nodes: Vec<NodeRecord>,
    /// When the run started (RFC 3339).
    pub started: String,
}

/// The system under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRecord {
    /// `faultline` for the bundled node.
    pub name: String,
    /// What the system says its version is, if it could be asked.
    #[serde(default)]
    pub version: Option<String>,
    /// The file that describes the system, for a system described by a file.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl Default for SystemRecord {
    /// The bundled node, `faultline-node`.
    fn default() -> SystemRecord {
        SystemRecord {
            name: "faultline".to_string(),
            version: None,
            file: None,
        }
    }
}

/// The versions of the binaries of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// This harness.
    pub faultline: String,
    /// What the node binary printed for `--version`, if it ran.
    #[serde(rename = "faultline-node")]
    pub faultline_node: Option<String>,
}

/// Where one node lives: its addresses and its directory in the run directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: NodeName,
    pub ip: Ipv4Addr,
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    /// `nodes/<name>/` in the run directory: `data/` and `node.log` inside.
    pub dir: PathBuf,
    /// The network namespace the node ran in (as `ip netns` names it), when it had one of
    /// its own; then `ip` is its address there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Started as a spare, not a member, for the membership fault to add.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spare: bool,
    /// The host the node ran on, with `--hosts`; then `ip` is that host's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostRecord>,
}

/// A host a node ran on (`--hosts`), and its clock against the harness's when the run began.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host as `--hosts` named it (`[user@]host[:port]`).
    pub ssh: String,
    /// Where the node's directory was on the host; it is copied into `dir` at the end.
    pub dir: String,
    /// The host's clock minus the harness's, in milliseconds (positive: the host is ahead).
    pub clock_offset_ms: f64,
    /// The round trip of that measurement, in milliseconds: the offset is right within half.
    pub clock_round_trip_ms: f64,
}

impl NodeRecord {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(NODE_LOG)
    }

    pub fn client_url(&self) -> String {
        format!("http://{}", self.client_addr)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::RunDir;
    use crate::store::tests::fixture;

    #[test]
    fn a_test_json_from_before_systems_were_recorded_reads_as_the_bundled_node() {
        let test = fixture().read_test().unwrap();
        assert_eq!(test.system, SystemRecord::default());
        assert_eq!(test.system.name, "faultline");
        assert_eq!(test.options.seed, 18446744073709551557);
        assert_eq!(test.options.bugs, ["stale-read"]);
        assert!(test.options.left_out.is_empty());
        let nodes: Vec<&str> = test.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(nodes, ["n1", "n2", "n3"]);
        assert_eq!(test.nodes[1].log_path(), Path::new("nodes/n2/node.log"));
        assert_eq!(
            test.versions.faultline_node.as_deref(),
            Some("faultline-node 0.1.0")
        );
    }

    #[test]
    fn a_test_record_reads_back_as_written_and_keeps_the_keys_of_the_format() {
        let mut test = fixture().read_test().unwrap();
        test.system = SystemRecord {
            name: "etcd-python".to_string(),
            version: Some("etcd Version: 3.5.16".to_string()),
            file: Some(PathBuf::from("examples/etcd-python/system.toml")),
        };
        test.options.left_out = vec!["power-loss, because /dev/fuse does not exist".into()];
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::at(dir.path());
        run.write_test(&test).unwrap();
        assert_eq!(run.read_test().unwrap(), test);

        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.test_json()).unwrap()).unwrap();
        assert_eq!(json["options"]["time_limit"], "2s 500ms");
        assert_eq!(json["versions"]["faultline-node"], "faultline-node 0.1.0");
        assert_eq!(json["system"]["name"], "etcd-python");
        assert_eq!(json["nodes"][0]["client_addr"], "127.0.0.11:7000");
    }
}
