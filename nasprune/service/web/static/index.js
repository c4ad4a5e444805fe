// The list of searches: their status, progress and best trial, refreshed while any runs.
"use strict";

const REFRESH_MS = 3000;
const PAGE = 100;

async function allSearches() {
  const found = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await np.get(`/searches?limit=${PAGE}&offset=${offset}`);
    found.push(...page.items);
    if (found.length >= page.total || page.items.length === 0) return found;
  }
}

function row(search) {
  const { el } = np;
  const link = el("a", { href: `/ui/searches/${encodeURIComponent(search.name)}` }, search.name);
  const best = search.best
    ? `#${search.best.number}: ${np.fmt("accuracy", search.best.accuracy)}` +
      (search.best.latency_ms === null ? "" : `, ${np.fmt("latency_ms", search.best.latency_ms)}`)
    : "–";
  const extra = [];
  if (search.running) extra.push(`${search.running} running`);
  if (search.failed) extra.push(`${search.failed} failed`);
  if (search.infeasible) extra.push(`${search.infeasible} infeasible`);
  return el("tr", { dataset: { search: search.name } },
    el("td", {}, link),
    el("td", {}, el("span", { class: `status ${search.status}` }, search.status)),
    el("td", {}, np.progressBar(search), el("div", { class: "hint" }, extra.join(", "))),
    el("td", {}, best),
    el("td", {}, search.strategy),
    el("td", {}, search.space));
}

async function refresh() {
  let searches;
  try {
    searches = await allSearches();
    np.say("");
  } catch (error) {
    np.say(`Cannot read the searches: ${error.message}`);
    setTimeout(refresh, REFRESH_MS);
    return;
  }
  document.querySelector("#searches tbody").replaceChildren(...searches.map(row));
  document.getElementById("empty").hidden = searches.length > 0;
  const live = searches.some((s) => ["created", "running"].includes(s.status));
  if (live) setTimeout(refresh, REFRESH_MS);
}

np.showService();
refresh();
