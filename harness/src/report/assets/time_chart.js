// What every chart over time shares: a time range that several charts follow (zoom with
// the wheel, pan by dragging, double-click for everything), a canvas sized to its box and
// the screen's pixel ratio, a time axis, fault shading, and a tooltip on hover.

/** A time range [t0, t1] within [min, max], shared by the charts that follow it. */
class TimeView {
  constructor(min, max) {
    this.min = min;
    this.max = max;
    this.t0 = min;
    this.t1 = max;
    this.charts = [];
    this.scheduled = false;
  }

  follow(chart) {
    this.charts.push(chart);
  }

  set(t0, t1) {
    const full = this.max - this.min;
    // No closer than 20 µs across, no further out than the whole run.
    let span = Math.min(full, Math.max(20, t1 - t0));
    let start = Math.max(this.min, Math.min(t0, this.max - span));
    this.t0 = start;
    this.t1 = start + span;
    this.redraw();
  }

  /** Zooms by `factor` (> 1 zooms out) keeping time `at` under the pointer. */
  zoom(at, factor) {
    this.set(at - (at - this.t0) * factor, at + (this.t1 - at) * factor);
  }

  pan(dt) {
    this.set(this.t0 + dt, this.t1 + dt);
  }

  reset() {
    this.set(this.min, this.max);
  }

  redraw() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const chart of this.charts) chart.draw();
    });
  }
}

const tooltip = {
  node: null,
  show(event, lines) {
    if (!this.node) this.node = document.getElementById("tooltip");
    this.node.replaceChildren(
      ...lines.flatMap(([name, value], i) => [i ? "\n" : "", el("b", { text: name + " " }), value]),
    );
    this.node.hidden = false;
    const box = this.node.getBoundingClientRect();
    const x = event.clientX + 14 + box.width > window.innerWidth ? event.clientX - box.width - 14 : event.clientX + 14;
    const y = event.clientY + 14 + box.height > window.innerHeight ? event.clientY - box.height - 14 : event.clientY + 14;
    this.node.style.left = Math.max(0, x) + "px";
    this.node.style.top = Math.max(0, y) + "px";
  },
  hide() {
    if (this.node) this.node.hidden = true;
  },
};

/**
 * A canvas chart whose x axis is time. Subclasses give `height()`, `render(ctx)` and
 * `hover(x, y)` (lines for the tooltip, or null).
 */
class TimeChart {
  constructor(container, view, margin) {
    this.view = view;
    this.margin = Object.assign({ left: 96, right: 16, top: 8, bottom: 40 }, margin);
    this.box = el("div", { class: "chart" });
    this.canvas = el("canvas");
    this.box.append(this.canvas);
    container.append(this.box);
    this.ctx = this.canvas.getContext("2d");
    view.follow(this);
    this.listen();
  }

  get plotLeft() { return this.margin.left; }
  get plotRight() { return this.width - this.margin.right; }
  get plotWidth() { return Math.max(1, this.plotRight - this.plotLeft); }

  x(t) {
    return this.plotLeft + ((t - this.view.t0) / (this.view.t1 - this.view.t0)) * this.plotWidth;
  }

  t(x) {
    return this.view.t0 + ((x - this.plotLeft) / this.plotWidth) * (this.view.t1 - this.view.t0);
  }

  /** Sizes the canvas to its box, then draws. */
  draw() {
    const ratio = window.devicePixelRatio || 1;
    this.width = this.box.clientWidth || 800;
    const height = this.height();
    if (this.canvas.width !== Math.round(this.width * ratio) || this.canvas.height !== Math.round(height * ratio)) {
      this.canvas.width = Math.round(this.width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.height = height + "px";
    }
    this.plotHeight = height - this.margin.top - this.margin.bottom;
    const ctx = this.ctx;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.width, height);
    this.render(ctx);
  }

  /** Ticks and labels of the time axis under the plot, and vertical grid lines. */
  drawTimeAxis(ctx, top, bottom) {
    const span = this.view.t1 - this.view.t0;
    const step = niceStep(span, this.plotWidth / 110);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil(this.view.t0 / step) * step; t <= this.view.t1; t += step) {
      const x = Math.round(this.x(t)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillStyle = COLORS.muted;
      ctx.fillText(formatTime(t, step), x, bottom + 5);
    }
    ctx.strokeStyle = COLORS.axis;
    ctx.beginPath();
    ctx.moveTo(this.plotLeft, bottom + 0.5);
    ctx.lineTo(this.plotRight, bottom + 0.5);
    ctx.stroke();
    ctx.fillStyle = COLORS.text;
    ctx.fillText("time since the test started", this.plotLeft + this.plotWidth / 2, bottom + 21);
  }

  /** Shades every fault in view between `top` and `bottom`. */
  shadeFaults(ctx, faults, end, top, bottom) {
    for (const fault of faults) {
      const x0 = Math.max(this.plotLeft, this.x(fault.start));
      const x1 = Math.min(this.plotRight, this.x(fault.end === null ? end : fault.end));
      if (x1 <= x0) continue;
      ctx.fillStyle = COLORS[fault.kind];
      ctx.fillRect(x0, top, Math.max(1, x1 - x0), bottom - top);
    }
  }

  /** Keeps drawing inside the plot area while `draw` runs. */
  clipToPlot(ctx, top, bottom, draw) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(this.plotLeft, top, this.plotWidth, bottom - top);
    ctx.clip();
    draw();
    ctx.restore();
  }

  listen() {
    const canvas = this.canvas;
    const local = (event) => {
      const box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    };
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const { x } = local(event);
      const at = this.t(Math.max(this.plotLeft, Math.min(this.plotRight, x)));
      const delta = event.deltaMode === 1 ? event.deltaY * 33 : event.deltaY;
      this.view.zoom(at, Math.exp(Math.max(-300, Math.min(300, delta)) * 0.002));
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("pointerdown", (event) => {
      drag = { x: local(event).x, t0: this.view.t0, t1: this.view.t1 };
      canvas.setPointerCapture(event.pointerId);
      canvas.classList.add("dragging");
      tooltip.hide();
    });
    canvas.addEventListener("pointermove", (event) => {
      const point = local(event);
      if (drag) {
        const dt = ((drag.x - point.x) / this.plotWidth) * (drag.t1 - drag.t0);
        this.view.set(drag.t0 + dt, drag.t1 + dt);
        return;
      }
      const lines = this.hover(point.x, point.y);
      if (lines) tooltip.show(event, lines);
      else tooltip.hide();
    });
    const stop = () => {
      drag = null;
      canvas.classList.remove("dragging");
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("pointerleave", () => tooltip.hide());
    canvas.addEventListener("dblclick", () => this.view.reset());
  }

  /** Nothing to say by default. */
  hover() {
    return null;
  }
}

/** Horizontal grid lines at `ticks` ([y, label] pairs) and the axis name, centred on the
 * band of `height` pixels from `top`. */
function drawYAxis(ctx, chart, top, height, name, ticks) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [y, label] of ticks) {
    const line = Math.round(y) + 0.5;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath();
    ctx.moveTo(chart.plotLeft, line);
    ctx.lineTo(chart.plotRight, line);
    ctx.stroke();
    ctx.fillStyle = COLORS.muted;
    ctx.fillText(label, chart.plotLeft - 6, y);
  }
  ctx.save();
  ctx.translate(12, top + height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillStyle = COLORS.text;
  ctx.fillText(name, 0, 0);
  ctx.restore();
}

/** The fault (shaded interval) at time `t`, as tooltip lines, or null. */
function describeFaultAt(faults, end, t) {
  const hits = faults.filter((f) => f.start <= t && t <= (f.end === null ? end : f.end));
  if (!hits.length) return null;
  const onNodes = (f) => f.kind === "kill" || f.kind === "pause";
  return hits.map((f) => [
    faultLabel(f, ", "),
    formatTime(f.start) + " – " + (f.end === null ? "end (never healed)" : formatTime(f.end)) +
      (onNodes(f) && f.name !== "power-loss" ? "" : "\n" + formatValue(f.detail, 200)),
  ]);
}

/** Legend entries for the kinds of fault that occurred. */
function faultLegend(faults) {
  const kinds = [...new Set(faults.map((f) => f.kind))];
  return kinds.map((kind) =>
    el("span", {},
      el("span", { class: "swatch", style: "opacity:0.35;background:" + COLORS[kind + "Solid"] }),
      kind + " (shaded)"));
}
