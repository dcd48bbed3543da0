// Formatting and DOM helpers, and the colours every part of the page shares.
// Times in the page's data are microseconds since the test started.

const COLORS = {
  ok: "#1a9850",
  fail: "#d73027",
  info: "#f0961a",
  pending: "#f7c47e",
  kill: "rgba(200, 60, 60, 0.11)",
  pause: "rgba(120, 60, 160, 0.11)",
  partition: "rgba(50, 110, 180, 0.11)",
  slow: "rgba(190, 140, 20, 0.13)",
  lossy: "rgba(40, 150, 140, 0.12)",
  clock: "rgba(90, 140, 40, 0.12)",
  killSolid: "#c83c3c",
  pauseSolid: "#783ca0",
  partitionSolid: "#326eb4",
  slowSolid: "#be8c14",
  lossySolid: "#28968c",
  clockSolid: "#5a8c28",
  grid: "#eceff2",
  axis: "#8c959f",
  text: "#1f2328",
  muted: "#5b636e",
};

// Ending codes of the operation columns.
const ENDING_NAMES = ["ok", "fail", "info", "pending"];

/** Creates an element with attributes (`class`, `text`, others as given) and children. */
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A time since the start: "12.345 s", with as many decimals as the zoom needs. */
function formatTime(micros, step) {
  const seconds = micros / 1e6;
  const decimals = step === undefined ? 3 : Math.max(0, Math.min(6, Math.ceil(-Math.log10(step / 1e6))));
  return seconds.toFixed(decimals) + " s";
}

/** A duration: "850 µs", "12.3 ms", "1.52 s". */
function formatDuration(micros) {
  if (micros < 1000) return Math.round(micros) + " µs";
  if (micros < 1e6) return (micros / 1000).toFixed(micros < 1e4 ? 2 : 1) + " ms";
  return (micros / 1e6).toFixed(2) + " s";
}

function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

/** A JSON value as short text; long lists are cut in the middle. */
function formatValue(value, limit) {
  const max = limit || 80;
  const text = value === undefined ? "" : JSON.stringify(value);
  if (text.length <= max) return text;
  return text.slice(0, Math.floor(max * 0.7)) + " … " + text.slice(text.length - Math.floor(max * 0.2));
}

/** A round step (1, 2 or 5 times a power of ten) of at least `span / count`. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const factor of [1, 2, 5, 10]) {
    if (factor * power >= raw) return factor * power;
  }
  return 10 * power;
}

/** A short label for an operation, as drawn inside its bar: "w 3", "r → 3", "cas 1→2". */
function opLabel(f, value, ending) {
  const v = formatValue(value, 24);
  switch (f) {
    case "read": return ending === 0 ? "r " + v : "r";
    case "write": return "w " + v;
    case "cas": return Array.isArray(value) && value.length === 2 ? "cas " + value[0] + "→" + value[1] : "cas " + v;
    case "append": return "a " + v;
    case "add": return "add " + v;
    default: return f + " " + v;
  }
}

/** A swatch and its label, for a legend. */
function legendItem(color, label) {
  return el("span", {}, el("span", { class: "swatch", style: "background:" + color }), label);
}

/** A fault's label: the nemesis's name for it and, when it hits nodes, which. */
function faultLabel(fault, separator) {
  const name = fault.name.replace(/^start-/, "");
  return fault.kind === "kill" || fault.kind === "pause" ? name + " " + fault.nodes.join(separator) : name;
}

/** A leader as a word: its name, or "none". */
function leaderName(node) {
  return node === null || node === undefined ? "none" : node;
}

/** The nemesis event before a change of leader, and how long before: "kill n1 at 2.900 s (400.0 ms before)". */
function leaderFault(change) {
  if (change.fault === null || change.fault === undefined) return "";
  return change.fault + " at " + formatTime(change.fault_time) + " (" + formatDuration(change.time - change.fault_time) + " before)";
}
