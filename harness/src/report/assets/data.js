// The page's data, decoded: the operation columns become typed arrays (times back from
// differences to absolute microseconds), with indexes the charts search.

/** Running sums of differences, as a Float64Array. */
function undifference(differences) {
  const out = new Float64Array(differences.length);
  let sum = 0;
  for (let i = 0; i < differences.length; i++) {
    sum += differences[i];
    out[i] = sum;
  }
  return out;
}

/** The first index in sorted `array` whose value is >= `value`. */
function lowerBound(array, value, from, to) {
  let lo = from === undefined ? 0 : from;
  let hi = to === undefined ? array.length : to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (array[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether the page's times are stand-ins: a history file checked alone that records none. */
function untimed(raw) {
  return !raw.run && raw.file.untimed;
}

/** Decodes the embedded data into what the charts draw. */
function decode(raw) {
  const columns = raw.ops;
  const count = columns.process.length;
  const ops = {
    count,
    id: undifference(columns.id),
    start: undifference(columns.start),
    end: new Float64Array(count),
    process: Float64Array.from(columns.process),
    f: Uint32Array.from(columns.f),
    key: Int32Array.from(columns.key),
    ending: Uint8Array.from(columns.ending),
    error: Int32Array.from(columns.error),
    node: Int32Array.from(columns.node),
    value: columns.value,
    fs: columns.fs,
    keys: columns.keys,
    errors: columns.errors,
    nodes: columns.nodes,
    // The longest completed operation: how far before a time range an operation that
    // overlaps it can start.
    maxLatency: 0,
    // Operations that never completed (drawn to the end of the run).
    open: [],
  };
  for (let i = 0; i < count; i++) {
    const latency = columns.latency[i];
    if (latency < 0) {
      ops.end[i] = raw.end;
      ops.open.push(i);
    } else {
      ops.end[i] = ops.start[i] + latency;
      if (latency > ops.maxLatency) ops.maxLatency = latency;
    }
  }

  // Each lane's operations, in order of invocation, for hover searches.
  const laneOfProcess = new Map();
  raw.lanes.forEach((processes, lane) => processes.forEach((p) => laneOfProcess.set(p, lane)));
  const lane = new Int32Array(count);
  const laneSizes = new Array(raw.lanes.length).fill(0);
  for (let i = 0; i < count; i++) {
    lane[i] = laneOfProcess.get(ops.process[i]);
    laneSizes[lane[i]]++;
  }
  const laneOps = laneSizes.map((size) => new Int32Array(size));
  const filled = new Array(raw.lanes.length).fill(0);
  for (let i = 0; i < count; i++) laneOps[lane[i]][filled[lane[i]]++] = i;
  ops.lane = lane;
  ops.laneOps = laneOps;
  ops.laneStarts = laneOps.map((indices) => Float64Array.from(indices, (i) => ops.start[i]));

  return {
    raw,
    ops,
    end: Math.max(raw.end, 1),
    latencyPoints: Int32Array.from(undifference(raw.latency_points)),
  };
}

/** Everything known of operation `i`, as lines for a tooltip. */
function describeOp(ops, i) {
  const ending = ops.ending[i];
  const lines = [
    ["op", "#" + ops.id[i] + " · process " + ops.process[i]],
    ["call", ops.fs[ops.f[i]] + (ops.key[i] >= 0 ? " " + ops.keys[ops.key[i]] : "")],
    [ending === 0 ? "result" : "value", formatValue(ops.value[i], 400)],
    ["outcome", ENDING_NAMES[ending] + (ops.error[i] >= 0 ? " (" + ops.errors[ops.error[i]] + ")" : "")],
    ["invoked", formatTime(ops.start[i])],
  ];
  if (ending !== 3) {
    lines.push(["completed", formatTime(ops.end[i]) + " · after " + formatDuration(ops.end[i] - ops.start[i])]);
  } else {
    lines.push(["completed", "never (in flight at the end)"]);
  }
  if (ops.node[i] >= 0) lines.push(["node", ops.nodes[ops.node[i]]]);
  return lines;
}
