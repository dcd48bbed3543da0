// The timeline: a row per client (its successive processes), each operation a bar from
// invocation to completion coloured by outcome, the nemesis on the top row, faults shaded
// across all rows. Only what is in view is drawn; bars narrower than two pixels are merged
// into one cell per pixel and row, showing the most severe outcome there. A view with more
// operations than it is worth visiting one by one (a long run, zoomed out) is drawn from a
// summary built once: each row cut into thin slices of time, each slice holding the most
// severe outcome that overlaps it. So half a million operations draw in a few milliseconds
// at any zoom.

// Slices of the summary, and how many operations in view make it worth using.
const SUMMARY_SLICES = 65536;
const SUMMARY_FROM_OPS = 20000;

// Severity of an ending in a merged cell (fail shows over info over pending over ok), and
// the colour of each severity.
const SEVERITY = [1, 4, 3, 2];
const SEVERITY_COLORS = [null, COLORS.ok, COLORS.pending, COLORS.info, COLORS.fail];
const ENDING_COLORS = [COLORS.ok, COLORS.fail, COLORS.info, COLORS.pending];

class Timeline extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { top: 4 });
    this.data = data;
    this.ops = data.ops;
    this.lanes = data.raw.lanes;
    this.rowHeight = Math.max(3, Math.min(22, Math.floor(520 / Math.max(1, this.lanes.length))));
    this.nemesisHeight = Math.max(this.rowHeight, 20);
    this.cells = new Uint8Array(0);
    this.sliceWidth = Math.max(1, data.end / SUMMARY_SLICES);
    this.summary = null;
  }

  /** The summary (see the top of this file), built when first needed. */
  slices() {
    if (this.summary) return this.summary;
    const ops = this.ops;
    const width = this.sliceWidth;
    const summary = new Uint8Array(this.lanes.length * SUMMARY_SLICES);
    for (let i = 0; i < ops.count; i++) {
      const severity = SEVERITY[ops.ending[i]];
      const row = ops.lane[i] * SUMMARY_SLICES;
      const first = Math.min(SUMMARY_SLICES - 1, Math.floor(ops.start[i] / width));
      const last = Math.min(SUMMARY_SLICES - 1, Math.floor(ops.end[i] / width));
      for (let b = row + first; b <= row + last; b++) if (summary[b] < severity) summary[b] = severity;
    }
    this.summary = summary;
    return summary;
  }

  /** Fills the cells of a view from the summary: each pixel the worst of its slices. */
  cellsFromSummary(cells, width, rows) {
    const summary = this.slices();
    const { t0, t1 } = this.view;
    const perPixel = (t1 - t0) / this.plotWidth;
    for (let x = 0; x < width; x++) {
      const from = Math.max(0, Math.floor((t0 + x * perPixel) / this.sliceWidth));
      const to = Math.min(SUMMARY_SLICES, Math.ceil((t0 + (x + 1) * perPixel) / this.sliceWidth));
      for (let lane = 0; lane < rows; lane++) {
        const row = lane * SUMMARY_SLICES;
        let worst = 0;
        for (let b = row + from; b < row + to; b++) if (summary[b] > worst) worst = summary[b];
        cells[lane * width + x] = worst;
      }
    }
  }

  height() {
    return this.margin.top + this.nemesisHeight + this.lanes.length * this.rowHeight + this.margin.bottom;
  }

  /** Top of the row of lane `lane`. */
  laneTop(lane) {
    return this.margin.top + this.nemesisHeight + lane * this.rowHeight;
  }

  render(ctx) {
    const top = this.margin.top;
    const bottom = this.laneTop(this.lanes.length);
    ctx.fillStyle = "#f7f8fa";
    ctx.fillRect(this.plotLeft, top, this.plotWidth, this.nemesisHeight);
    if (this.rowHeight >= 6) {
      ctx.fillStyle = "#fafbfc";
      for (let lane = 1; lane < this.lanes.length; lane += 2) {
        ctx.fillRect(this.plotLeft, this.laneTop(lane), this.plotWidth, this.rowHeight);
      }
    }
    this.drawTimeAxis(ctx, top, bottom);
    this.shadeFaults(ctx, this.data.raw.faults, this.data.end, top, bottom);
    this.clipToPlot(ctx, top, bottom, () => {
      this.drawNemesis(ctx);
      this.drawOps(ctx);
    });
    this.drawLabels(ctx);
  }

  drawNemesis(ctx) {
    const top = this.margin.top + 2;
    const height = this.nemesisHeight - 4;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    for (const fault of this.data.raw.faults) {
      const x0 = Math.max(this.plotLeft, this.x(fault.start));
      const x1 = Math.min(this.plotRight, this.x(fault.end === null ? this.data.end : fault.end));
      if (x1 <= x0) continue;
      ctx.globalAlpha = 0.75;
      ctx.fillStyle = COLORS[fault.kind + "Solid"];
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
      ctx.globalAlpha = 1;
      const label = faultLabel(fault, ",");
      if (x1 - x0 > ctx.measureText(label).width + 8) {
        ctx.fillStyle = "#fff";
        ctx.textAlign = "left";
        ctx.fillText(label, x0 + 4, top + height / 2);
      }
    }
    ctx.fillStyle = COLORS.text;
    for (const event of this.data.raw.nemesis) {
      const x = Math.round(this.x(event.time));
      if (x < this.plotLeft || x > this.plotRight) continue;
      ctx.fillRect(x, top + height - 4, 1, 6);
    }
  }

  drawOps(ctx) {
    const ops = this.ops;
    const { t0, t1 } = this.view;
    const left = this.plotLeft;
    const right = this.plotRight;
    const scale = this.plotWidth / (t1 - t0);
    const width = Math.ceil(this.plotWidth) + 1;
    const rows = this.lanes.length;
    if (this.cells.length !== rows * width) this.cells = new Uint8Array(rows * width);
    else this.cells.fill(0);
    const cells = this.cells;
    const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D()];
    const gap = this.rowHeight >= 8 ? 3 : 1;
    const barHeight = Math.max(1, this.rowHeight - gap);
    const labelled = [];
    const canLabel = this.rowHeight >= 12;

    const visit = (i) => {
      const start = ops.start[i];
      const end = ops.end[i];
      if (end < t0 || start > t1) return;
      const x0 = Math.max(left - 1, left + (start - t0) * scale);
      const x1 = Math.min(right + 1, left + (end - t0) * scale);
      const lane = ops.lane[i];
      const ending = ops.ending[i];
      if (x1 - x0 < 2) {
        const cell = lane * width + Math.max(0, Math.min(width - 1, Math.floor(x0 - left)));
        if (cells[cell] < SEVERITY[ending]) cells[cell] = SEVERITY[ending];
        return;
      }
      // A pixel of gap between bars that follow each other in a row.
      paths[ending].rect(x0, this.laneTop(lane) + gap / 2, x1 - x0 - (x1 - x0 > 4 ? 1 : 0), barHeight);
      if (canLabel && x1 - x0 > 40 && labelled.length < 3000) labelled.push([i, x0, x1]);
    };
    const from = lowerBound(ops.start, t0 - ops.maxLatency);
    const to = lowerBound(ops.start, t1);
    if (to - from > SUMMARY_FROM_OPS && (t1 - t0) / this.plotWidth >= this.sliceWidth) {
      this.cellsFromSummary(cells, width, rows);
    } else {
      for (let i = from; i < to; i++) visit(i);
      // Operations that never completed may start long before the range and reach into it.
      for (const i of ops.open) if (i < from) visit(i);
    }

    ENDING_COLORS.forEach((color, ending) => {
      ctx.fillStyle = color;
      ctx.fill(paths[ending]);
    });
    for (let lane = 0; lane < rows; lane++) {
      const y = this.laneTop(lane) + gap / 2;
      const row = lane * width;
      for (let x = 0; x < width; ) {
        const severity = cells[row + x];
        let run = 1;
        while (x + run < width && cells[row + x + run] === severity) run++;
        if (severity) {
          ctx.fillStyle = SEVERITY_COLORS[severity];
          ctx.fillRect(left + x, y, run, barHeight);
        }
        x += run;
      }
    }
    this.drawOpLabels(ctx, labelled, barHeight, gap);
  }

  /** The operation's text inside bars wide enough for it. */
  drawOpLabels(ctx, labelled, barHeight, gap) {
    const ops = this.ops;
    ctx.font = Math.min(11, barHeight - 2) + "px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (const [i, x0, x1] of labelled) {
      const text = opLabel(ops.fs[ops.f[i]], ops.value[i], ops.ending[i]);
      const room = x1 - x0 - 6;
      if (ctx.measureText(text).width > room) continue;
      ctx.fillStyle = ops.ending[i] === 3 ? COLORS.text : "#fff";
      ctx.fillText(text, Math.max(this.plotLeft, x0) + 3, this.laneTop(ops.lane[i]) + gap / 2 + barHeight / 2);
    }
  }

  /** Row names: the nemesis, then each lane's first process (and how many followed it). */
  drawLabels(ctx) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.plotLeft - 1, this.laneTop(this.lanes.length) + 1);
    ctx.fillStyle = COLORS.text;
    ctx.font = "600 11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText("nemesis", this.plotLeft - 8, this.margin.top + this.nemesisHeight / 2);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = COLORS.muted;
    const every = Math.ceil(12 / this.rowHeight);
    this.lanes.forEach((processes, lane) => {
      if (lane % every) return;
      const more = processes.length > 1 ? " +" + (processes.length - 1) : "";
      ctx.fillText("p" + processes[0] + more, this.plotLeft - 8, this.laneTop(lane) + this.rowHeight / 2);
    });
  }

  hover(x, y) {
    const top = this.margin.top;
    if (y < top || y > this.laneTop(this.lanes.length)) return null;
    const nemesisRow = y < top + this.nemesisHeight;
    const lane = Math.floor((y - top - this.nemesisHeight) / this.rowHeight);
    if (x < this.plotLeft) {
      if (nemesisRow) return [["nemesis", "faults: starts and stops as bars, every event as a tick"]];
      const processes = this.lanes[lane];
      return [["row", "processes " + processes.join(", ")], ["", "one client, as it went on under new ids after info"]];
    }
    const t = this.t(x);
    const tolerance = (4 / this.plotWidth) * (this.view.t1 - this.view.t0);
    if (nemesisRow) {
      const near = this.data.raw.nemesis.filter((e) => Math.abs(e.time - t) <= tolerance);
      const lines = near.map((e) => [e.f, e.nodes.join(", ") + " at " + formatTime(e.time)]);
      const all = lines.concat(describeFaultAt(this.data.raw.faults, this.data.end, t) || []);
      return all.length ? all.slice(0, 12) : null;
    }
    const i = this.opAt(lane, t, tolerance);
    return i === null ? null : describeOp(this.ops, i);
  }

  /** The operation of `lane` under time `t` (within `tolerance`), or null. */
  opAt(lane, t, tolerance) {
    const indices = this.ops.laneOps[lane];
    const starts = this.ops.laneStarts[lane];
    let best = null;
    let bestDistance = Infinity;
    // Operations in a lane follow one another: the one under t starts at or just before it.
    const last = lowerBound(starts, t + tolerance) - 1;
    for (let j = last; j >= 0 && j >= last - 3; j--) {
      const i = indices[j];
      const distance = Math.max(0, this.ops.start[i] - t, t - this.ops.end[i]);
      if (distance <= tolerance && distance < bestDistance) {
        best = i;
        bestDistance = distance;
      }
    }
    return best;
  }
}

function buildTimeline(section, view, data) {
  const reset = el("button", { type: "button", text: "Show the whole run" });
  reset.addEventListener("click", () => view.reset());
  section.append(
    el("div", { class: "legend" },
      legendItem(COLORS.ok, "ok"),
      legendItem(COLORS.fail, "fail (did not happen)"),
      legendItem(COLORS.info, "info (may have happened; drawn to its timeout)"),
      legendItem(COLORS.pending, "never completed"),
      faultLegend(data.raw.faults),
      reset),
  );
  return new Timeline(section, view, data);
}
