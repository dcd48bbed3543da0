// Each key that is not linearizable, drawn as Porcupine draws it: the key's operations on
// a time axis, a row per process; the longest linearizable prefix numbered 1..n in the
// order it linearizes; the operations that could come next but fit nowhere highlighted,
// with the model's state at that point and the reason each was rejected.

const CX_COLORS = {
  linearized: "#1a9850",
  rejected: "#d73027",
  unplaced: "#c4c9cf",
  indeterminate: "#f0961a",
};

class CounterexampleChart extends TimeChart {
  constructor(container, example) {
    const ops = example.operations;
    let first = Infinity;
    let last = -Infinity;
    for (const op of ops) {
      first = Math.min(first, op.call);
      last = Math.max(last, op.ret === null ? op.call : op.ret);
    }
    const pad = Math.max(50, (last - first) * 0.03);
    const view = new TimeView(first - pad, last + pad);
    super(container, view, { left: 84, top: 6 });
    this.example = example;
    this.processes = [...new Set(ops.map((op) => op.process))].sort((a, b) => a - b);
    this.rowOf = new Map(this.processes.map((p, row) => [p, row]));
    this.order = new Map(example.prefix.map((id, k) => [id, k + 1]));
    this.reasons = new Map(example.rejected.map((r) => [r.id, r.reason]));
    this.rowHeight = 26;
    this.placed = [];
    // When the next operation of the same row starts: how far a label may run past a bar
    // too narrow to hold it.
    this.nextCall = new Map();
    this.previousReturn = new Map();
    for (const process of this.processes) {
      const row = ops.filter((op) => op.process === process).sort((a, b) => a.call - b.call);
      row.forEach((op, k) => {
        this.nextCall.set(op.id, k + 1 < row.length ? row[k + 1].call : Infinity);
        this.previousReturn.set(op.id, k > 0 ? row[k - 1].ret : -Infinity);
      });
    }
  }

  height() {
    return this.margin.top + this.processes.length * this.rowHeight + this.margin.bottom;
  }

  /** How the search saw `op`: linearized (with its place), rejected, or not reached. */
  status(op) {
    if (this.order.has(op.id)) return "linearized";
    if (this.reasons.has(op.id)) return "rejected";
    return op.ret === null ? "indeterminate" : "unplaced";
  }

  render(ctx) {
    const top = this.margin.top;
    const bottom = top + this.processes.length * this.rowHeight;
    this.drawTimeAxis(ctx, top, bottom);
    this.placed = [];
    this.clipToPlot(ctx, top, bottom, () => {
      // Rejected operations last, so they are on top.
      const ops = [...this.example.operations].sort(
        (a, b) => (this.status(a) === "rejected") - (this.status(b) === "rejected"));
      for (const op of ops) this.drawOp(ctx, op);
    });
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillStyle = COLORS.muted;
    this.processes.forEach((p, row) => ctx.fillText("process " + p, this.plotLeft - 8, top + (row + 0.5) * this.rowHeight));
  }

  drawOp(ctx, op) {
    const status = this.status(op);
    const y = this.margin.top + this.rowOf.get(op.process) * this.rowHeight + 4;
    const height = this.rowHeight - 8;
    const x0 = this.x(op.call);
    // An indeterminate operation may take effect any time after its call: open to the right.
    const x1 = op.ret === null ? this.plotRight + 2 : Math.max(x0 + 2, this.x(op.ret));
    this.placed.push({ op, x0, x1, y, height });
    ctx.fillStyle = CX_COLORS[status];
    ctx.fillRect(x0, y, x1 - x0, height);
    if (status === "rejected") {
      ctx.strokeStyle = "#7a0c0c";
      ctx.lineWidth = 2;
      ctx.strokeRect(x0 + 1, y + 1, x1 - x0 - 2, height - 2);
      ctx.lineWidth = 1;
    }
    let text = opLabel(op.f, op.value, op.outcome === "ok" ? 0 : 2) + (op.outcome === "cas-mismatch" ? " ✗" : "");
    if (status === "linearized") text = this.order.get(op.id) + ". " + text;
    ctx.font = (status === "rejected" ? "600 " : "") + "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillStyle = status === "unplaced" ? COLORS.text : "#fff";
    const visible0 = Math.max(x0, this.plotLeft);
    const room = Math.min(x1, this.plotRight) - visible0 - 6;
    const textWidth = ctx.measureText(text).width;
    if (textWidth <= room) {
      ctx.fillText(text, visible0 + 3, y + height / 2);
      return;
    }
    // Too narrow: beside the bar, after it or else before it, where the row is free.
    const after = Math.min(this.x(this.nextCall.get(op.id)), this.plotRight) - x1 - 8;
    const previous = this.previousReturn.get(op.id);
    const before = x0 - Math.max(previous === null ? this.plotRight : this.x(previous), this.plotLeft) - 8;
    ctx.fillStyle = status === "rejected" ? CX_COLORS.rejected : COLORS.text;
    if (x1 >= this.plotLeft && textWidth <= after) {
      ctx.fillText(text, x1 + 4, y + height / 2);
    } else if (x0 <= this.plotRight && textWidth <= before) {
      ctx.textAlign = "right";
      ctx.fillText(text, x0 - 4, y + height / 2);
    } else if (status === "linearized" && room > 10) {
      ctx.fillStyle = "#fff";
      ctx.fillText(String(this.order.get(op.id)), visible0 + 2, y + height / 2);
    }
  }

  hover(x, y) {
    const hit = this.placed.filter((p) => x >= p.x0 - 2 && x <= p.x1 + 2 && y >= p.y && y <= p.y + p.height).pop();
    if (!hit) return null;
    const op = hit.op;
    const status = this.status(op);
    const lines = [
      ["op", "#" + op.id + " · process " + op.process],
      ["call", op.f + " " + formatValue(op.value, 200)],
      ["outcome", op.outcome],
      ["called", formatTime(op.call)],
      ["returned", op.ret === null ? "unknown (may take effect any time after its call)" : formatTime(op.ret)],
    ];
    if (status === "linearized") lines.push(["linearized", "#" + this.order.get(op.id) + " of " + this.example.prefix.length]);
    else if (status === "rejected") lines.push(["cannot be placed", this.reasons.get(op.id)]);
    else lines.push(["not placed", "comes after the point where the search got stuck"]);
    return lines;
  }
}

function buildCounterexamples(section, data, timelineView) {
  const examples = data.raw.counterexamples;
  if (!examples.length) return [];
  section.hidden = false;
  // Only the earliest counterexamples of each model are kept; the checks count every key.
  const invalid = Math.max(examples.length, data.raw.checks.reduce((sum, check) => sum + check.keys_invalid, 0));
  const shown = invalid > examples.length ? " The " + examples.length + " found first are shown." : "";
  section.append(el("p", { class: "help", text:
    invalid + (invalid === 1 ? " key is" : " keys are") + " not linearizable." + shown +
    " For each: its operations, a row per process; the longest prefix the checker could linearize, numbered in linearization order; and, highlighted, the operations that real time allows next but that no order can place." }));
  return examples.map((example) => {
    const article = el("article", { class: "counterexample" });
    const byId = new Map(example.operations.map((op) => [op.id, op]));
    const show = el("button", { type: "button", text: "Show in the timeline" });
    show.addEventListener("click", () => {
      const view = chart.view;
      timelineView.set(view.min, view.max);
      document.getElementById("timeline").scrollIntoView({ behavior: "smooth" });
    });
    article.append(
      el("h3", {}, "Key ", el("code", { text: example.key === null ? "(no key)" : example.key }), " · " + example.model),
      el("p", {}, "The longest linearizable prefix has " + example.prefix.length + " of the key's " + example.operations.length +
        " operations. After them the " + example.model + " holds ", el("code", { class: "state", text: formatValue(example.state, 200) }),
        ". Real time allows these operations next, and none of them fits:"),
      el("ul", { class: "rejected" }, example.rejected.map((r) => {
        const op = byId.get(r.id);
        const what = op ? op.f + " " + formatValue(op.value, 60) + " by process " + op.process : "";
        return el("li", {}, el("b", { text: "#" + r.id }), " " + what + ": ", el("span", { text: r.reason }));
      })),
      el("div", { class: "legend" },
        legendItem(CX_COLORS.linearized, "linearized, in order"), legendItem(CX_COLORS.rejected, "cannot be placed"),
        legendItem(CX_COLORS.unplaced, "not reached"), legendItem(CX_COLORS.indeterminate, "indeterminate (open-ended)"),
        show),
    );
    section.append(article);
    const chart = new CounterexampleChart(article, example);
    return chart;
  });
}
