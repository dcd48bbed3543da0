// Each node's role over time (a band per node, as its /status said during the run), its
// term below (a step line per node), the nemesis's kills, pauses, resumes and restarts
// marked on the node they hit, and each change of the cluster's leader as a line across
// the rows with a diamond on the new leader (hollow on the old one when none took over).
// Where the nodes tell their membership, a thin strip under each band shows where the node
// stood in the cluster's configuration (as the leader of the moment held it); runs without
// it are drawn as before, rows and all.

const ROLE_COLORS = {
  leader: "#1f4e79",
  candidate: "#f0961a",
  follower: "#a6c8e6",
};
/** A node's standing in the configuration: the strip's colour and the word for it. */
const STANDINGS = {
  voter: { color: "#2e7d32", label: "voter" },
  joining: { color: "#8fd18f", label: "joining voter" },
  leaving: { color: "#e39a9a", label: "leaving voter" },
  learner: { color: "#9c7fd6", label: "learner" },
  "not-a-member": { color: "#e2e2e2", label: "not a member" },
};
const NODE_LINE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];
/** The marker of a nemesis event on the rows of the nodes it names, or null. */
function markerOf(event) {
  if (event.starts === "down") return event.f === "power-loss" ? "power-loss" : "kill";
  if (event.stops === "down") return "restart";
  if (event.starts === "paused") return "pause";
  if (event.stops === "paused") return "resume";
  return null;
}

class NodeChart extends TimeChart {
  constructor(container, view, data) {
    super(container, view, { left: 72, top: 8 });
    this.data = data;
    this.nodes = data.raw.nodes;
    this.configurations = data.raw.configurations || [];
    // The role band sits 3 px into its row; with membership, the strip below it makes the
    // row 6 px taller.
    this.bandInset = 3;
    this.bandHeight = 18;
    this.stripHeight = 4;
    this.rowHeight = this.configurations.length ? 30 : 24;
    this.termHeight = 110;
    this.termGap = 22;
    this.maxTerm = 1;
    for (const node of this.nodes) for (const span of node.spans) this.maxTerm = Math.max(this.maxTerm, span.term || 0);
    this.downPattern = null;
  }

  height() {
    return this.margin.top + this.nodes.length * this.rowHeight + this.termGap + this.termHeight + this.margin.bottom;
  }

  rowTop(n) {
    return this.margin.top + n * this.rowHeight;
  }

  /** The middle of row `n`'s role band, where its name and markers go. */
  bandMiddle(n) {
    return this.rowTop(n) + this.bandInset + this.bandHeight / 2;
  }

  termY(term) {
    const top = this.rowTop(this.nodes.length) + this.termGap;
    return top + this.termHeight * (1 - term / (this.maxTerm + 0.5));
  }

  /** Diagonal grey stripes: the node did not answer (killed, paused or too slow). */
  pattern(ctx) {
    if (!this.downPattern) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 8;
      const t = tile.getContext("2d");
      t.fillStyle = "#eeeeee";
      t.fillRect(0, 0, 8, 8);
      t.strokeStyle = "#b5b5b5";
      t.beginPath();
      t.moveTo(0, 8);
      t.lineTo(8, 0);
      t.stroke();
      this.downPattern = ctx.createPattern(tile, "repeat");
    }
    return this.downPattern;
  }

  render(ctx) {
    const top = this.margin.top;
    const rowsBottom = this.rowTop(this.nodes.length);
    const termTop = rowsBottom + this.termGap;
    const bottom = termTop + this.termHeight;
    this.drawTimeAxis(ctx, top, bottom);
    this.shadeFaults(ctx, this.data.raw.faults, this.data.end, top, bottom);
    const ticks = [];
    const step = Math.max(1, niceStep(this.maxTerm, 4));
    for (let term = 0; term <= this.maxTerm; term += step) ticks.push([this.termY(term), String(term)]);
    drawYAxis(ctx, this, termTop, this.termHeight, "term", ticks);
    this.clipToPlot(ctx, top, bottom, () => {
      this.nodes.forEach((node, n) => this.drawRoles(ctx, node, n));
      this.nodes.forEach((node, n) => this.drawMembership(ctx, node, n));
      this.nodes.forEach((node, n) => this.drawTerms(ctx, node, n));
      this.drawLeaderChanges(ctx);
      this.drawMarkers(ctx);
    });
    ctx.font = "600 11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillStyle = COLORS.text;
    this.nodes.forEach((node, n) => ctx.fillText(node.name, this.plotLeft - 8, this.bandMiddle(n)));
  }

  drawRoles(ctx, node, n) {
    const y = this.rowTop(n) + this.bandInset;
    const height = this.bandHeight;
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (const span of node.spans) {
      const x0 = Math.max(this.plotLeft, this.x(span.start));
      const x1 = Math.min(this.plotRight, this.x(span.end));
      if (x1 <= x0) continue;
      ctx.fillStyle = span.up ? ROLE_COLORS[span.role] || "#cccccc" : this.pattern(ctx);
      ctx.fillRect(x0, y, Math.max(1, x1 - x0), height);
      const label = span.up ? (span.role || "?") + " · t" + span.term : "no answer";
      if (x1 - x0 > ctx.measureText(label).width + 8) {
        ctx.fillStyle = span.up && span.role !== "follower" ? "#fff" : COLORS.text;
        ctx.fillText(label, x0 + 4, y + height / 2);
      }
    }
  }

  /** The thin strip under row `n`'s band: where the node stood in the configuration. */
  drawMembership(ctx, node, n) {
    const y = this.rowTop(n) + this.bandInset + this.bandHeight + 2;
    for (const span of node.membership || []) {
      const x0 = Math.max(this.plotLeft, this.x(span.start));
      const x1 = Math.min(this.plotRight, this.x(span.end));
      if (x1 <= x0) continue;
      ctx.fillStyle = (STANDINGS[span.standing] || STANDINGS["not-a-member"]).color;
      ctx.fillRect(x0, y, Math.max(1, x1 - x0), this.stripHeight);
    }
  }

  drawTerms(ctx, node, n) {
    ctx.strokeStyle = NODE_LINE_COLORS[n % NODE_LINE_COLORS.length];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    // Offset each node's line a little so equal terms stay visible.
    const offset = (n - (this.nodes.length - 1) / 2) * 1.5;
    for (const span of node.spans) {
      if (!span.up || span.term === null) {
        drawing = false;
        continue;
      }
      const y = this.termY(span.term) + offset;
      if (drawing) ctx.lineTo(this.x(span.start), y);
      else ctx.moveTo(this.x(span.start), y);
      ctx.lineTo(this.x(span.end), y);
      drawing = true;
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  /** ✕ kill or crash, ϟ power loss, ▲ restart, ❚❚ pause, ▶ resume, on the row of each node they name. */
  drawMarkers(ctx) {
    const rowOf = new Map(this.nodes.map((node, n) => [node.name, n]));
    for (const event of this.data.raw.nemesis) {
      const marker = markerOf(event);
      if (marker === null) continue;
      const x = this.x(event.time);
      if (x < this.plotLeft - 8 || x > this.plotRight + 8) continue;
      for (const name of event.nodes) {
        const n = rowOf.get(name);
        if (n === undefined) continue;
        drawMarker(ctx, marker, x, this.bandMiddle(n));
      }
    }
  }

  /** A dashed line across the rows at each change of leader, and its diamond. */
  drawLeaderChanges(ctx) {
    const rowOf = new Map(this.nodes.map((node, n) => [node.name, n]));
    const top = this.rowTop(0);
    const bottom = this.rowTop(this.nodes.length);
    for (const change of this.data.raw.leaders || []) {
      const x = Math.round(this.x(change.time)) + 0.5;
      if (x < this.plotLeft - 8 || x > this.plotRight + 8) continue;
      ctx.save();
      ctx.strokeStyle = ROLE_COLORS.leader;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.restore();
      const row = rowOf.get(change.to === null ? change.from : change.to);
      if (row !== undefined) drawLeaderMark(ctx, change.to !== null, x, this.bandMiddle(row));
    }
  }

  /** Tooltip lines for the changes of leader within `tolerance` of time `t`. */
  describeLeaderChanges(t, tolerance) {
    const lines = [];
    for (const change of this.data.raw.leaders || []) {
      if (Math.abs(change.time - t) > tolerance) continue;
      lines.push(["leader change", leaderName(change.from) + " → " + leaderName(change.to) + " at " + formatTime(change.time)]);
      if (change.fault !== null) lines.push(["after", leaderFault(change)]);
    }
    return lines;
  }

  hover(x, y) {
    const t = this.t(x);
    const n = Math.floor((y - this.margin.top) / this.rowHeight);
    if (n < 0 || n >= this.nodes.length) return describeFaultAt(this.data.raw.faults, this.data.end, t);
    const node = this.nodes[n];
    const tolerance = (6 / this.plotWidth) * (this.view.t1 - this.view.t0);
    const lines = this.describeLeaderChanges(t, tolerance);
    lines.push(...this.data.raw.nemesis
      .filter((e) => markerOf(e) !== null && e.nodes.includes(node.name) && Math.abs(e.time - t) <= tolerance)
      .map((e) => [e.f, node.name + " at " + formatTime(e.time)]));
    const span = node.spans.find((s) => s.start <= t && t < s.end);
    if (span) {
      lines.push(["node", node.name + (span.up ? "" : ": did not answer /status")]);
      if (span.up) {
        lines.push(["role", span.role + " in term " + span.term]);
        lines.push(["leader", span.leader === null ? "none known" : span.leader]);
      }
      lines.push(["from", formatTime(span.start) + " to " + formatTime(span.end)]);
    }
    const standing = (node.membership || []).find((s) => s.start <= t && t < s.end);
    if (standing) {
      const word = (STANDINGS[standing.standing] || { label: standing.standing }).label;
      lines.push(["member", word + " from " + formatTime(standing.start) + " to " + formatTime(standing.end)]);
    }
    const configuration = this.configurations.find((c) => c.start <= t && t < c.end);
    if (configuration) lines.push(["configuration", describeConfiguration(configuration)]);
    return lines.length ? lines : null;
  }
}

function drawMarker(ctx, f, x, y) {
  ctx.save();
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = f === "kill" || f === "power-loss" ? COLORS.killSolid : f === "restart" ? COLORS.ok : COLORS.pauseSolid;
  ctx.beginPath();
  if (f === "power-loss") {
    // A lightning bolt: the process and what it had not fsynced are gone.
    ctx.moveTo(x + 2, y - 7);
    ctx.lineTo(x - 5, y + 1);
    ctx.lineTo(x, y + 1);
    ctx.lineTo(x - 2, y + 7);
    ctx.lineTo(x + 5, y - 1);
    ctx.lineTo(x, y - 1);
    ctx.closePath();
    ctx.stroke();
    ctx.fill();
  } else if (f === "kill") {
    ctx.strokeStyle = COLORS.killSolid;
    ctx.lineWidth = 2.5;
    ctx.moveTo(x - 5, y - 5);
    ctx.lineTo(x + 5, y + 5);
    ctx.moveTo(x + 5, y - 5);
    ctx.lineTo(x - 5, y + 5);
    ctx.stroke();
  } else if (f === "restart") {
    ctx.moveTo(x, y - 7);
    ctx.lineTo(x + 6, y + 5);
    ctx.lineTo(x - 6, y + 5);
    ctx.closePath();
    ctx.stroke();
    ctx.fill();
  } else if (f === "pause") {
    ctx.rect(x - 5, y - 6, 3.5, 12);
    ctx.rect(x + 1.5, y - 6, 3.5, 12);
    ctx.stroke();
    ctx.fill();
  } else {
    ctx.moveTo(x - 4, y - 7);
    ctx.lineTo(x + 6, y);
    ctx.lineTo(x - 4, y + 7);
    ctx.closePath();
    ctx.stroke();
    ctx.fill();
  }
  ctx.restore();
}

/** The diamond of a change of leader: filled on the new leader, hollow on the old one when
 * no node took over. */
function drawLeaderMark(ctx, filled, x, y) {
  ctx.save();
  ctx.lineWidth = filled ? 1.5 : 2;
  ctx.strokeStyle = filled ? "#fff" : ROLE_COLORS.leader;
  ctx.fillStyle = filled ? "#f5c518" : "#fff";
  ctx.beginPath();
  ctx.moveTo(x, y - 7);
  ctx.lineTo(x + 6, y);
  ctx.lineTo(x, y + 7);
  ctx.lineTo(x - 6, y);
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}

/** A configuration in words: its voters (both halves during a joint change), its learners. */
function describeConfiguration(configuration) {
  const list = (names) => (names.length ? names.join(", ") : "none");
  let text = configuration.outgoing.length
    ? "joint: new voters " + list(configuration.voters) + ", old voters " + list(configuration.outgoing)
    : "voters " + list(configuration.voters);
  if (configuration.learners.length) text += "; learners " + list(configuration.learners);
  return text + " (since " + formatTime(configuration.start) + ")";
}

/** A legend swatch as thin as the membership strip. */
function standingItem(standing) {
  const { color, label } = STANDINGS[standing];
  return el("span", {}, el("span", { class: "swatch strip", style: "background:" + color }), label);
}

/** A legend swatch drawn by `drawLeaderMark`. */
function leaderItem(filled, label) {
  const canvas = el("canvas", { width: 16, height: 16, style: "vertical-align:-3px;margin-right:4px" });
  drawLeaderMark(canvas.getContext("2d"), filled, 8, 8);
  return el("span", {}, canvas, label);
}

/** A legend swatch drawn by `drawMarker`. */
function markerItem(f, label) {
  const canvas = el("canvas", { width: 16, height: 16, style: "vertical-align:-3px;margin-right:4px" });
  drawMarker(canvas.getContext("2d"), f, 8, 8);
  return el("span", {}, canvas, label);
}

function buildNodes(section, view, data) {
  // A history checked alone has no nodes to have asked: the section is left out.
  if (!data.raw.run) {
    section.hidden = true;
    return null;
  }
  if (!data.raw.nodes.length) {
    section.append(el("p", { class: "help", text: "No node status was recorded." }));
    return null;
  }
  section.append(
    el("p", { class: "help", text: "Role and term as each node's /status answered, polled during the run; below, each node's term as a line." }),
    el("div", { class: "legend" },
      legendItem(ROLE_COLORS.leader, "leader"), legendItem(ROLE_COLORS.candidate, "candidate"),
      legendItem(ROLE_COLORS.follower, "follower"),
      el("span", {}, el("span", { class: "swatch", style: "background:repeating-linear-gradient(135deg,#eee 0 3px,#b5b5b5 3px 4px)" }), "no answer"),
      markerItem("kill", "kill"), markerItem("power-loss", "power loss"), markerItem("restart", "restart"), markerItem("pause", "pause"), markerItem("resume", "resume"),
      (data.raw.leaders || []).length ? [leaderItem(true, "new leader"), leaderItem(false, "leader lost, none took over")] : [],
      data.raw.nodes.map((node, n) => legendItem(NODE_LINE_COLORS[n % NODE_LINE_COLORS.length], "term of " + node.name)),
      faultLegend(data.raw.faults)),
  );
  if ((data.raw.configurations || []).length) {
    section.append(el("div", { class: "legend membership" },
      el("span", { class: "title", text: "membership (the strip under each row, as the leader held it):" }),
      Object.keys(STANDINGS).map(standingItem)));
  }
  return new NodeChart(section, view, data);
}
