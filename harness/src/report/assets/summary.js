// The parts of the page that are text: the verdict, the summary, the lost-writes table.

const VERDICT_WORDS = { valid: "VALID", invalid: "INVALID", unknown: "UNKNOWN" };

/** Why the verdict is what it is, in a sentence. */
function verdictReason(raw) {
  const parts = [];
  for (const check of raw.checks) {
    if (check.keys_invalid) parts.push(check.keys_invalid + " of " + check.keys + " " + check.model + " keys not linearizable");
    if (check.keys_unknown) parts.push(check.keys_unknown + " " + check.model + " keys undecided" + (check.stopped ? " (" + check.stopped + ")" : ""));
  }
  const lost = raw.lost_writes;
  if (lost && (lost.lost || lost.unexpected)) parts.push(lost.lost + " lost and " + lost.unexpected + " unexpected writes");
  if (lost && lost.valid === "unknown") parts.push("some list keys had no final read");
  const replicas = raw.replicas;
  if (replicas && replicas.divergences.length) parts.push(replicas.divergences.length + " lists whose copies on the nodes diverge");
  const agreement = raw.agreement;
  if (agreement && agreement.first_mismatch) {
    const m = agreement.first_mismatch;
    parts.push("the nodes applied different entries (at log index " + m.index + ", " + m.first.node + " and " + m.then.node +
      " have different fingerprints, seen at " + formatTime(m.time / 1000) + ")");
  }
  for (const stall of raw.stalls || []) parts.push(stall.node + " led term " + stall.term + " for 5 s without committing past index " +
    stall.commit + " (seen at " + formatTime(stall.time / 1000) + ")");
  for (const stale of raw.stale_leaders || []) parts.push(stale.node + " led term " + stale.term + " with a log ending at index " +
    stale.last_log_index + ", below index " + stale.committed + " that " + stale.committed_by + " had committed in term " +
    stale.committed_term + " (seen at " + formatTime(stale.time / 1000) + ")");
  for (const two of raw.two_leaders || []) parts.push(two.first + " and " + two.second + " both led term " + two.term +
    " (seen at " + formatTime(two.time / 1000) + ")");
  for (const crash of raw.crashes) parts.push(crash.node + " crashed at " + formatTime(crash.time / 1000) + " (" + crash.last_error + ")");
  if (raw.healing && !raw.healing.recovered) parts.push("the cluster did not take a write after every fault was healed");
  if (raw.detection) parts.push("first seen " + detectionWhen(raw) + " (" + raw.detection.anomaly + ")");
  if (!parts.length || (parts.length === 1 && raw.detection)) {
    const keys = raw.checks.reduce((sum, c) => sum + c.keys, 0);
    return "Every one of " + formatCount(keys) + " keys is linearizable" + (lost ? ", and no acknowledged write was lost." : ".");
  }
  return parts.join("; ") + ".";
}

/** The operation that showed the first anomaly, as "#812", or null. */
function detectionOp(detection) {
  return detection.operation !== undefined && detection.operation !== null ? "#" + detection.operation : null;
}

/** When the first anomaly was seen: "4.2 s into the run", or "at operation #812" in a history without times. */
function detectionWhen(raw) {
  const d = raw.detection;
  if (untimed(raw)) return detectionOp(d) ? "at operation " + detectionOp(d) : "in the history";
  return d.seconds.toFixed(1) + " s into the " + (raw.run ? "run" : "history");
}

/** What the page is the report of: a run, or a history file checked alone. */
function subjectLine(raw) {
  if (raw.run) return raw.run.name + " · started " + raw.run.started + " · " + raw.run.dir;
  return raw.file.path + " · " + raw.file.format + " · checked by faultline check";
}

function buildVerdict(header, raw) {
  header.className = "verdict " + raw.verdict;
  header.append(el("div", { class: "inner" },
    el("div", { class: "word", text: VERDICT_WORDS[raw.verdict] || raw.verdict }),
    el("div", { class: "why", text: verdictReason(raw) }),
    el("div", { class: "run", text: subjectLine(raw) })));
}

function countsRow(name, counts) {
  const total = counts.ok + counts.fail + counts.info + counts.pending;
  return el("tr", {},
    el("td", { text: name }),
    el("td", { class: "ok", text: formatCount(counts.ok) }),
    el("td", { class: "fail", text: formatCount(counts.fail) }),
    el("td", { class: "info", text: formatCount(counts.info + counts.pending) }),
    el("td", { text: formatCount(total) }));
}

/** Each node's host and its clock against the harness's when the run began. */
function hostsText(hosts) {
  const signed = (ms) => (ms >= 0 ? "+" : "") + ms.toFixed(2);
  return hosts.map((h) => h.node + " on " + h.ssh + ", clock " + signed(h.clock_offset_ms) +
    " ms (±" + (h.clock_round_trip_ms / 2).toFixed(2) + ")").join("; ");
}

/** The facts of the summary that only a run has: how it was run. */
function runFacts(run, s, fact, nemesis) {
  return [
    fact("Workload", run.workload),
    fact("Nemesis", run.nemesis + " (" + nemesis + ")"),
    fact("Partitions by", run.backend),
    fact("Nodes", run.nodes.length + ": " + run.nodes.join(", ")),
    ...(run.hosts.length ? [fact("Hosts", hostsText(run.hosts))] : []),
    fact("Clients", String(run.concurrency)),
    fact("Seed", el("code", { text: run.seed })),
    fact("Duration", s.duration_s.toFixed(1) + " s (time limit " + run.time_limit_s + " s)"),
  ];
}

/** The facts of the summary of a history checked alone: the file, and what it recorded. */
function fileFacts(file, s, fact, nemesis) {
  return [
    fact("History", el("code", { text: file.path })),
    fact("Format", file.format),
    fact("Faults", nemesis),
    file.untimed
      ? fact("Times", "none in the file: its events are drawn 1 ms apart, in the file's order")
      : fact("Duration", s.duration_s.toFixed(1) + " s"),
  ];
}

function buildSummary(section, raw) {
  const run = raw.run;
  const s = raw.summary;
  const fact = (name, value) => [el("dt", { text: name }), el("dd", {}, value)];
  const latency = s.latency_ms
    ? "p50 " + s.latency_ms.p50.toFixed(1) + " ms · p99 " + s.latency_ms.p99.toFixed(1) + " ms · max " + s.latency_ms.max.toFixed(1) + " ms"
    : "no successful operation";
  const nemesis = Object.entries(s.nemesis_events).map(([f, n]) => f + " " + n).join(", ") || "no faults";
  const errors = Object.entries(s.errors).sort((a, b) => b[1] - a[1]).map(([e, n]) => e + " " + formatCount(n)).join(", ");
  const timed = !untimed(raw);
  const facts = el("dl", { class: "facts" },
    ...(run ? runFacts(run, s, fact, nemesis) : fileFacts(raw.file, s, fact, nemesis)),
    timed ? fact("Throughput", formatCount(Math.round(s.ok_per_second)) + " ok ops/s") : [],
    timed ? fact("Latency (ok)", latency) : [],
    run && run.bugs.length ? fact("Bugs switched on", run.bugs.join(", ")) : [],
    raw.detection ? fact("First anomaly", (timed ? raw.detection.seconds.toFixed(1) + " s: " : "") + raw.detection.anomaly +
      (raw.detection.key ? " on " + raw.detection.key : "") +
      (detectionOp(raw.detection) ? " (" + detectionOp(raw.detection) + ")" : "")) : [],
    raw.recovery.p50 !== null && raw.recovery.p50 !== undefined
      ? fact("Writes back after a fault", "p50 " + raw.recovery.p50.toFixed(2) + " s · p99 " + raw.recovery.p99.toFixed(2) +
        " s · max " + raw.recovery.max.toFixed(2) + " s") : [],
    errors ? fact("Errors", errors) : []);

  const operations = el("table", {},
    el("thead", {}, el("tr", {}, ["operations", "ok", "fail", "info", "total"].map((h) => el("th", { text: h })))),
    el("tbody", {}, Object.entries(s.by_function).map(([f, counts]) => countsRow(f, counts)), countsRow("all", s.total)));
  const checks = el("table", {},
    el("thead", {}, el("tr", {}, ["check", "verdict", "operations", "keys", "invalid", "undecided", "time"].map((h) => el("th", { text: h })))),
    el("tbody", {}, raw.checks.map((c) => el("tr", {},
      el("td", { text: "linearizability, " + c.model }),
      el("td", {}, el("span", { class: "badge " + c.valid, text: c.valid })),
      el("td", { text: formatCount(c.operations) }),
      el("td", { text: formatCount(c.keys) }),
      el("td", { text: formatCount(c.keys_invalid) }),
      el("td", { text: formatCount(c.keys_unknown) + (c.stopped ? " (" + c.stopped + ")" : "") }),
      el("td", { text: c.seconds.toFixed(2) + " s" }))),
      raw.lost_writes ? el("tr", {},
        el("td", { text: "lost writes" }),
        el("td", {}, el("span", { class: "badge " + verdictName(raw.lost_writes.valid), text: verdictName(raw.lost_writes.valid) })),
        el("td", { text: formatCount(raw.lost_writes.attempted) + " elements" }),
        el("td", { text: formatCount(raw.lost_writes.keys.length) }),
        el("td", { text: formatCount(raw.lost_writes.lost + raw.lost_writes.unexpected) }),
        el("td", { text: "" }), el("td", { text: "" })) : null,
      raw.replicas ? el("tr", {},
        el("td", { text: "replicas agree" }),
        el("td", {}, el("span", { class: "badge " + verdictName(raw.replicas.valid), text: verdictName(raw.replicas.valid) })),
        el("td", { text: formatCount(raw.replicas.copies) + " copies" }),
        el("td", { text: formatCount(raw.replicas.keys) }),
        el("td", { text: formatCount(raw.replicas.divergences.length) }),
        el("td", { text: "" }), el("td", { text: "" })) : null,
      raw.agreement ? el("tr", {},
        el("td", { text: "replicas applied the same log" }),
        el("td", {}, el("span", { class: "badge " + verdictName(raw.agreement.valid), text: verdictName(raw.agreement.valid) })),
        el("td", { text: formatCount(raw.agreement.compared) + " checkpoints" }),
        el("td", { text: "" }),
        el("td", { text: formatCount(raw.agreement.mismatched) }),
        el("td", { text: "" }), el("td", { text: "" })) : null,
      raw.healing ? el("tr", {},
        el("td", { text: "recovered after healing" }),
        el("td", {}, el("span", { class: "badge " + (raw.healing.recovered ? "valid" : "invalid"), text: raw.healing.recovered ? "valid" : "invalid" })),
        el("td", { text: raw.healing.recovered ? "a write in " + raw.healing.seconds.toFixed(2) + " s" : raw.healing.reason || "no write" }),
        el("td", { text: "" }), el("td", { text: "" }), el("td", { text: "" }), el("td", { text: "" })) : null));

  section.append(el("div", { class: "summary-grid" },
    facts,
    el("div", {}, operations, el("div", { style: "height:12px" }), checks),
    run ? replay(run) : []));
}

/** The command that replays a run, with a button that copies it. */
function replay(run) {
  const copy = el("button", { type: "button", text: "Copy" });
  copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(run.replay));
  return el("div", { class: "replay" },
    el("div", { class: "legend" }, "Replay this run (same seed, same faults and operations)", copy),
    el("pre", { text: run.replay }));
}

/** A verdict as the checker writes it (true, false or "unknown") as a word. */
function verdictName(valid) {
  return valid === true ? "valid" : valid === false ? "invalid" : "unknown";
}

/** Elements as chips "value (#op, #op)", the first few shown and a count of the rest. */
function elements(list, kind) {
  const shown = list.slice(0, 12).map((e) =>
    el("span", { class: "element " + kind, title: "operations " + e.ops.map((id) => "#" + id).join(", ") },
      formatValue(e.value, 30) + " (" + e.ops.map((id) => "#" + id).slice(0, 3).join(", ") + (e.ops.length > 3 ? ", …" : "") + ")"));
  if (list.length > 12) shown.push(el("span", { text: "+" + (list.length - 12) + " more" }));
  return el("div", { class: "elements" }, shown);
}

function buildLostWrites(section, raw) {
  const lost = raw.lost_writes;
  if (!lost) return;
  section.hidden = false;
  section.append(el("p", {}, "Every acknowledged append must be in the final read of its key. ",
    el("b", { text: formatCount(lost.lost) + " lost" }), ", ",
    el("b", { text: formatCount(lost.unexpected) + " unexpected" }), ", " +
    formatCount(lost.recovered) + " recovered (indeterminate appends that did happen), of " +
    formatCount(lost.acknowledged) + " acknowledged and " + formatCount(lost.attempted) + " attempted elements over " +
    formatCount(lost.keys.length) + " keys."));
  const rows = lost.keys.filter((k) => k.lost.length || k.unexpected.length || k.recovered.length || k.valid !== true);
  if (!rows.length) return;
  section.append(el("table", {},
    el("thead", {}, el("tr", {}, ["key", "verdict", "final read", "acknowledged", "lost", "unexpected", "recovered"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((k) => el("tr", {},
      el("td", {}, el("code", { text: k.key === null ? "(no key)" : k.key })),
      el("td", {}, el("span", { class: "badge " + verdictName(k.valid), text: verdictName(k.valid) })),
      el("td", { text: k.final_read === null ? "none" : "#" + k.final_read }),
      el("td", { text: formatCount(k.acknowledged) }),
      el("td", {}, elements(k.lost, "lost")),
      el("td", {}, elements(k.unexpected, "unexpected")),
      el("td", {}, elements(k.recovered, "recovered")))))));
}

/** A list's copy as "n2 at 4.20 s" or "read #812 at 4.20 s". */
function copyPlace(copy) {
  const where = copy.node ? copy.node : copy.operation !== undefined ? "read #" + copy.operation : "a read";
  return where + " at " + formatTime(copy.time / 1000);
}

function buildReplicas(section, raw) {
  const replicas = raw.replicas;
  if (!replicas || !replicas.divergences.length) return;
  section.hidden = false;
  section.append(el("p", {}, "Every node's own copy of a list, and every client's read of it, must be a prefix of one " +
    "sequence of appends: replicas apply one log in one order, so a copy may lag but never differ. These lists have two " +
    "copies neither of which is a prefix of the other: two nodes applied different entries at one place of the log."));
  section.append(el("table", {},
    el("thead", {}, el("tr", {}, ["key", "diverging copy", "value", "contradicts", "value"].map((h) => el("th", { text: h })))),
    el("tbody", {}, replicas.divergences.map((d) => el("tr", {},
      el("td", {}, el("code", { text: d.key })),
      el("td", { text: copyPlace(d.diverging) }),
      el("td", {}, el("code", { text: formatValue(d.diverging.value, 80) })),
      el("td", { text: copyPlace(d.agreed) }),
      el("td", {}, el("code", { text: formatValue(d.agreed.value, 80) })))))));
}

function buildLeaders(section, raw) {
  const changes = raw.leaders || [];
  if (!changes.length) return;
  section.hidden = false;
  section.append(el("p", {}, "Who led when, as the nodes' /status said: the answering node that says it leads in the " +
    "highest term (an old leader cut off from the others, still leading an older term, does not count). Each change is at " +
    "the first poll that saw it, beside the last fault started (else healed) since the change before. Marked on the nodes' " +
    "roles below."));
  section.append(el("table", {},
    el("thead", {}, el("tr", {}, ["at", "leader", "before", "after the fault"].map((h) => el("th", { text: h })))),
    el("tbody", {}, changes.map((change) => el("tr", {},
      el("td", { text: formatTime(change.time) }),
      el("td", { class: change.to === null ? "fail" : "", text: leaderName(change.to) }),
      el("td", { text: leaderName(change.from) }),
      el("td", { text: leaderFault(change) }))))));
}

function buildRecovery(section, raw) {
  const faults = raw.recovery.faults;
  if (!faults.length) return;
  section.hidden = false;
  const seconds = (s) => (s === null || s === undefined ? "never" : s.toFixed(2) + " s");
  section.append(el("p", {}, "For each fault, how long writes were unavailable: from its start to the first acknowledged " +
    "write invoked after it, and from its end to the first one after that. The recovery is the first if writes came back " +
    "while the fault was in force, else the second."));
  section.append(el("table", {},
    el("thead", {}, el("tr", {}, ["fault", "nodes", "from", "to", "after its start", "after its end", "recovery"].map((h) => el("th", { text: h })))),
    el("tbody", {}, faults.map((f) => el("tr", {},
      el("td", { text: f.fault.replace(/^start-/, "") }),
      el("td", { text: f.nodes.join(", ") }),
      el("td", { text: f.start.toFixed(2) + " s" }),
      el("td", { text: f.end === null ? "end" : f.end.toFixed(2) + " s" }),
      el("td", { text: seconds(f.after_start) }),
      el("td", { text: seconds(f.after_end) }),
      el("td", { class: f.recovery === null ? "fail" : "", text: seconds(f.recovery) }))))));
}
