// Each node's clock offset from true time over the run, where a clock fault moved it: a line
// per node, sloped while the clock ran fast or slow, stepping at each bump, strobe flip and
// reset; a dot where the node's own clock was seen to read its offset.

class ClockChart extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { left: 72, top: 10 });
    this.data = data;
    this.rows = data.raw.clocks;
    this.end = data.end;
    let low = 0;
    let high = 0;
    for (const row of this.rows) {
      row.points.forEach((point, i) => {
        const next = i + 1 < row.points.length ? row.points[i + 1].time : this.end;
        for (const offset of [point.offset_ms, this.offsetAt(point, next), point.observed_ms]) {
          if (offset === null || offset === undefined) continue;
          low = Math.min(low, offset);
          high = Math.max(high, offset);
        }
      });
    }
    const pad = Math.max(10, (high - low) * 0.08);
    this.low = low - pad;
    this.high = high + pad;
  }

  height() {
    return 260;
  }

  /** The offset (ms) a point's clock reads at time `t` (µs), before the next point. */
  offsetAt(point, t) {
    return point.offset_ms + ((t - point.time) / 1000) * (point.rate - 1);
  }

  y(offset) {
    return this.margin.top + this.plotHeight * (1 - (offset - this.low) / (this.high - this.low));
  }

  render(ctx) {
    const top = this.margin.top;
    const bottom = top + this.plotHeight;
    this.drawTimeAxis(ctx, top, bottom);
    const step = niceStep(this.high - this.low, 5);
    const ticks = [];
    for (let v = Math.ceil(this.low / step) * step; v <= this.high; v += step) ticks.push([this.y(v), Math.round(v) + " ms"]);
    drawYAxis(ctx, this, top, this.plotHeight, "offset", ticks);
    this.shadeFaults(ctx, this.data.raw.faults.filter((f) => f.kind === "clock"), this.end, top, bottom);
    this.clipToPlot(ctx, top, bottom, () => {
      ctx.strokeStyle = COLORS.axis;
      ctx.beginPath();
      ctx.moveTo(this.plotLeft, Math.round(this.y(0)) + 0.5);
      ctx.lineTo(this.plotRight, Math.round(this.y(0)) + 0.5);
      ctx.stroke();
      this.rows.forEach((row, n) => this.drawRow(ctx, row, this.colorOf(row)));
    });
  }

  colorOf(row) {
    const n = this.data.raw.nodes.findIndex((node) => node.name === row.name);
    return NODE_LINE_COLORS[(n < 0 ? this.rows.indexOf(row) : n) % NODE_LINE_COLORS.length];
  }

  drawRow(ctx, row, color) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    // True time until the first change.
    ctx.moveTo(this.x(0), this.y(0));
    row.points.forEach((point, i) => {
      const next = i + 1 < row.points.length ? row.points[i + 1].time : this.end;
      ctx.lineTo(this.x(point.time), this.y(i ? this.offsetAt(row.points[i - 1], point.time) : 0));
      ctx.lineTo(this.x(point.time), this.y(point.offset_ms));
      ctx.lineTo(this.x(next), this.y(this.offsetAt(point, next)));
    });
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.fillStyle = color;
    for (const point of row.points) {
      if (point.observed_ms === null) continue;
      ctx.beginPath();
      ctx.arc(this.x(point.time), this.y(point.observed_ms), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  hover(x, y) {
    const t = this.t(x);
    const tolerance = (6 / this.plotWidth) * (this.view.t1 - this.view.t0);
    const lines = [];
    for (const row of this.rows) {
      let current = null;
      for (const point of row.points) {
        if (point.time <= t) current = point;
        if (Math.abs(point.time - t) <= tolerance) {
          lines.push([row.name, "set to " + point.offset_ms.toFixed(1) + " ms at rate " + point.rate.toFixed(3) + " at " + formatTime(point.time) +
            (point.observed_ms === null ? "" : "; its clock read " + point.observed_ms.toFixed(1) + " ms")]);
        }
      }
      if (current !== null) lines.push([row.name + " offset", this.offsetAt(current, t).toFixed(1) + " ms (rate " + current.rate.toFixed(3) + ")"]);
    }
    return lines.length ? lines : null;
  }
}

function buildClocks(section, view, data) {
  if (!data.raw.run || !(data.raw.clocks || []).length) return null;
  section.hidden = false;
  section.append(
    el("p", { class: "help", text: "How far ahead of true time (behind, below zero) each node's clocks read, as the clock fault set them through libfaketime: " +
      "sloped while a clock ran fast or slow, a step at each bump, strobe flip and reset. A dot is the offset the node's own clock read (its /status), right after the change." }),
    el("div", { class: "legend" },
      data.raw.clocks.map((row) => {
        const n = data.raw.nodes.findIndex((node) => node.name === row.name);
        return legendItem(NODE_LINE_COLORS[(n < 0 ? 0 : n) % NODE_LINE_COLORS.length], row.name);
      }),
      faultLegend(data.raw.faults.filter((f) => f.kind === "clock"))),
  );
  return new ClockChart(section, view, data);
}
