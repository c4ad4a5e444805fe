// Shared by the pages: reading the API, building elements (text is never parsed as HTML),
// formatting metrics, and the progress bar.
"use strict";

const np = (() => {
  // One line from an error body: {"detail": "..."}, or pydantic's list of errors (422).
  function problem(response, body) {
    const { detail } = body;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    return detail || `${response.status} ${response.statusText}`;
  }

  async function get(path) {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(problem(response, body));
    return body;
  }

  // el("a", {href: "/", class: "x", dataset: {n: 1}}, "text", child, ...)
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const LABELS = {
    accuracy: "accuracy", loss: "loss", latency_ms: "latency (ms)",
    latency_p90_ms: "latency p90 (ms)", params: "parameters", macs: "MACs",
  };

  function compact(value) {
    const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, unit] of units) {
      if (Math.abs(value) >= size) return `${(value / size).toPrecision(3)}${unit}`;
    }
    return String(value);
  }

  function fmt(metric, value) {
    if (value === null || value === undefined) return "–";
    if (metric === "params" || metric === "macs") return compact(value);
    if (metric === "latency_ms" || metric === "latency_p90_ms") {
      return `${value.toPrecision(3)} ms`;
    }
    if (metric === "accuracy") return value.toFixed(4);
    return value.toPrecision(4);
  }

  function progressBar(summary) {
    const share = summary.budget ? Math.min(1, summary.complete / summary.budget) : 0;
    const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": 0,
      "aria-valuemax": summary.budget, "aria-valuenow": summary.complete });
    const fill = el("span", { class: "fill" });
    fill.style.width = `${(100 * share).toFixed(1)}%`; // a property: CSP refuses style="..."
    bar.append(fill);
    const text = `${summary.complete} / ${summary.budget}`;
    return el("div", { class: "progress" }, bar, el("span", { class: "bar-text" }, text));
  }

  // Asks for an export until it is made (the service makes it in the background and answers
  // 202 meanwhile), then saves it under the name the service gives.
  async function download(link) {
    const label = link.dataset.label;
    link.textContent = "exporting…";
    link.classList.add("busy");
    try {
      let response;
      do {
        response = await fetch(`${link.href}&wait=10`);
      } while (response.status === 202);
      if (!response.ok) {
        throw new Error(problem(response, await response.json().catch(() => ({}))));
      }
      const disposition = response.headers.get("Content-Disposition") || "";
      const named = /filename="?([^";]+)"?/.exec(disposition);
      const url = URL.createObjectURL(await response.blob());
      const save = el("a", { href: url, download: named ? named[1] : "export" });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      link.textContent = label;
    } catch (error) {
      link.textContent = `${label}: ${error.message}`;
    } finally {
      link.classList.remove("busy");
    }
  }

  function exportLinks(search, number) {
    const base = `/searches/${encodeURIComponent(search)}/export?trial=${number}`;
    const button = (format, text, title) => {
      const link = el("a", { class: "button", href: `${base}&format=${format}`, title,
        dataset: { label: text } }, text);
      link.addEventListener("click", (event) => {
        event.preventDefault();
        if (!link.classList.contains("busy")) download(link);
      });
      return link;
    };
    return el("span", { class: "exports" },
      button("state", "weights", "weights and plan, for nasprune.load_subnet"),
      button("onnx", "ONNX", "an ONNX file"));
  }

  async function showService() {
    const where = document.getElementById("service");
    try {
      const [health, version] = await Promise.all([get("/health"), get("/version")]);
      where.textContent = `nasprune ${version.versions.nasprune || ""} · ${health.store}` +
        (health.read_only ? " · read-only" : "");
    } catch (error) {
      where.textContent = `service: ${error.message}`;
    }
  }

  function say(text) {
    const message = document.getElementById("message");
    message.textContent = text;
    message.hidden = !text;
  }

  return { get, el, fmt, LABELS, progressBar, exportLinks, showService, say };
})();
