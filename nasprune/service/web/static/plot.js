// An SVG scatter plot of a search's trials: every trial, the Pareto front of the two axes,
// the limit line (drag it to move it) and the best trial under it. Plain SVG, no library.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const VIEW = { width: 860, height: 460, left: 72, right: 24, top: 20, bottom: 52 };
const HOVER_RADIUS = 14; // in the plot's own units (the viewBox)

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

// The domain of an axis: the data's extent with a margin (multiplicative on a log axis).
function padded(values, log) {
  let [lo, hi] = extent(log ? values.filter((v) => v > 0) : values);
  if (!Number.isFinite(lo)) return log ? [0.1, 10] : [0, 1];
  if (log) return [lo / 1.2, hi * 1.2];
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  return [lo - pad, hi + pad];
}

function linearTicks(lo, hi, count = 6) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  let step = 10 ** Math.floor(Math.log10(span / count));
  const error = (count / span) * step;
  if (error <= 0.15) step *= 10;
  else if (error <= 0.35) step *= 5;
  else if (error <= 0.75) step *= 2;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= lo && t <= hi) ticks.push(Number(t.toPrecision(12)));
    }
  }
  return ticks.length >= 3 ? ticks : linearTicks(lo, hi);
}

function scale([lo, hi], from, to, log) {
  const f = log ? Math.log10 : (v) => v;
  const a = f(lo);
  const b = f(hi);
  const map = (v) => from + ((f(v) - a) / (b - a || 1)) * (to - from);
  map.invert = (p) => {
    const u = a + ((p - from) / (to - from)) * (b - a);
    return log ? 10 ** u : u;
  };
  return map;
}

function tickText(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${Number((v / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

// The points that no other point beats on both axes: x is minimized, y maximized or minimized.
function paretoFront(points, maximizeY) {
  const better = (a, b) => (maximizeY ? a > b : a < b);
  const sorted = [...points].sort((p, q) => p.x - q.x || (better(p.y, q.y) ? -1 : 1));
  const front = [];
  for (const p of sorted) {
    if (front.length === 0 || better(p.y, front[front.length - 1].y)) front.push(p);
  }
  return front;
}

// The index of the first of `sorted` (by x) whose x is above `value`.
function firstAbove(sorted, value) {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid].x > value) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

class ScatterPlot {
  // handlers: limit(value) when the line is dragged, hover(point | null), select(point).
  constructor(svg, tooltip, handlers) {
    this.svg = svg;
    this.tooltip = tooltip;
    this.handlers = handlers;
    this.points = [];
    this.limit = null;
    this.best = null;
    this.hovered = null;
    this.dragging = false;
    svg.addEventListener("pointermove", (e) => this.onMove(e));
    svg.addEventListener("pointerleave", () => this.hover(null));
    svg.addEventListener("pointerup", (e) => this.onUp(e));
    // A drag ends however the pointer goes: a touch that turns into a scroll, a lost capture.
    svg.addEventListener("pointercancel", () => { this.dragging = false; });
    svg.addEventListener("lostpointercapture", () => { this.dragging = false; });
    svg.addEventListener("click", (e) => {
      const near = this.nearest(e);
      if (near) this.handlers.select(near);
    });
  }

  // points: [{number, state, x, y}]; labels: {x, y, unit}; maximizeY; log: a log x axis.
  setData({ points, labels, maximizeY, log }) {
    this.points = points;
    this.unit = labels.unit ? ` ${labels.unit}` : "";
    this.front = paretoFront(points.filter((p) => p.state === "complete"), maximizeY);
    const [width, height] = [VIEW.width, VIEW.height];
    this.xDomain = padded(points.map((p) => p.x), log);
    this.yDomain = padded(points.map((p) => p.y), false);
    this.sx = scale(this.xDomain, VIEW.left, width - VIEW.right, log);
    this.sy = scale(this.yDomain, height - VIEW.bottom, VIEW.top, false);
    this.log = log;
    for (const p of points) {
      p.px = this.sx(p.x);
      p.py = this.sy(p.y);
    }
    this.byX = [...points].sort((p, q) => p.x - q.x);
    this.greyed = null; // the limit the trials' classes were last set for: none yet
    this.render(labels);
  }

  render(labels) {
    const svg = this.svg;
    svg.replaceChildren();
    svg.append(this.axes(labels));
    this.overArea = svgEl("rect", { class: "over-area", y: VIEW.top,
      height: VIEW.height - VIEW.top - VIEW.bottom });
    svg.append(this.overArea);
    const trials = svgEl("g", { class: "trials" });
    this.circles = new Map();
    for (const p of this.points) {
      const circle = svgEl("circle", { class: `trial ${p.state}`, cx: p.px, cy: p.py, r: 3.6,
        "data-number": p.number });
      this.circles.set(p.number, circle);
      trials.append(circle);
    }
    svg.append(trials);
    svg.append(this.frontLayer());
    this.limitLayer = svgEl("g", { class: "limit-layer" });
    svg.append(this.limitLayer);
    this.bestRing = svgEl("circle", { class: "best", r: 9, visibility: "hidden" });
    this.hoverRing = svgEl("circle", { class: "hover", r: 6, visibility: "hidden" });
    svg.append(this.bestRing, this.hoverRing);
    svg.dataset.trials = String(this.points.length);
    this.setLimit(this.limit);
    this.setBest(this.best);
  }

  axes(labels) {
    const g = svgEl("g", { class: "axes" });
    const [x0, x1] = [VIEW.left, VIEW.width - VIEW.right];
    const [y0, y1] = [VIEW.height - VIEW.bottom, VIEW.top];
    const xTicks = this.log ? logTicks(...this.xDomain) : linearTicks(...this.xDomain);
    for (const t of xTicks) {
      const x = this.sx(t);
      g.append(svgEl("line", { class: "grid", x1: x, x2: x, y1: y0, y2: y1 }));
      g.append(svgEl("text", { class: "tick", x, y: y0 + 18, "text-anchor": "middle" },
        tickText(t)));
    }
    for (const t of linearTicks(...this.yDomain)) {
      const y = this.sy(t);
      g.append(svgEl("line", { class: "grid", x1: x0, x2: x1, y1: y, y2: y }));
      g.append(svgEl("text", { class: "tick", x: x0 - 8, y: y + 4, "text-anchor": "end" },
        tickText(t)));
    }
    g.append(svgEl("rect", { class: "frame", x: x0, y: y1, width: x1 - x0, height: y0 - y1 }));
    g.append(svgEl("text", { class: "label", x: (x0 + x1) / 2, y: VIEW.height - 10,
      "text-anchor": "middle" }, labels.x + (this.log ? " (log scale)" : "")));
    g.append(svgEl("text", { class: "label", x: 16, y: (y0 + y1) / 2, "text-anchor": "middle",
      transform: `rotate(-90 16 ${(y0 + y1) / 2})` }, labels.y));
    return g;
  }

  frontLayer() {
    const g = svgEl("g", { class: "front-layer" });
    if (this.front.length === 0) return g;
    let d = `M${this.front[0].px},${this.front[0].py}`;
    for (const p of this.front.slice(1)) d += ` H${p.px} V${p.py}`;
    g.append(svgEl("path", { class: "front-line", d }));
    for (const p of this.front) {
      g.append(svgEl("circle", { class: "front", cx: p.px, cy: p.py, r: 4.6,
        "data-number": p.number }));
    }
    return g;
  }

  // Moves the limit line (null: none) and greys the trials beyond it.
  setLimit(value) {
    this.limit = value;
    if (!this.limitLayer) return;
    this.limitLayer.replaceChildren();
    const [lo, hi] = this.xDomain;
    const inside = value !== null && value >= lo && value <= hi;
    const right = VIEW.width - VIEW.right;
    const x = value === null ? right : value < lo ? VIEW.left : value > hi ? right : this.sx(value);
    this.overArea.setAttribute("x", x);
    this.overArea.setAttribute("width", Math.max(0, right - x));
    this.overArea.setAttribute("visibility", value === null ? "hidden" : "visible");
    this.grey(value);
    if (value === null) return;
    const [top, bottom] = [VIEW.top, VIEW.height - VIEW.bottom];
    this.limitLayer.append(svgEl("line", { class: "limit", x1: x, x2: x, y1: top, y2: bottom }));
    const where = inside ? "" : value < lo ? " (left of the plot)" : " (right of the plot)";
    const text = `≤ ${tickText(value)}${this.unit}${where}`;
    const anchor = x > right - 120 ? "end" : "start";
    this.limitLayer.append(svgEl("text", { class: "limit-text", x: anchor === "end" ? x - 6 : x + 6,
      y: top + 14, "text-anchor": anchor }, text));
    const handle = svgEl("line", { class: "limit-handle", x1: x, x2: x, y1: top, y2: bottom });
    handle.addEventListener("pointerdown", (e) => {
      this.dragging = true;
      this.svg.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    this.limitLayer.append(handle);
  }

  // Greys the trials beyond the limit: only those between the last limit and this one change,
  // so dragging the line over 100,000 trials touches a few of them per move.
  grey(value) {
    const before = this.greyed;
    let changed = this.byX;
    if (before !== undefined && before !== null && value !== null) {
      const [lo, hi] = before < value ? [before, value] : [value, before];
      changed = this.byX.slice(firstAbove(this.byX, lo), firstAbove(this.byX, hi));
    }
    for (const p of changed) {
      this.circles.get(p.number).classList.toggle("over", value !== null && p.x > value);
    }
    this.greyed = value;
  }

  // Rings trial `number` (null: none) as the best under the limit.
  setBest(number) {
    this.best = number;
    if (!this.bestRing) return;
    const p = this.points.find((q) => q.number === number);
    this.bestRing.setAttribute("visibility", p ? "visible" : "hidden");
    if (p) {
      this.bestRing.setAttribute("cx", p.px);
      this.bestRing.setAttribute("cy", p.py);
    }
    if (number === null) delete this.bestRing.dataset.number;
    else this.bestRing.dataset.number = String(number);
  }

  local(event) {
    const point = new DOMPoint(event.clientX, event.clientY);
    return point.matrixTransform(this.svg.getScreenCTM().inverse());
  }

  nearest(event) {
    const { x, y } = this.local(event);
    let found = null;
    let closest = HOVER_RADIUS ** 2;
    for (const p of this.points) {
      const d = (p.px - x) ** 2 + (p.py - y) ** 2;
      if (d <= closest) {
        closest = d;
        found = p;
      }
    }
    return found;
  }

  onMove(event) {
    if (this.dragging) {
      const { x } = this.local(event);
      const clamped = Math.min(Math.max(x, VIEW.left), VIEW.width - VIEW.right);
      this.handlers.limit(this.sx.invert(clamped));
      return;
    }
    this.hover(this.nearest(event), event);
  }

  onUp(event) {
    if (!this.dragging) return;
    this.dragging = false;
    this.svg.releasePointerCapture(event.pointerId);
  }

  hover(point, event) {
    if (!this.hoverRing) return; // nothing drawn yet
    this.hovered = point;
    this.hoverRing.setAttribute("visibility", point ? "visible" : "hidden");
    this.tooltip.hidden = !point;
    if (!point) {
      this.handlers.hover(null);
      return;
    }
    this.hoverRing.setAttribute("cx", point.px);
    this.hoverRing.setAttribute("cy", point.py);
    const box = this.svg.parentElement.getBoundingClientRect();
    const left = event.clientX - box.left + 14;
    this.tooltip.style.left = `${Math.min(left, box.width - 300)}px`;
    this.tooltip.style.top = `${event.clientY - box.top + 14}px`;
    this.handlers.hover(point);
  }
}
