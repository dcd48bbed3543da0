//! The summary printed at the end of a run: it fits a terminal, verdict last.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use faultline_checker::{CheckResult, DivergenceResult, ListCopy, LostWritesResult, Verdict};
use faultline_history::Summary;
use faultline_workloads::FinalReads;

use crate::fingerprints::Agreement;
use crate::remote::UncleanHost;
use crate::results::{LeaderChange, RunResults};
use crate::store::{RunDir, TestOptions};
use crate::wording::{key_counts, plural, shout};

/// Everything the summary shows.
pub struct Printed<'a> {
    pub options: &'a TestOptions,
    /// The partition backend actually used (`auto` resolved).
    pub backend: String,
    pub summary: &'a Summary,
    pub nemesis_events: BTreeMap<String, u64>,
    pub results: &'a RunResults,
    pub final_reads: Option<&'a FinalReads>,
    pub check_time: Duration,
    pub run_dir: &'a RunDir,
    /// With `--hosts`: the hosts that could not be cleaned at the end, and why.
    pub unclean_hosts: &'a [UncleanHost],
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The summary as text.
pub fn render(p: &Printed) -> String {
    let mut out = String::new();
    let s = p.summary;
    let o = p.options;
    let _ = writeln!(
        out,
        "\n{}: {} nodes, workload {}, nemesis {} ({}), {:.1} s, seed {}",
        o.name,
        o.nodes,
        o.workload,
        o.nemesis,
        p.backend,
        s.duration.as_secs_f64(),
        o.seed
    );
    for fault in &o.left_out {
        let _ = writeln!(out, "  left out     {fault}");
    }
    for host in p.unclean_hosts {
        let _ = writeln!(
            out,
            "  NOT CLEANED  {}: {} (remove what runs there by hand)",
            host.host, host.reason
        );
    }
    if !o.bugs.is_empty() {
        let _ = writeln!(out, "  bugs switched on: {}", o.bugs.join(", "));
    }
    let _ = writeln!(
        out,
        "  operations   {} ok, {} fail, {} info{}",
        s.total.ok,
        s.total.fail,
        s.total.info + s.total.pending,
        if s.by_function.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = s
                .by_function
                .iter()
                .map(|(f, counts)| format!("{f} {}", counts.total()))
                .collect();
            format!("   ({})", parts.join(", "))
        }
    );
    let latency = match &s.ok_latency {
        Some(l) => format!(
            "p50 {}, p99 {}, max {}",
            millis(l.p50),
            millis(l.p99),
            millis(l.max)
        ),
        None => "no successful operation".into(),
    };
    let _ = writeln!(
        out,
        "  throughput   {:.0} ok/s   latency {latency}",
        s.ok_per_second
    );
    if !s.errors.is_empty() {
        let mut errors: Vec<(&String, &u64)> = s.errors.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1));
        let parts: Vec<String> = errors
            .iter()
            .take(4)
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        let _ = writeln!(out, "  errors       {}", parts.join(", "));
    }
    let faults: Vec<String> = p
        .nemesis_events
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  nemesis      {}",
        if faults.is_empty() {
            "no faults".into()
        } else {
            faults.join(", ")
        }
    );
    write_leaders(&mut out, &p.results.leaders);
    for result in &p.results.linearizability {
        let _ = writeln!(
            out,
            "  {:<12} {}: {} over {} ({:.2} s)",
            result.model,
            shout(result.valid),
            plural(result.operations, "operation"),
            plural(result.keys.len(), "key"),
            result.seconds
        );
        if result.valid != Verdict::Valid {
            write_invalid_keys(&mut out, result);
        }
    }
    if let Some(reason) = &p.results.reason {
        let _ = writeln!(out, "  history      {}: {reason}", shout(Verdict::Unknown));
    }
    if let Some(lost) = &p.results.lost_writes {
        write_lost_writes(&mut out, lost);
    }
    if let Some(reads) = p.final_reads.filter(|r| !r.unread.is_empty()) {
        let _ = writeln!(out, "  final reads failed for: {}", reads.unread.join(", "));
    }
    write_run_findings(&mut out, p.results);
    write_recovery(&mut out, p.results);
    if let Some(detection) = &p.results.detection {
        let place = match (&detection.key, detection.operation) {
            (Some(key), Some(op)) => format!(" ({key}, #{op})"),
            (None, Some(op)) => format!(" (#{op})"),
            (Some(key), None) => format!(" ({key})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "  detected     after {:.1} s: {}{place}",
            detection.seconds, detection.anomaly
        );
    }
    let _ = writeln!(out, "  checked in {:.2} s", p.check_time.as_secs_f64());
    let _ = writeln!(out, "  replay: {}", o.replay_command());
    let _ = writeln!(out, "  stored in {}", p.run_dir.path.display());
    let _ = writeln!(out, "verdict: {}", shout(p.results.valid));
    out
}

/// Counterexamples shown, one line each; the report and `faultline check` show them whole.
const KEYS_SHOWN: usize = 3;
/// Changes of leader shown on their line; the report lists them all.
const LEADERS_SHOWN: usize = 3;
/// Longest text shown for a value or a reason in a line.
const TEXT_CHARS: usize = 72;

/// Cuts the middle out of a long text, where a list's elements are least telling.
fn shorten(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= TEXT_CHARS {
        return text.to_string();
    }
    let head: String = chars[..TEXT_CHARS * 2 / 3].iter().collect();
    let tail: String = chars[chars.len() - TEXT_CHARS / 3..].iter().collect();
    format!("{head}...{tail}")
}

/// Who led when, on one line: each leader from when it was first seen leading, and the
/// fault before the change when there was one; the first few of a long run's.
fn write_leaders(out: &mut String, changes: &[LeaderChange]) {
    if changes.is_empty() {
        return;
    }
    let mut shown: Vec<String> = changes
        .iter()
        .take(LEADERS_SHOWN)
        .map(|change| {
            let leader = change.to.as_deref().unwrap_or("no leader");
            let after = match &change.fault {
                Some(fault) => format!(
                    " (after {} at {:.2} s)",
                    fault.name(),
                    fault.time as f64 / 1e9
                ),
                None => String::new(),
            };
            format!("{leader} from {:.2} s{after}", change.time as f64 / 1e9)
        })
        .collect();
    if changes.len() > LEADERS_SHOWN {
        shown.push(format!(
            "and {}",
            plural(changes.len() - LEADERS_SHOWN, "more change")
        ));
    }
    let _ = writeln!(out, "  leaders      {}", shown.join(", "));
}

/// Keys by verdict, then one line per invalid key (the earliest found): where its history
/// stops fitting.
fn write_invalid_keys(out: &mut String, result: &CheckResult) {
    let _ = writeln!(out, "               {}", key_counts(result));
    for example in result.counterexamples.iter().take(KEYS_SHOWN) {
        let key = example.key.as_deref().unwrap_or("(no key)");
        let reason = example
            .rejected
            .first()
            .map(|r| format!("#{}: {}", r.id, r.reason))
            .unwrap_or_else(|| "no operation fits".into());
        let _ = writeln!(
            out,
            "               {key}: after {} the state is {}; {}",
            plural(example.prefix.len(), "operation"),
            shorten(&example.state.to_string()),
            shorten(&reason)
        );
    }
    let more =
        (result.counterexamples.len() + result.counterexamples_left_out).saturating_sub(KEYS_SHOWN);
    if more > 0 {
        let _ = writeln!(out, "               ... and {more} more invalid keys");
    }
}

/// The lost-writes counts, and the first few lost or unexpected elements.
fn write_lost_writes(out: &mut String, lost: &LostWritesResult) {
    let _ = writeln!(
        out,
        "  lost writes  {}: {} lost, {} unexpected, {} recovered, of {} acknowledged appends",
        shout(lost.valid),
        lost.lost,
        lost.unexpected,
        lost.recovered,
        lost.acknowledged
    );
    let problems = lost.keys.iter().flat_map(|key| {
        let name = key.key.clone().unwrap_or_default();
        let lost = key.lost.iter().map(move |e| ("lost", e));
        let unexpected = key.unexpected.iter().map(move |e| ("unexpected", e));
        lost.chain(unexpected)
            .map(move |(what, e)| (name.clone(), what, e))
    });
    for (key, what, element) in problems.take(KEYS_SHOWN) {
        let ops: Vec<String> = element.ops.iter().map(|id| format!("#{id}")).collect();
        let _ = writeln!(
            out,
            "               {key}: {} {what} ({})",
            element.value,
            ops.join(", ")
        );
    }
    let unjudged: Vec<&str> = lost
        .keys
        .iter()
        .filter(|key| key.final_read.is_none() && key.attempted > 0)
        .filter_map(|key| key.key.as_deref())
        .collect();
    if !unjudged.is_empty() {
        let _ = writeln!(
            out,
            "               no final read of: {}",
            unjudged.join(", ")
        );
    }
}

/// How fast writes came back after the faults, and whether the cluster recovered once they
/// were all healed.
fn write_recovery(out: &mut String, results: &RunResults) {
    let recovery = &results.recovery;
    if let (Some(p50), Some(p99), Some(max)) = (recovery.p50, recovery.p99, recovery.max) {
        let measured = recovery
            .faults
            .iter()
            .filter(|fault| fault.recovery.is_some())
            .count();
        let never = if recovery.unrecovered > 0 {
            format!("; no write after {}", plural(recovery.unrecovered, "fault"))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  recovery     writes back in p50 {p50:.2} s, p99 {p99:.2} s, max {max:.2} s \
             after {}{never}",
            plural(measured, "fault")
        );
    }
    write_healing(out, results);
}

/// Whether the cluster took a write once every fault was healed, if the run asked.
pub(crate) fn write_healing(out: &mut String, results: &RunResults) {
    match &results.healing {
        Some(healing) if healing.recovered => {
            let _ = writeln!(
                out,
                "  healed       a write was acknowledged {:.2} s after every fault was healed",
                healing.seconds
            );
        }
        Some(healing) => {
            let _ = writeln!(
                out,
                "  healed       DID NOT RECOVER within {:.0} s of healing every fault: {}",
                healing.seconds,
                healing
                    .reason
                    .as_deref()
                    .unwrap_or("no write was acknowledged")
            );
        }
        None => {}
    }
}

/// What only a run sees beside its history, one line each: the replicas' copies, the
/// fingerprints, and nodes that crashed, stalled, led without committed entries or shared a
/// term. `faultline check` prints the same lines for a run's history.
pub(crate) fn write_run_findings(out: &mut String, results: &RunResults) {
    if let Some(replicas) = &results.replicas {
        write_replicas(out, replicas);
    }
    if let Some(agreement) = &results.agreement {
        write_agreement(out, agreement);
    }
    for crash in &results.crashes {
        let _ = writeln!(
            out,
            "  CRASHED      {} at {:.1} s ({}): {}",
            crash.node,
            crash.time as f64 / 1e9,
            crash.status,
            shorten(&crash.last_error)
        );
    }
    for stall in &results.stalls {
        let _ = writeln!(
            out,
            "  STALLED      {} led term {} for 5 s without committing past index {} (log at {}), at {:.1} s",
            stall.node,
            stall.term,
            stall.commit,
            stall.last_log_index,
            stall.time as f64 / 1e9,
        );
    }
    for stale in &results.stale_leaders {
        let _ = writeln!(
            out,
            "  STALE LEADER {} led term {} with a log ending at index {}, below index {} that {} had committed in term {}, at {:.1} s",
            stale.node,
            stale.term,
            stale.last_log_index,
            stale.committed,
            stale.committed_by,
            stale.committed_term,
            stale.time as f64 / 1e9,
        );
    }
    for two in &results.two_leaders {
        let _ = writeln!(
            out,
            "  TWO LEADERS  {} and {} both led term {}, at {:.1} s",
            two.first,
            two.second,
            two.term,
            two.time as f64 / 1e9,
        );
    }
}

/// Whether the nodes' fingerprints of what they applied agree, and the first index where
/// they did not.
fn write_agreement(out: &mut String, agreement: &Agreement) {
    let verdict = match &agreement.first_mismatch {
        None => "agree".to_string(),
        Some(_) => format!(
            "differ at {}",
            plural(agreement.mismatched as usize, "checkpoint")
        ),
    };
    let _ = writeln!(
        out,
        "  applied      {}: fingerprints at {} of the log, compared across nodes, {verdict}",
        shout(agreement.valid),
        plural(agreement.compared as usize, "checkpoint"),
    );
    if let Some(first) = &agreement.first_mismatch {
        let _ = writeln!(
            out,
            "               index {}: {} applied {}, but {} applied {} (seen at {:.2} s)",
            first.index,
            first.first.node,
            first.first.fingerprint,
            first.then.node,
            first.then.fingerprint,
            first.time as f64 / 1e9,
        );
    }
}

/// Whether every copy of every list agrees, and the first divergences.
fn write_replicas(out: &mut String, replicas: &DivergenceResult) {
    let copies = match replicas.copies {
        1 => "1 copy".to_string(),
        n => format!("{n} copies"),
    };
    let verdict = if replicas.valid == Verdict::Valid {
        "agree".to_string()
    } else {
        format!(
            "compared; {} diverge",
            plural(replicas.divergences.len(), "list")
        )
    };
    let _ = writeln!(
        out,
        "  replicas     {}: {copies} of {} (each node's own, and the clients' reads) {verdict}",
        shout(replicas.valid),
        plural(replicas.keys, "list"),
    );
    let place = |copy: &ListCopy| match (&copy.node, copy.operation) {
        (Some(node), _) => format!("on {node}"),
        (None, Some(op)) => format!("read by #{op}"),
        (None, None) => "read".to_string(),
    };
    for found in replicas.divergences.iter().take(KEYS_SHOWN) {
        let (agreed, diverging) = (&found.agreed, &found.diverging);
        let _ = writeln!(
            out,
            "               {}: {} at {:.2} s is {}, but {} at {:.2} s was {}",
            found.key,
            place(diverging),
            diverging.time as f64 / 1e9,
            shorten(&serde_json::Value::from(diverging.value.clone()).to_string()),
            place(agreed),
            agreed.time as f64 / 1e9,
            shorten(&serde_json::Value::from(agreed.value.clone()).to_string()),
        );
    }
    if replicas.divergences.len() > KEYS_SHOWN {
        let _ = writeln!(
            out,
            "               ... and {} more diverging lists",
            replicas.divergences.len() - KEYS_SHOWN
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use faultline_history::History;
    use serde_json::json;

    use super::*;

    const S: u64 = 1_000_000_000;

    /// The summary of the committed fixture run, with `leaders` for its changes of leader.
    fn render_fixture(leaders: Vec<LeaderChange>) -> String {
        let run =
            RunDir::at(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid"));
        let test = run.read_test().unwrap();
        let mut results = run.read_results().unwrap();
        results.leaders = leaders;
        let history =
            History::from_jsonl(&std::fs::read_to_string(run.history()).unwrap()).unwrap();
        render(&Printed {
            options: &test.options,
            backend: "iptables".into(),
            summary: &Summary::of(&history),
            nemesis_events: BTreeMap::from([("kill".to_string(), 1)]),
            results: &results,
            final_reads: None,
            check_time: Duration::from_millis(20),
            run_dir: &run,
            unclean_hosts: &[],
        })
    }

    fn change(ms: u64, from: Option<&str>, to: Option<&str>) -> LeaderChange {
        LeaderChange {
            time: ms * S / 1000,
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            fault: None,
        }
    }

    /// `change`, after the nemesis event `f` on `nodes` at `ms`, as results.json says it.
    fn after(change: LeaderChange, ms: u64, f: &str, nodes: &[&str]) -> LeaderChange {
        let fault = json!({"time": ms * S / 1000, "f": f, "nodes": nodes});
        LeaderChange {
            fault: Some(serde_json::from_value(fault).unwrap()),
            ..change
        }
    }

    #[test]
    fn the_leaders_follow_the_faults_on_one_line_with_the_fault_before_each_change() {
        let text = render_fixture(vec![
            change(50, None, Some("n1")),
            after(change(350, Some("n1"), None), 300, "kill", &["n1"]),
            change(650, None, Some("n3")),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        let nemesis = lines
            .iter()
            .position(|line| line.starts_with("  nemesis"))
            .unwrap();
        assert_eq!(
            lines[nemesis + 1],
            "  leaders      n1 from 0.05 s, no leader from 0.35 s (after kill n1 at 0.30 s), \
             n3 from 0.65 s",
            "{text}"
        );
    }

    #[test]
    fn a_long_runs_leaders_are_the_first_few_and_a_count() {
        let mut leaders = vec![change(10, None, Some("n1"))];
        for second in 1..=9 {
            let (from, to) = if second % 2 == 1 {
                ("n1", "n2")
            } else {
                ("n2", "n1")
            };
            let moved = change(second * 1000 + 300, Some(from), Some(to));
            leaders.push(after(moved, second * 1000, "start-partition", &[]));
        }
        let text = render_fixture(leaders);
        let line = text
            .lines()
            .find(|line| line.starts_with("  leaders"))
            .unwrap();
        assert_eq!(
            line,
            "  leaders      n1 from 0.01 s, n2 from 1.30 s (after start-partition at 1.00 s), \
             n1 from 2.30 s (after start-partition at 2.00 s), and 7 more changes"
        );
    }

    #[test]
    fn a_run_without_leaders_has_no_leaders_line() {
        let text = render_fixture(Vec::new());
        assert!(
            !text.lines().any(|line| line.starts_with("  leaders")),
            "{text}"
        );
        assert!(text.contains("  nemesis      kill 1\n"), "{text}");
    }
}
