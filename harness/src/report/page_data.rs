//! The JSON the page embeds and its scripts draw from. Times are whole microseconds since
//! the test started. The operations, the bulk of a long run, are columns rather than
//! objects: one array per field, strings replaced by their place in a table, and invocation
//! times and ids stored as differences from the previous one (small numbers, short text).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use faultline_checker::{
    CheckResult, Counterexample, DivergenceResult, LostWritesResult, Rejection, Stop, Verdict,
};
use faultline_history::{History, Operation, Outcome, Process, Summary, TypeCounts};
use serde::Serialize;
use serde_json::Value;

use super::analysis::Analysis;
use super::node_states::{Standing, standings};
use super::operations::TimelineOp;
use crate::completeness::StaleLeader;
use crate::election_safety::TwoLeaders;
use crate::faults::FaultKind;
use crate::fingerprints::Agreement;
use crate::results::{Crash, Detection, Healing, Recovery, RunResults};
use crate::stalls::Stall;
use crate::store::TestRecord;

/// What a page is the report of.
#[derive(Clone, Copy)]
pub enum Subject<'h> {
    /// A run: its `test.json` and its directory.
    Run { test: &'h TestRecord, dir: &'h Path },
    /// A history checked alone (`faultline check --report`).
    History(&'h FileInfo),
}

/// Everything the page shows.
#[derive(Serialize)]
pub struct PageData<'h> {
    /// What the page is about, for its title: the run's name, or the history file's.
    #[serde(skip)]
    pub name: &'h str,
    /// The run, for a run's page; `null` for a history checked alone.
    pub run: Option<RunInfo<'h>>,
    /// The history file, for a history checked alone; `null` for a run's page.
    pub file: Option<&'h FileInfo>,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    pub checks: Vec<CheckSummary>,
    pub summary: SummaryNumbers,
    /// The last thing recorded.
    pub end: u64,
    /// The processes of each timeline lane.
    pub lanes: Vec<&'h [u64]>,
    pub ops: OpColumns<'h>,
    /// Indices into the operations of the latency plot's points, as differences.
    pub latency_points: Vec<i64>,
    pub faults: Vec<FaultData<'h>>,
    pub nemesis: Vec<NemesisData<'h>>,
    pub nodes: Vec<NodeRow<'h>>,
    /// The cluster's configuration over time, as its leader saw it; empty when the nodes
    /// tell no membership.
    pub configurations: Vec<ConfigurationData<'h>>,
    /// Each node's clock, where the nemesis moved it.
    pub clocks: Vec<ClockRow<'h>>,
    pub counterexamples: Vec<CounterexampleData<'h>>,
    pub lost_writes: Option<&'h LostWritesResult>,
    /// Whether every node's copies of the lists agree.
    pub replicas: Option<&'h DivergenceResult>,
    /// Whether the fingerprints of what the nodes applied agree.
    pub agreement: Option<&'h Agreement>,
    /// Whether the cluster took a write once every fault was healed.
    pub healing: Option<&'h Healing>,
    /// Nodes that exited by themselves.
    pub crashes: &'h [Crash],
    /// Leaders that committed nothing for seconds while their log grew.
    pub stalls: &'h [Stall],
    /// Leaders whose log lacked entries committed in an earlier term.
    pub stale_leaders: &'h [StaleLeader],
    /// Terms that two nodes each led.
    pub two_leaders: &'h [TwoLeaders],
    /// The first anomaly, and when.
    pub detection: Option<&'h Detection>,
    /// How long each fault kept writes from succeeding.
    pub recovery: &'h Recovery,
    /// Each change of the cluster's leader.
    pub leaders: Vec<LeaderData<'h>>,
}

/// What was run, and how to run it again.
#[derive(Serialize)]
pub struct RunInfo<'h> {
    pub name: &'h str,
    pub dir: String,
    pub started: &'h str,
    pub workload: &'h str,
    pub nemesis: &'h str,
    pub backend: &'h str,
    pub nodes: Vec<&'h str>,
    pub concurrency: usize,
    pub time_limit_s: f64,
    /// A string: seeds go past the integers a JavaScript number holds exactly.
    pub seed: String,
    pub bugs: &'h [String],
    pub replay: &'h str,
    /// With `--hosts`: each node's host and its clock against the harness's.
    pub hosts: Vec<HostInfo<'h>>,
}

/// A node's host (`--hosts`), as the summary shows it.
#[derive(Serialize)]
pub struct HostInfo<'h> {
    pub node: &'h str,
    pub ssh: &'h str,
    pub clock_offset_ms: f64,
    pub clock_round_trip_ms: f64,
}

/// A history checked alone: which file, in which format.
#[derive(Serialize)]
pub struct FileInfo {
    pub path: String,
    /// The file's name, without its directory.
    pub name: String,
    /// `jsonl`, `edn` or `jepsen-log`.
    pub format: &'static str,
    /// Whether the file records no times (Knossos's and Porcupine's do not): its events are
    /// then drawn a millisecond apart, in the file's order.
    pub untimed: bool,
}

/// One model's linearizability check, in brief.
#[derive(Serialize)]
pub struct CheckSummary {
    pub model: &'static str,
    pub valid: &'static str,
    pub operations: usize,
    pub keys: usize,
    pub keys_invalid: usize,
    pub keys_unknown: usize,
    pub stopped: Option<Stop>,
    pub seconds: f64,
}

/// Operations by how they ended.
#[derive(Serialize)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub pending: u64,
}

/// Latency percentiles of the successful operations, in milliseconds.
#[derive(Serialize)]
pub struct LatencyMillis {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The numbers of the summary.
#[derive(Serialize)]
pub struct SummaryNumbers {
    pub duration_s: f64,
    pub total: Counts,
    pub by_function: BTreeMap<String, Counts>,
    pub errors: BTreeMap<String, u64>,
    pub ok_per_second: f64,
    pub latency_ms: Option<LatencyMillis>,
    /// Nemesis events by name.
    pub nemesis_events: BTreeMap<String, u64>,
}

/// The operations, one array per field (see the module documentation).
#[derive(Default, Serialize)]
pub struct OpColumns<'h> {
    /// Invocation index, as differences.
    pub id: Vec<i64>,
    pub process: Vec<u64>,
    /// Place in `fs`.
    pub f: Vec<u32>,
    pub fs: Vec<&'h str>,
    /// Place in `keys`, or -1.
    pub key: Vec<i64>,
    pub keys: Vec<&'h str>,
    /// Invocation time, as differences.
    pub start: Vec<i64>,
    /// Until the completion, or -1 for none.
    pub latency: Vec<i64>,
    /// 0 ok, 1 fail, 2 info, 3 pending.
    pub ending: Vec<u8>,
    pub value: Vec<&'h Value>,
    /// Place in `errors`, or -1.
    pub error: Vec<i64>,
    pub errors: Vec<&'h str>,
    /// The node that answered: place in `nodes`, or -1.
    pub node: Vec<i64>,
    pub nodes: Vec<&'h str>,
}

/// A fault interval.
#[derive(Serialize)]
pub struct FaultData<'h> {
    pub kind: FaultKind,
    /// The event that started it, e.g. `power-loss`.
    pub name: &'h str,
    pub start: u64,
    pub end: Option<u64>,
    pub nodes: &'h [String],
    pub detail: &'h Value,
}

/// A nemesis event.
#[derive(Serialize)]
pub struct NemesisData<'h> {
    pub time: u64,
    pub f: &'h str,
    pub nodes: &'h [String],
    /// `"down"` or `"paused"` when it takes nodes down or pauses them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts: Option<&'static str>,
    /// `"down"` or `"paused"` when it brings nodes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops: Option<&'static str>,
}

/// A node's row: its states over time.
#[derive(Serialize)]
pub struct NodeRow<'h> {
    pub name: &'h str,
    pub spans: Vec<SpanData<'h>>,
    /// Where it stood in the cluster's configuration over time; empty when the nodes tell
    /// no membership.
    pub membership: Vec<StandingData>,
}

/// The cluster's configuration from `start` to `end`.
#[derive(Serialize)]
pub struct ConfigurationData<'h> {
    pub start: u64,
    pub end: u64,
    pub voters: &'h [String],
    /// Non-empty only during a joint change: the voters of the configuration being left.
    pub outgoing: &'h [String],
    pub learners: &'h [String],
}

/// Where a node stood from `start` to `end`.
#[derive(Serialize)]
pub struct StandingData {
    pub start: u64,
    pub end: u64,
    pub standing: Standing,
}

/// A node's clock: each change, with the offset and rate it had from then on.
#[derive(Serialize)]
pub struct ClockRow<'h> {
    pub name: &'h str,
    pub points: Vec<ClockPointData>,
}

/// A change of a node's clock.
#[derive(Serialize)]
pub struct ClockPointData {
    pub time: u64,
    pub offset_ms: f64,
    pub rate: f64,
    pub observed_ms: Option<f64>,
}

/// One state of a node.
#[derive(Serialize)]
pub struct SpanData<'h> {
    pub start: u64,
    pub end: u64,
    pub up: bool,
    pub role: Option<&'h str>,
    pub term: Option<u64>,
    pub leader: Option<&'h str>,
}

/// A change of the cluster's leader; `None` is no leader.
#[derive(Serialize)]
pub struct LeaderData<'h> {
    pub time: u64,
    pub from: Option<&'h str>,
    pub to: Option<&'h str>,
    /// The nemesis event before it, named as the summary names it (`kill n1`), and when.
    pub fault: Option<String>,
    pub fault_time: Option<u64>,
}

/// A key that is not linearizable, Porcupine-style: its operations, the longest
/// linearizable prefix in order, the model state after it, and what could not come next.
#[derive(Serialize)]
pub struct CounterexampleData<'h> {
    pub model: &'static str,
    pub key: Option<&'h str>,
    pub operations: Vec<CounterexampleOp<'h>>,
    pub prefix: &'h [u64],
    pub state: &'h Value,
    pub rejected: &'h [Rejection],
}

/// An operation of a counterexample.
#[derive(Serialize)]
pub struct CounterexampleOp<'h> {
    pub id: u64,
    pub process: Process,
    pub f: &'h str,
    pub value: &'h Value,
    pub call: u64,
    /// `None` if indeterminate.
    pub ret: Option<u64>,
    pub outcome: Outcome,
}

fn micros(nanos: u64) -> u64 {
    nanos / 1_000
}

impl<'h> PageData<'h> {
    /// The page's data for `subject`: its `history`, the `results` of checking it, and what
    /// `analysis` derived from both.
    pub fn new(
        subject: Subject<'h>,
        history: &'h History,
        results: &'h RunResults,
        analysis: &'h Analysis<'h>,
    ) -> PageData<'h> {
        let (name, run, file) = match subject {
            Subject::Run { test, dir } => (&test.options.name[..], Some(run_info(test, dir)), None),
            Subject::History(file) => (&file.name[..], None, Some(file)),
        };
        PageData {
            name,
            run,
            file,
            verdict: results.valid.name(),
            checks: results.linearizability.iter().map(check_summary).collect(),
            summary: summary_numbers(&Summary::of(history), analysis),
            end: micros(analysis.end),
            lanes: analysis
                .lanes
                .iter()
                .map(|lane| &lane.processes[..])
                .collect(),
            ops: OpColumns::of(&analysis.ops),
            latency_points: differences(analysis.latency_points.iter().map(|&i| i as i64)),
            faults: analysis
                .faults
                .iter()
                .map(|fault| FaultData {
                    kind: fault.kind,
                    name: &fault.name,
                    start: micros(fault.start),
                    end: fault.end.map(micros),
                    nodes: &fault.nodes,
                    detail: &fault.detail,
                })
                .collect(),
            nemesis: analysis
                .nemesis
                .iter()
                .map(|event| NemesisData {
                    time: micros(event.time),
                    f: &event.f,
                    nodes: &event.nodes,
                    starts: event.starts,
                    stops: event.stops,
                })
                .collect(),
            nodes: analysis
                .node_spans
                .iter()
                .map(|(name, spans)| NodeRow {
                    name,
                    spans: spans
                        .iter()
                        .map(|span| SpanData {
                            start: micros(span.start),
                            end: micros(span.end),
                            up: span.up,
                            role: span.role.as_deref(),
                            term: span.term,
                            leader: span.leader.as_deref(),
                        })
                        .collect(),
                    membership: standings(&analysis.configurations, name)
                        .iter()
                        .map(|span| StandingData {
                            start: micros(span.start),
                            end: micros(span.end),
                            standing: span.standing,
                        })
                        .collect(),
                })
                .collect(),
            configurations: analysis
                .configurations
                .iter()
                .map(|span| ConfigurationData {
                    start: micros(span.start),
                    end: micros(span.end),
                    voters: &span.configuration.voters,
                    outgoing: &span.configuration.outgoing,
                    learners: &span.configuration.learners,
                })
                .collect(),
            clocks: analysis
                .clocks
                .iter()
                .map(|(name, points)| ClockRow {
                    name,
                    points: points
                        .iter()
                        .map(|point| ClockPointData {
                            time: micros(point.time),
                            offset_ms: point.offset_ms,
                            rate: point.rate,
                            observed_ms: point.observed_ms,
                        })
                        .collect(),
                })
                .collect(),
            counterexamples: results
                .linearizability
                .iter()
                .flat_map(|check| {
                    let model = check.model.name();
                    check
                        .counterexamples
                        .iter()
                        .map(move |c| counterexample(model, c))
                })
                .collect(),
            lost_writes: results.lost_writes.as_ref(),
            replicas: results.replicas.as_ref(),
            agreement: results.agreement.as_ref(),
            healing: results.healing.as_ref(),
            crashes: &results.crashes,
            stalls: &results.stalls,
            stale_leaders: &results.stale_leaders,
            two_leaders: &results.two_leaders,
            detection: results.detection.as_ref(),
            recovery: &results.recovery,
            leaders: results
                .leaders
                .iter()
                .map(|change| LeaderData {
                    time: micros(change.time),
                    from: change.from.as_deref(),
                    to: change.to.as_deref(),
                    fault: change.fault.as_ref().map(|fault| fault.name()),
                    fault_time: change.fault.as_ref().map(|fault| micros(fault.time)),
                })
                .collect(),
        }
    }
}

fn run_info<'h>(test: &'h TestRecord, dir: &Path) -> RunInfo<'h> {
    RunInfo {
        name: &test.options.name,
        dir: dir.display().to_string(),
        started: &test.started,
        workload: &test.options.workload,
        nemesis: &test.options.nemesis,
        backend: &test.partition_backend_used,
        nodes: test.nodes.iter().map(|node| node.name.as_str()).collect(),
        concurrency: test.options.concurrency,
        time_limit_s: test.options.time_limit.as_secs_f64(),
        seed: test.options.seed.to_string(),
        bugs: &test.options.bugs,
        replay: &test.replay,
        hosts: (test.nodes.iter())
            .filter_map(|node| {
                let host = node.host.as_ref()?;
                Some(HostInfo {
                    node: &node.name,
                    ssh: &host.ssh,
                    clock_offset_ms: host.clock_offset_ms,
                    clock_round_trip_ms: host.clock_round_trip_ms,
                })
            })
            .collect(),
    }
}

fn check_summary(check: &CheckResult) -> CheckSummary {
    let keys_with = |verdict| check.keys.iter().filter(|k| k.valid == verdict).count();
    CheckSummary {
        model: check.model.name(),
        valid: check.valid.name(),
        operations: check.operations,
        keys: check.keys.len(),
        keys_invalid: keys_with(Verdict::Invalid),
        keys_unknown: keys_with(Verdict::Unknown),
        stopped: check.stopped,
        seconds: check.seconds,
    }
}

fn counts(counts: &TypeCounts) -> Counts {
    Counts {
        ok: counts.ok,
        fail: counts.fail,
        info: counts.info,
        pending: counts.pending,
    }
}

fn summary_numbers(summary: &Summary, analysis: &Analysis) -> SummaryNumbers {
    let millis = |d: std::time::Duration| d.as_secs_f64() * 1_000.0;
    let mut nemesis_events = BTreeMap::new();
    for event in &analysis.nemesis {
        *nemesis_events.entry(event.f.clone()).or_default() += 1;
    }
    SummaryNumbers {
        duration_s: summary.duration.as_secs_f64(),
        total: counts(&summary.total),
        by_function: summary
            .by_function
            .iter()
            .map(|(f, c)| (f.clone(), counts(c)))
            .collect(),
        errors: summary.errors.clone(),
        ok_per_second: summary.ok_per_second,
        latency_ms: summary.ok_latency.map(|l| LatencyMillis {
            p50: millis(l.p50),
            p99: millis(l.p99),
            max: millis(l.max),
        }),
        nemesis_events,
    }
}

fn counterexample<'h>(model: &'static str, example: &'h Counterexample) -> CounterexampleData<'h> {
    CounterexampleData {
        model,
        key: example.key.as_deref(),
        operations: example
            .operations
            .iter()
            .map(|op: &'h Operation| CounterexampleOp {
                id: op.id,
                process: op.process,
                f: &op.f,
                value: &op.value,
                call: micros(op.call),
                ret: op.return_time.map(micros),
                outcome: op.outcome,
            })
            .collect(),
        prefix: &example.prefix,
        state: &example.state,
        rejected: &example.rejected,
    }
}

/// Each value minus the one before it (the first minus 0).
fn differences(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut previous = 0;
    values
        .map(|value| {
            let difference = value - previous;
            previous = value;
            difference
        })
        .collect()
}

/// Strings by their place in a table of the distinct ones.
#[derive(Default)]
struct Table<'h> {
    names: Vec<&'h str>,
    places: HashMap<&'h str, u32>,
}

impl<'h> Table<'h> {
    fn place(&mut self, name: &'h str) -> u32 {
        *self.places.entry(name).or_insert_with(|| {
            self.names.push(name);
            (self.names.len() - 1) as u32
        })
    }

    /// The place of `name`, or -1 for none.
    fn place_or_none(&mut self, name: Option<&'h str>) -> i64 {
        name.map_or(-1, |name| i64::from(self.place(name)))
    }
}

impl<'h> OpColumns<'h> {
    fn of(ops: &[TimelineOp<'h>]) -> OpColumns<'h> {
        let mut fs = Table::default();
        let mut keys = Table::default();
        let mut errors = Table::default();
        let mut nodes = Table::default();
        let mut columns = OpColumns {
            id: differences(ops.iter().map(|op| op.id as i64)),
            start: differences(ops.iter().map(|op| micros(op.start) as i64)),
            ..OpColumns::default()
        };
        for op in ops {
            columns.process.push(op.process);
            columns.f.push(fs.place(op.f));
            columns.key.push(keys.place_or_none(op.key));
            // Rounded per op, not as a difference of rounded times, so a 900 ns op is 0 µs.
            columns
                .latency
                .push(op.latency().map_or(-1, |latency| micros(latency) as i64));
            columns.ending.push(op.ending.code());
            columns.value.push(op.value);
            columns.error.push(errors.place_or_none(op.error));
            columns.node.push(nodes.place_or_none(op.node));
        }
        columns.fs = fs.names;
        columns.keys = keys.names;
        columns.errors = errors.names;
        columns.nodes = nodes.names;
        columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::operations::pair;
    use faultline_history::History;

    #[test]
    fn operations_become_columns_with_tables_and_differences() {
        let history = History::from_jsonl(
            r#"{"index":0,"time":1000000,"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"index":1,"time":1500000,"process":1,"type":"invoke","f":"read","key":"b","value":null}
{"index":2,"time":2000000,"process":0,"type":"ok","f":"write","key":"a","value":1,"node":"n1"}
{"index":3,"time":2600000,"process":1,"type":"info","f":"read","key":"b","value":null,"error":"timeout"}
{"index":4,"time":3000000,"process":0,"type":"invoke","f":"read","key":"a","value":null}
"#,
        )
        .unwrap();
        let columns = OpColumns::of(&pair(&history));
        assert_eq!(columns.id, [0, 1, 3]);
        assert_eq!(columns.start, [1000, 500, 1500], "µs, as differences");
        assert_eq!(columns.latency, [1000, 1100, -1]);
        assert_eq!(columns.ending, [0, 2, 3]);
        assert_eq!(
            (columns.fs, columns.f),
            (vec!["write", "read"], vec![0, 1, 1])
        );
        assert_eq!((columns.keys, columns.key), (vec!["a", "b"], vec![0, 1, 0]));
        assert_eq!(
            (columns.errors, columns.error),
            (vec!["timeout"], vec![-1, 0, -1])
        );
        assert_eq!((columns.nodes, columns.node), (vec!["n1"], vec![0, -1, -1]));
    }

    #[test]
    fn each_nodes_host_and_clock_offset_reach_the_page() {
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid");
        let mut test = crate::store::RunDir::at(fixture.clone())
            .read_test()
            .unwrap();
        assert!(
            run_info(&test, &fixture).hosts.is_empty(),
            "a run on this machine"
        );
        test.nodes[1].host = Some(crate::store::HostRecord {
            ssh: "root@h2".to_string(),
            dir: "/var/tmp/faultline/1-2/nodes/n2".to_string(),
            clock_offset_ms: -1.5,
            clock_round_trip_ms: 0.4,
        });
        let info = run_info(&test, &fixture);
        let [host] = &info.hosts[..] else {
            panic!("one host")
        };
        assert_eq!((host.node, host.ssh), ("n2", "root@h2"));
        assert_eq!(
            (host.clock_offset_ms, host.clock_round_trip_ms),
            (-1.5, 0.4)
        );
    }
}
