// Latency over time (a point per operation at its invocation, by outcome, log scale) and
// throughput over time (completions per second by outcome), the plots Jepsen users know,
// both with the faults shaded and following the timeline's time range.

class LatencyChart extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { left: 72, top: 10 });
    this.data = data;
    this.points = data.latencyPoints;
    this.pointStarts = Float64Array.from(this.points, (i) => data.ops.start[i]);
    this.pointEndings = Uint8Array.from(this.points, (i) => Math.min(2, data.ops.ending[i]));
    this.pointLatencies = Float64Array.from(this.points, (i) => data.ops.end[i] - data.ops.start[i]);
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
    drawYAxis(ctx, this, top, this.plotHeight, "latency", decades(this.low, this.high).map((v) => [this.y(v), formatDecade(v)]));
    this.shadeFaults(ctx, this.data.raw.faults, this.data.end, top, bottom);
    this.drawPoints(ctx);
  }

  /**
   * A square per point (3 pixels, 5 when few are in view), successes first so failures
   * and unknowns stay visible on top. The squares are written straight into an image the
   * size of the plot, then drawn at once: a hundred thousand points take a few milliseconds.
   */
  drawPoints(ctx) {
    const from = lowerBound(this.pointStarts, this.view.t0);
    const to = lowerBound(this.pointStarts, this.view.t1);
    const ratio = window.devicePixelRatio || 1;
    // The image reaches a few pixels above and below the plot, so that points at its edges
    // (a timeout at the top) are whole.
    const pad = 4;
    const top = this.margin.top - pad;
    const cssHeight = this.plotHeight + 2 * pad;
    const width = Math.max(1, Math.round(this.plotWidth * ratio));
    const height = Math.max(1, Math.round(cssHeight * ratio));
    if (!this.image || this.image.width !== width || this.image.height !== height) {
      this.image = new ImageData(width, height);
      this.offscreen = document.createElement("canvas");
      this.offscreen.width = width;
      this.offscreen.height = height;
    }
    const pixels = new Uint32Array(this.image.data.buffer);
    pixels.fill(0);
    const size = Math.max(1, Math.round((to - from < 2000 ? 5 : 3) * ratio));
    const half = Math.floor(size / 2);
    // x = (start - t0) * xScale; y = yZero - log10(latency) * yScale, in image pixels.
    const t0 = this.view.t0;
    const xScale = (this.plotWidth / (this.view.t1 - this.view.t0)) * ratio;
    const logLow = Math.log10(this.low);
    const yScale = (this.plotHeight / (Math.log10(this.high) - logLow)) * ratio;
    const yZero = (pad + this.plotHeight) * ratio + logLow * yScale;
    const starts = this.pointStarts;
    const endings = this.pointEndings;
    const latencies = this.pointLatencies;
    const low = this.low;
    for (let ending = 0; ending < 3; ending++) {
      const color = rgbaWord(ENDING_COLORS[ending]);
      for (let p = from; p < to; p++) {
        if (endings[p] !== ending) continue;
        const x0 = Math.round((starts[p] - t0) * xScale) - half;
        const y0 = Math.round(yZero - Math.log10(Math.max(latencies[p], low)) * yScale) - half;
        for (let y = Math.max(0, y0); y < Math.min(height, y0 + size); y++) {
          const row = y * width;
          for (let x = Math.max(0, x0); x < Math.min(width, x0 + size); x++) pixels[row + x] = color;
        }
      }
    }
    this.offscreen.getContext("2d").putImageData(this.image, 0, 0);
    ctx.drawImage(this.offscreen, this.plotLeft, top, this.plotWidth, cssHeight);
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
    // About one bucket per 6 pixels, fewer when few operations are in view (a handful
    // per bucket on average), never under 10 ms.
    const inView = lowerBound(ops.start, t1) - lowerBound(ops.start, t0);
    const buckets = Math.max(10, Math.min(this.plotWidth / 6, inView / 4));
    const width = Math.max(10000, niceStep(t1 - t0, buckets));
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
        // A step per bucket: its rate holds across it.
        ctx.beginPath();
        series.forEach((n, b) => {
          const x0 = this.x(buckets.first + b * buckets.width);
          const x1 = this.x(buckets.first + (b + 1) * buckets.width);
          if (b === 0) ctx.moveTo(x0, y(n * perSecond));
          else ctx.lineTo(x0, y(n * perSecond));
          ctx.lineTo(x1, y(n * perSecond));
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

/** A colour "#rrggbb" as the 32-bit word of an opaque pixel of ImageData (little-endian). */
function rgbaWord(hex) {
  const n = parseInt(hex.slice(1), 16);
  return ((255 << 24) | ((n & 0xff) << 16) | (n & 0xff00) | (n >> 16)) >>> 0;
}

/** A power of ten of microseconds, as a tick label: "100 µs", "10 ms", "1 s". */
function formatDecade(micros) {
  if (micros < 1000) return Math.round(micros) + " µs";
  if (micros < 1e6) return Math.round(micros / 1000) + " ms";
  return Math.round(micros / 1e6) + " s";
}

/** 1, 10, 100, ... from `low` to `high`. */
function decades(low, high) {
  const out = [];
  for (let v = low; v <= high * 1.0001; v *= 10) out.push(v);
  return out;
}

function buildLatency(section, view, data) {
  // Without times, there is no latency to draw, nor a rate.
  if (untimed(data.raw)) {
    section.hidden = true;
    return null;
  }
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
  if (untimed(data.raw)) {
    section.hidden = true;
    return null;
  }
  section.append(
    el("p", { class: "help", text: "Completions per second by outcome, in buckets that shrink as you zoom in (hover for a bucket's counts)." }),
    el("div", { class: "legend" }, legendItem(COLORS.ok, "ok"), legendItem(COLORS.fail, "fail"),
      legendItem(COLORS.info, "info"), faultLegend(data.raw.faults)),
  );
  return new RateChart(section, view, data);
}
