// Builds the page from its embedded data, section by section, then draws every chart once.
// `window.faultlineReport` tells a test (or a curious reader) that the page is drawn and
// how long that took.

function main() {
  const started = performance.now();
  const raw = JSON.parse(document.getElementById("report-data").textContent);
  const data = decode(raw);
  buildVerdict(document.getElementById("verdict"), raw);
  buildSummary(document.getElementById("summary"), raw);
  const view = new TimeView(0, data.end);
  const counterexamples = buildCounterexamples(document.getElementById("counterexamples"), data, view);
  buildLostWrites(document.getElementById("lost-writes"), raw);
  buildReplicas(document.getElementById("replicas"), raw);
  buildLeaders(document.getElementById("leaders"), raw);
  buildRecovery(document.getElementById("recovery"), raw);
  const charts = [
    buildTimeline(document.getElementById("timeline"), view, data),
    buildLatency(document.getElementById("latency"), view, data),
    buildRate(document.getElementById("rate"), view, data),
    buildNodes(document.getElementById("nodes"), view, data),
    buildClocks(document.getElementById("clocks"), view, data),
  ].filter(Boolean).concat(counterexamples);
  document.getElementById("footer").textContent = formatCount(data.ops.count) + " operations · written by faultline " +
    (raw.run ? "report" : "check") + " · no network needed: data, scripts and styles are in this file";

  const drawStarted = performance.now();
  for (const chart of charts) chart.draw();
  const finished = performance.now();
  window.addEventListener("resize", () => {
    view.redraw();
    for (const chart of counterexamples) chart.view.redraw();
  });
  window.faultlineReport = {
    operations: data.ops.count,
    // From navigation to the first complete drawing, and the parts of it this script took.
    firstRenderMs: finished,
    decodeMs: drawStarted - started,
    drawMs: finished - drawStarted,
    /** Redraws every chart over the time range [t0, t1] (µs) and says how long it took. */
    redrawMs(t0, t1) {
      view.set(t0, t1);
      const before = performance.now();
      const parts = {};
      for (const chart of charts) {
        const start = performance.now();
        chart.draw();
        const name = chart.constructor.name;
        parts[name] = (parts[name] || 0) + performance.now() - start;
      }
      this.lastRedraw = parts;
      return performance.now() - before;
    },
    /** How long each kind of chart took in the last `redrawMs`. */
    lastRedraw: {},
  };
  document.body.dataset.rendered = "true";
}

main();
