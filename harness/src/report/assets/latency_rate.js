// Latency over time (a point per operation at its invocation, by outcome, log scale) and
// throughput over time (completions per second by outcome), the plots Jepsen users know,
// both with the faults shaded and following the timeline's time range.

class LatencyChart extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { left: 72, top: 10 });
    this.data = data;
    this.points = data.latencyPoints;
    this.pointStarts = Float64Array.from(this.points, (i) => data.ops.start[i]);
    let low = Infinity;
    let high = 0;
    for (const i of this.points) {
      const latency = data.ops.end[i] - data.ops.start[i];
      if (latency > 0 && latency < low) low = latency;
      if (latency > high) high = latency;
    }
    // Whole decades, at least 100 µs to 1 s.
    this.low = Math.min(100, Math.pow(10, Math.floor(Math.log10(Number.isFinite(low) ? low : 100))));
    this.high = Math.max(1e6, Math.pow(10, Math.ceil(Math.log10(Math.max(high, 1)))));
  }

  height() {
    return 320;
  }

  y(latency) {
    const fraction = (Math.log10(Math.max(latency, this.low)) - Math.log10(this.low)) /
      (Math.log10(this.high) - Math.log10(this.low));
    return this.margin.top + this.plotHeight * (1 - fraction);
  }

  render(ctx) {
    const top = this.margin.top;
    const bottom = top + this.plotHeight;
    this.drawTimeAxis(ctx, top, bottom);
    drawYAxis(ctx, this, top, this.plotHeight, "latency", decades(this.low, this.high).map((v) => [this.y(v), formatDuration(v)]));
    this.shadeFaults(ctx, this.data.raw.faults, this.data.end, top, bottom);
    this.clipToPlot(ctx, top, bottom, () => this.drawPoints(ctx));
  }

  /** One 3-pixel square per point, at most one per pixel and colour. */
  drawPoints(ctx) {
    const ops = this.data.ops;
    const from = lowerBound(this.pointStarts, this.view.t0);
    const to = lowerBound(this.pointStarts, this.view.t1);
    const width = Math.ceil(this.plotWidth) + 1;
    const seen = new Uint8Array(width * (Math.ceil(this.plotHeight) + 12));
    const paths = [new Path2D(), new Path2D(), new Path2D()];
    for (let p = from; p < to; p++) {
      const i = this.points[p];
      const ending = Math.min(2, ops.ending[i]);
      const x = Math.round(this.x(ops.start[i]));
      const y = Math.round(this.y(ops.end[i] - ops.start[i]));
      const cell = (y - this.margin.top + 4) * width + (x - this.plotLeft);
      const bit = 1 << ending;
      if (seen[cell] & bit) continue;
      seen[cell] |= bit;
      paths[ending].rect(x - 1.5, y - 1.5, 3, 3);
    }
    // Successes first, so failures and unknowns stay visible on top.
    [0, 1, 2].forEach((ending) => {
      ctx.fillStyle = ENDING_COLORS[ending];
      ctx.fill(paths[ending]);
    });
  }

  hover(x, y) {
    const ops = this.data.ops;
    const slack = (6 / this.plotWidth) * (this.view.t1 - this.view.t0);
    const from = lowerBound(this.pointStarts, this.t(x) - slack);
    const to = lowerBound(this.pointStarts, this.t(x) + slack);
    let best = null;
    let bestDistance = 36;
    for (let p = from; p < to; p++) {
      const i = this.points[p];
      const dx = this.x(ops.start[i]) - x;
      const dy = this.y(ops.end[i] - ops.start[i]) - y;
      const distance = dx * dx + dy * dy;
      // Ties go to the later point: failures are drawn over successes.
      if (distance < bestDistance || (distance === bestDistance && ops.ending[i] > 0)) {
        best = i;
        bestDistance = distance;
      }
    }
    if (best !== null) return describeOp(ops, best);
    return describeFaultAt(this.data.raw.faults, this.data.end, this.t(x));
  }
}

class RateChart extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { left: 72, top: 10 });
    this.data = data;
  }

  height() {
    return 240;
  }

  /** Completions per bucket by outcome (ok, fail, info) over the range in view. */
  buckets() {
    const ops = this.data.ops;
    const { t0, t1 } = this.view;
    const width = Math.max(10000, niceStep(t1 - t0, this.plotWidth / 6));
    const first = Math.floor(t0 / width) * width;
    const count = Math.ceil((t1 - first) / width) + 1;
    const counts = [new Float64Array(count), new Float64Array(count), new Float64Array(count)];
    const from = lowerBound(ops.start, first - ops.maxLatency);
    const to = lowerBound(ops.start, t1 + width);
    for (let i = from; i < to; i++) {
      const ending = ops.ending[i];
      if (ending === 3) continue;
      const bucket = Math.floor((ops.end[i] - first) / width);
      if (bucket >= 0 && bucket < count) counts[ending][bucket]++;
    }
    return { width, first, counts, count };
  }

  render(ctx) {
    const top = this.margin.top;
    const bottom = top + this.plotHeight;
    const buckets = this.buckets();
    this.last = buckets;
    const perSecond = 1e6 / buckets.width;
    let highest = 1;
    for (const series of buckets.counts) for (const n of series) highest = Math.max(highest, n * perSecond);
    const step = niceStep(highest * 1.1, 4);
    this.top = Math.ceil((highest * 1.1) / step) * step;
    const y = (rate) => bottom - (rate / this.top) * this.plotHeight;
    this.drawTimeAxis(ctx, top, bottom);
    const ticks = [];
    for (let v = 0; v <= this.top + 1e-9; v += step) ticks.push([y(v), formatCount(Math.round(v))]);
    drawYAxis(ctx, this, top, this.plotHeight, "ops/s", ticks);
    this.shadeFaults(ctx, this.data.raw.faults, this.data.end, top, bottom);
    this.clipToPlot(ctx, top, bottom, () => {
      ctx.lineWidth = 1.6;
      ctx.lineJoin = "round";
      buckets.counts.forEach((series, ending) => {
        ctx.strokeStyle = ENDING_COLORS[ending];
        ctx.beginPath();
        series.forEach((n, b) => {
          const x = this.x(buckets.first + (b + 0.5) * buckets.width);
          if (b === 0) ctx.moveTo(x, y(n * perSecond));
          else ctx.lineTo(x, y(n * perSecond));
        });
        ctx.stroke();
      });
      ctx.lineWidth = 1;
    });
  }

  hover(x) {
    if (!this.last || x < this.plotLeft) return null;
    const { width, first, counts } = this.last;
    const b = Math.floor((this.t(x) - first) / width);
    if (b < 0 || b >= this.last.count) return null;
    const perSecond = 1e6 / width;
    const lines = [["bucket", formatTime(first + b * width) + " + " + formatDuration(width)]];
    ENDING_NAMES.slice(0, 3).forEach((name, ending) => {
      lines.push([name, formatCount(Math.round(counts[ending][b] * perSecond)) + " ops/s (" + counts[ending][b] + ")"]);
    });
    return lines.concat(describeFaultAt(this.data.raw.faults, this.data.end, this.t(x)) || []);
  }
}

/** 1, 10, 100, ... from `low` to `high`. */
function decades(low, high) {
  const out = [];
  for (let v = low; v <= high * 1.0001; v *= 10) out.push(v);
  return out;
}

function buildLatency(section, view, data) {
  const thinned = data.latencyPoints.length < data.ops.count - data.ops.open.length;
  section.append(
    el("p", { class: "help", text: "Each operation is a point at its invocation, its height the time to its completion (log scale)." +
      (thinned ? " Successful operations are thinned evenly to " + formatCount(data.latencyPoints.length) +
        " points; every failed and indeterminate one, and every one of a non-linearizable key, is kept." : "") }),
    el("div", { class: "legend" }, legendItem(COLORS.ok, "ok"), legendItem(COLORS.fail, "fail"),
      legendItem(COLORS.info, "info (timed out)"), faultLegend(data.raw.faults)),
  );
  return new LatencyChart(section, view, data);
}

function buildRate(section, view, data) {
  section.append(
    el("p", { class: "help", text: "Completions per second by outcome, in buckets that shrink as you zoom in." }),
    el("div", { class: "legend" }, legendItem(COLORS.ok, "ok"), legendItem(COLORS.fail, "fail"),
      legendItem(COLORS.info, "info"), faultLegend(data.raw.faults)),
  );
  return new RateChart(section, view, data);
}
