// One search: its progress (server-sent events), the plot of every trial, the limit control,
// the best trial under the limit (asked of /best, as a deployment script would), and the
// Pareto front with export buttons.
"use strict";

const NAME = decodeURIComponent(location.pathname.split("/").pop());
const SEARCH = `/searches/${encodeURIComponent(NAME)}`;
const LIMIT_PARAM = { latency_ms: "max_latency_ms", params: "max_params", macs: "max_macs" };
const INTEGER = new Set(["params", "macs"]);
const SLIDER_STEPS = 1000;
const FRONT_ROWS = 100;

const view = {
  detail: null, raw: null, points: [], x: "latency_ms", y: "accuracy", maximizeY: true,
  log: false, limit: null, best: null, seen: -1, asked: 0, range: [0, 1],
};
const archs = new Map();
const $ = (id) => document.getElementById(id);

// The trials that have both metrics (and, on a log axis, an x above 0).
function columnsToPoints(raw) {
  const points = [];
  for (let i = 0; i < raw.number.length; i++) {
    const x = raw[view.x][i];
    const y = raw[view.y][i];
    if (x === null || y === null || (view.log && !(x > 0))) continue;
    points.push({ number: raw.number[i], state: raw.state[i], x, y, row: i });
  }
  return points;
}

function metricsOf(row) {
  const found = {};
  for (const metric of ["accuracy", "loss", "latency_ms", "latency_p90_ms", "params", "macs"]) {
    found[metric] = view.raw[metric][row];
  }
  return found;
}

// The limit: the config's constraint on the x metric, else the median of the trials.
function defaultLimit() {
  const constraint = (view.detail.config.constraints || {})[view.x];
  if (constraint) return constraint.max;
  const xs = view.points.map((p) => p.x).sort((a, b) => a - b);
  return xs.length ? xs[Math.floor((xs.length - 1) / 2)] : null;
}

// The x range of the drawn trials: the slider's ends (computed once per drawing, not per move).
function xRange(points) {
  if (points.length === 0) return view.log ? [1, 10] : [0, 1];
  const [lo, hi] = extent(points.map((p) => p.x)); // plot.js's
  return [lo, hi > lo ? hi : lo + 1];
}

function toSlider(value) {
  const [lo, hi] = view.range;
  const f = view.log ? Math.log10 : (v) => v;
  const share = (f(Math.min(Math.max(value, lo), hi)) - f(lo)) / (f(hi) - f(lo));
  return Math.round(share * SLIDER_STEPS);
}

function fromSlider(position) {
  const [lo, hi] = view.range;
  const share = position / SLIDER_STEPS;
  return view.log ? 10 ** (Math.log10(lo) + share * (Math.log10(hi) - Math.log10(lo)))
    : lo + share * (hi - lo);
}

// A limit the API takes: a number above 0 (a whole one for params and MACs), or null.
function usable(value) {
  if (value === null) return null;
  const whole = INTEGER.has(view.x) ? Math.floor(value) : value;
  return Number.isFinite(whole) && whole > 0 ? whole : undefined;
}

function showLimit() {
  const limit = view.limit;
  const shown = limit === null ? "" : INTEGER.has(view.x) ? limit : Number(limit.toPrecision(4));
  $("limit").value = shown;
  $("limit").setCustomValidity("");
}

function setLimit(asked, { fromRange = false, fromNumber = false } = {}) {
  const value = usable(asked);
  if (value === undefined) {
    const whole = INTEGER.has(view.x) ? "a whole number" : "a number";
    $("limit").setCustomValidity(`the limit is ${whole} above 0`);
    return;
  }
  $("limit").setCustomValidity("");
  view.limit = value;
  if (!fromNumber) showLimit();
  if (!fromRange && value !== null) $("limit-range").value = toSlider(value);
  $("limit-label").textContent = `limit: ${np.LABELS[view.x]} ≤`;
  view.plot.setLimit(value);
  const query = new URLSearchParams({ x: view.x });
  if (value !== null) query.set("limit", String(value));
  if (view.log) query.set("log", "1");
  history.replaceState(null, "", `?${query}`);
  scheduleBest();
}

let bestTimer = null;
function scheduleBest() {
  clearTimeout(bestTimer);
  bestTimer = setTimeout(refreshBest, 120);
}

// Asks the service for the best trial under the limit (the search's first objective). The
// plot's data-best-for says which axis and limit the ring answers: "latency_ms:0.05".
async function refreshBest() {
  const [x, limit] = [view.x, view.limit];
  const asked = ++view.asked;
  const query = limit === null ? "" : `?${LIMIT_PARAM[x]}=${limit}`;
  let trial = null;
  let failure = null;
  try {
    trial = (await np.get(`${SEARCH}/best${query}`)).trial;
  } catch (error) {
    failure = error.message;
  }
  if (asked !== view.asked) return; // a newer limit was asked for meanwhile
  view.best = trial;
  view.plot.setBest(trial ? trial.number : null);
  np.say(failure === null ? "" : `Cannot read the best trial: ${failure}`);
  $("plot").dataset.bestFor = `${x}:${limit === null ? "none" : limit}`;
  showBest(trial, failure);
  markFront();
}

function metricList(trial) {
  const { el, fmt } = np;
  const shown = ["accuracy", "loss", "latency_ms", "latency_p90_ms", "params", "macs"]
    .filter((m) => trial[m] !== null && trial[m] !== undefined);
  return el("dl", { class: "metrics" },
    shown.map((m) => el("div", {}, el("dt", {}, np.LABELS[m]), el("dd", {}, fmt(m, trial[m])))));
}

function trialCard(trial) {
  const { el } = np;
  return el("div", { class: "card", dataset: { number: trial.number } },
    el("p", {}, el("strong", {}, `Trial #${trial.number}`), ` · ${trial.state} `,
      np.exportLinks(NAME, trial.number)),
    metricList(trial),
    el("pre", { class: "arch" }, JSON.stringify(trial.arch, null, 1)));
}

function showBest(trial, failure = null) {
  const where = $("best");
  if (failure !== null) {
    where.replaceChildren(np.el("p", { class: "hint" }, failure));
    return;
  }
  if (!trial) {
    const text = view.limit === null ? "No complete trial yet."
      : `No complete trial with ${np.LABELS[view.x]} ≤ ${Number(view.limit.toPrecision(4))}.`;
    where.replaceChildren(np.el("p", { class: "hint" }, text));
    return;
  }
  where.replaceChildren(trialCard(trial));
}

let selecting = 0;
async function select(point) {
  $("selected-panel").hidden = false;
  const asked = ++selecting;
  let shown;
  try {
    shown = trialCard(await np.get(`${SEARCH}/trials/${point.number}`));
  } catch (error) {
    shown = np.el("p", { class: "hint" }, error.message);
  }
  if (asked === selecting) $("selected").replaceChildren(shown); // the last click wins
}

async function archOf(number) {
  if (!archs.has(number)) {
    const asked = np.get(`${SEARCH}/trials/${number}`).then((t) => t.arch);
    asked.catch(() => archs.delete(number)); // a failure is not kept: the next hover asks again
    archs.set(number, asked);
  }
  return archs.get(number);
}

function archText(arch) {
  return Object.entries(arch).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n");
}

async function hover(point) {
  const tip = $("tooltip");
  if (!point) return;
  const metrics = metricsOf(point.row);
  const { el, fmt } = np;
  const lines = Object.entries(metrics).filter(([, v]) => v !== null)
    .map(([m, v]) => el("div", {}, `${np.LABELS[m]}: ${fmt(m, v)}`));
  const arch = el("pre", { class: "arch" }, "architecture: loading…");
  tip.replaceChildren(el("strong", {}, `Trial #${point.number}`), ` · ${point.state}`,
    ...lines, arch);
  tip.dataset.number = String(point.number);
  let text;
  try {
    text = archText(await archOf(point.number));
  } catch (error) {
    text = `architecture: ${error.message}`;
  }
  if (tip.dataset.number === String(point.number)) arch.textContent = text;
}

function draw() {
  if (!view.raw) return; // the controls moved before the trials came: main() draws them
  view.points = columnsToPoints(view.raw);
  view.range = xRange(view.points);
  view.plot.setData({
    points: view.points,
    labels: { x: np.LABELS[view.x], y: np.LABELS[view.y], unit: view.x === "latency_ms" ? "ms" : "" },
    maximizeY: view.maximizeY,
    log: view.log,
  });
}

async function loadFront() {
  const front = (await np.get(`${SEARCH}/pareto`)).trials;
  front.sort((a, b) => (a.latency_ms ?? Infinity) - (b.latency_ms ?? Infinity));
  const { el, fmt } = np;
  const rows = front.slice(0, FRONT_ROWS).map((t) => el("tr", { dataset: { number: t.number } },
    el("td", {}, `#${t.number}`), el("td", {}, fmt(view.y, t[view.y])),
    el("td", {}, fmt("latency_ms", t.latency_ms)), el("td", {}, fmt("params", t.params)),
    el("td", {}, fmt("macs", t.macs)), el("td", {}, np.exportLinks(NAME, t.number))));
  $("front").querySelector("tbody").replaceChildren(...rows);
  markFront();
}

function markFront() {
  const best = view.best ? String(view.best.number) : null;
  for (const row of $("front").querySelectorAll("tbody tr")) {
    row.classList.toggle("best", row.dataset.number === best);
  }
}

function showSummary(summary) {
  $("status").textContent = summary.status;
  $("status").className = `status ${summary.status}`;
  $("progress").replaceChildren(np.progressBar(summary));
  const parts = [`${summary.complete} complete of a budget of ${summary.budget}`];
  if (summary.running) parts.push(`${summary.running} running`);
  if (summary.failed) parts.push(`${summary.failed} failed`);
  if (summary.infeasible) parts.push(`${summary.infeasible} infeasible`);
  parts.push(`strategy ${summary.strategy}`, `space ${summary.space}`);
  $("counts").textContent = parts.join(" · ");
}

const RELOAD_GAP = 3; // after a read that took t, the next waits 3t (at least 1 s)
let loading = null;
let again = false;
// Reads the trials again (after new ones finished). Calls that come meanwhile make one more
// read, after a gap, so a big search whose trials finish every second is not read back to back.
async function reload() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    do {
      again = false;
      const started = performance.now();
      try {
        view.raw = await np.get(`${SEARCH}/points`);
        draw();
        await loadFront();
        await refreshBest();
      } catch (error) {
        np.say(`Cannot read the trials: ${error.message}`);
      }
      if (again) {
        const gap = Math.max(1000, RELOAD_GAP * (performance.now() - started));
        await new Promise((resume) => setTimeout(resume, gap));
      }
    } while (again);
  })();
  try {
    await loading;
  } finally {
    loading = null;
  }
}

function follow() {
  const finished = ["completed", "failed", "cancelled"];
  if (finished.includes(view.detail.status)) return;
  const events = new EventSource(`${SEARCH}/events`);
  events.addEventListener("progress", (e) => {
    const now = JSON.parse(e.data);
    showSummary(now);
    const done = now.complete + now.infeasible;
    if (done !== view.seen) {
      view.seen = done;
      reload();
    }
  });
  events.addEventListener("end", () => {
    events.close();
    reload();
  });
}

function wireControls() {
  $("x-metric").addEventListener("change", (e) => {
    view.x = e.target.value;
    draw();
    setLimit(defaultLimit());
  });
  $("log-x").addEventListener("change", (e) => {
    view.log = e.target.checked;
    draw();
    setLimit(view.limit);
  });
  $("limit-range").addEventListener("input", (e) => {
    setLimit(fromSlider(Number(e.target.value)), { fromRange: true });
  });
  $("limit").addEventListener("input", (e) => {
    setLimit(Number.parseFloat(e.target.value), { fromNumber: true });
  });
  $("limit").addEventListener("change", showLimit); // the box shows the limit in use
  $("no-limit").addEventListener("click", () => setLimit(null));
}

async function main() {
  np.showService();
  document.title = `nasprune: ${NAME}`;
  $("crumb").textContent = NAME;
  $("title").textContent = NAME;
  try {
    view.detail = await np.get(SEARCH);
  } catch (error) {
    np.say(`Search ${NAME}: ${error.message}`);
    return;
  }
  showSummary(view.detail);
  $("config").textContent = JSON.stringify(view.detail.config, null, 2);
  const first = view.detail.config.objectives[0];
  view.y = ["accuracy", "loss"].includes(first.metric) ? first.metric : "accuracy";
  view.maximizeY = view.y === first.metric ? first.direction === "maximize" : true;
  $("front-y").textContent = np.LABELS[view.y];
  const asked = new URLSearchParams(location.search);
  if (LIMIT_PARAM[asked.get("x")]) view.x = asked.get("x");
  view.log = asked.get("log") === "1";
  $("x-metric").value = view.x;
  $("log-x").checked = view.log;
  $("limit-range").max = SLIDER_STEPS;
  view.plot = new ScatterPlot($("plot"), $("tooltip"), {
    limit: (value) => setLimit(value), hover, select,
  });
  wireControls();
  try {
    view.raw = await np.get(`${SEARCH}/points`);
  } catch (error) {
    np.say(`Cannot read the trials: ${error.message}`);
    return;
  }
  view.seen = view.detail.complete + view.detail.infeasible;
  draw();
  const given = Number.parseFloat(asked.get("limit"));
  setLimit(asked.has("limit") && given > 0 ? given : defaultLimit());
  await loadFront();
  follow();
}

main().catch((error) => np.say(`Cannot show the search: ${error.message}`));
