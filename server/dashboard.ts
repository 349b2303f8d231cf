/**
 * `GET /`: the live dashboard (DESIGN.md A4). One self-contained HTML page, no build step and no
 * external assets: it polls /v1/streams and /v1/pipelines once a second (events/s from the
 * counters' differences, watermarks, late events, windows) and subscribes to every pipeline's
 * windows over WebSocket to show the latest results. With server.auth configured, open it as
 * `/?token=T`: the page sends the token on its own requests; without it (or with a wrong one) the
 * page says "unauthorized" in place of the tables and stops asking.
 *
 * Every value from the server is inserted as text (textContent, attributes), never as markup:
 * group keys are whatever the events carried. test/server/dashboard.test.ts drives this page in
 * Chromium against a real server; its `data-pipeline` / `data-state` attributes are used there.
 */

import { Reply } from './http.js';
import type { Handler } from './rest.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<!-- no favicon.ico request: the server has none, and Chromium logs the 404 as a console error -->
<link rel="icon" href="data:,">
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2433; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1200px; padding: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
  .muted { color: #667; font-size: 13px; font-weight: normal; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e6eb; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .err { color: #b00020; } .ok { color: #1b7f3b; }
  #problem { margin: 12px 0 0; padding: 10px 12px; background: #fdecee; border: 1px solid #f3b7be; color: #b00020; font-size: 14px; }
  svg { display: block; width: 100%; height: 90px; background: #fff; border: 1px solid #e4e6eb; box-sizing: border-box; }
  .windows { max-height: 260px; overflow: auto; }
</style>
</head>
<body>
<h1>Sluice</h1>
<div class="muted">status: <span id="status">connecting…</span> · updated <span id="updated">—</span></div>
<p id="problem" role="alert" hidden></p>
<main id="live">
<h2>Streams</h2>
<table id="streams"><thead><tr><th>stream</th><th class="n">events</th><th class="n">events/s</th><th class="n">rejected batches</th><th>watermark</th><th>ack</th></tr></thead><tbody></tbody></table>
<svg id="chart" role="img" aria-label="events per second, all streams"></svg>
<h2>Pipelines</h2>
<table id="pipelines"><thead><tr><th>pipeline</th><th>from</th><th>window</th><th class="n">events</th><th class="n">late</th><th class="n">result rows</th></tr></thead><tbody></tbody></table>
<div id="results"></div>
</main>
<script>
"use strict";
// Every value from the server goes into the page as text (textContent, attributes, SVG points
// built here): never as markup, since group keys are whatever the events carried.
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const POLL_MS = 1000, HISTORY = 120, KEEP_ROWS = 50;
const SVG = "http://www.w3.org/2000/svg";
const NUMERIC = new Set(["int32", "int64", "float64"]);
const last = new Map();
/** total events/s per poll, oldest first (not "history": that name is window.history) */
const rates = [];
const subs = new Map();
let stopped = false;
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const fmt = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
const row = (cells) => { const tr = el("tr"); for (const [text, cls] of cells) tr.appendChild(el("td", text, cls)); return tr; };
function windowText(w) { const [k, v] = Object.entries(w)[0]; return typeof v === "string" ? k + " " + v : k + " " + Object.values(v).join(" / "); }
/** The short status, and the whole story in the banner under it when something is wrong. */
function setStatus(text, cls, problem) {
  const s = $("status"); s.textContent = text; s.className = cls;
  const b = $("problem"); b.textContent = problem || ""; b.hidden = !problem;
}

/** 401: the token is missing or wrong, and asking again will not change that. */
class Unauthorized extends Error {}
/** fetch found no server (down, restarting, network): worth asking again. */
class Unreachable extends Error {}

/** The message of an error answer {"error": {"code", "message"}}, or the body's start. */
async function errorText(r) {
  const text = await r.text();
  try { const { error } = JSON.parse(text); if (error && error.message) return error.code + ": " + error.message; } catch {}
  return text.slice(0, 200);
}

async function get(path) {
  let r;
  // a server that takes the request and never answers must not leave "live" on screen
  try { r = await fetch(path, { headers, cache: "no-store", signal: AbortSignal.timeout(10000) }); } catch (e) { throw new Unreachable(e.message); }
  if (r.status === 401) throw new Unauthorized(await errorText(r));
  if (!r.ok) throw new Error(path + ": HTTP " + r.status + " " + (await errorText(r)));
  return r.json();
}

/** Stop polling and say so in place of the tables, which would otherwise stay empty. */
function unauthorized(message) {
  stopped = true;
  $("live").hidden = true;
  for (const s of subs.values()) s.close();
  const why = message.replace(/^SLUICE_UNAUTHORIZED: /, "");
  const how = token ? "reload this page with a valid token: /?token=<token>" : "open this page as /?token=<token>";
  setStatus("unauthorized", "err", "Unauthorized: " + why + " — " + how);
}

async function tick() {
  try {
    const [{ streams }, { pipelines }] = await Promise.all([get("/v1/streams"), get("/v1/pipelines")]);
    const now = performance.now();
    let total = 0;
    const sb = document.querySelector("#streams tbody"); sb.replaceChildren();
    for (const s of streams) {
      const prev = last.get(s.name); let rate = 0;
      if (prev) rate = Math.max(0, (s.events - prev.events) / ((now - prev.t) / 1000));
      last.set(s.name, { events: s.events, t: now }); total += rate;
      const rejected = Object.values(s.batchesRejected).reduce((a, b) => a + b, 0);
      sb.appendChild(row([[s.name], [fmt(s.events), "n"], [fmt(rate), "n"], [fmt(rejected), rejected > 0 ? "n err" : "n"], [s.watermark ?? "—"], [s.ack]]));
    }
    rates.push(total); if (rates.length > HISTORY) rates.shift(); draw();
    const schemas = new Map(streams.map((s) => [s.name, s.schema]));
    const pb = document.querySelector("#pipelines tbody"); pb.replaceChildren();
    for (const p of pipelines) {
      pb.appendChild(row([[p.name], [p.from], [windowText(p.window)], [fmt(p.events), "n"], [fmt(p.lateEvents), p.lateEvents > 0 ? "n err" : "n"], [fmt(p.windowsEmitted), "n"]]));
      if (!subs.has(p.name)) subs.set(p.name, new Subscription(p, schemas.get(p.from) || {}));
    }
    // a pipeline the server no longer has (restarted with another config)
    for (const [name, s] of subs) if (!pipelines.some((p) => p.name === name)) { s.close(); s.box.remove(); subs.delete(name); }
    setStatus("live", "ok");
  } catch (e) {
    if (e instanceof Unauthorized) unauthorized(e.message);
    else if (e instanceof Unreachable) setStatus("unreachable", "err", "The server does not answer (" + e.message + "); retrying every second.");
    else setStatus("error", "err", String(e.message || e));
  }
  $("updated").textContent = new Date().toLocaleTimeString();
}

function draw() {
  const svg = $("chart"); const w = svg.clientWidth || 1150, h = svg.clientHeight || 90;
  const max = Math.max(1, ...rates); const step = w / (HISTORY - 1);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#3358d4"); line.setAttribute("stroke-width", "2");
  line.setAttribute("points", rates.map((v, i) => (i * step).toFixed(1) + "," + (h - 4 - (v / max) * (h - 24)).toFixed(1)).join(" "));
  const label = document.createElementNS(SVG, "text");
  label.setAttribute("x", "6"); label.setAttribute("y", "14"); label.setAttribute("font-size", "12"); label.setAttribute("fill", "#667");
  label.textContent = "events/s: " + fmt(rates[rates.length - 1] || 0) + " (peak " + fmt(Math.max(0, ...rates)) + ")";
  svg.replaceChildren(line, label);
}

/**
 * The latest windows of one pipeline, pushed over /v1/pipelines/{name}/subscribe. The box stays
 * when the socket closes (server restart, or dropped as too slow with 1013): it reconnects with
 * backoff, and says that windows sent meanwhile are missing. data-state tells tests and users
 * where it stands: connecting, open, closed.
 */
class Subscription {
  constructor(p, schema) {
    this.name = p.name; this.retries = 0; this.ws = null; this.timer = 0; this.everOpen = false;
    // the result table's columns (server/window-results.ts): the window, the keys, the aggregates (numbers)
    this.cols = ["window_start", "window_end", ...p.groupBy, ...Object.keys(p.select)];
    this.numeric = new Set([...p.groupBy.filter((k) => NUMERIC.has(schema[k])), ...Object.keys(p.select)]);
    this.box = el("section"); this.box.dataset.pipeline = p.name;
    const h = el("h2", "Latest windows — " + p.name + " "); this.state = el("span", "", "muted"); h.appendChild(this.state); this.box.appendChild(h);
    const wrap = el("div", undefined, "windows"); const table = el("table"); wrap.appendChild(table); this.box.appendChild(wrap);
    const tr = el("tr"); for (const c of this.cols) tr.appendChild(el("th", c, this.numeric.has(c) ? "n" : ""));
    table.createTHead().appendChild(tr); this.body = table.createTBody();
    $("results").appendChild(this.box);
    this.connect();
  }
  setState(state, text) { this.box.dataset.state = state; this.state.textContent = text; }
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = proto + "//" + location.host + "/v1/pipelines/" + encodeURIComponent(this.name) + "/subscribe" + (token ? "?token=" + encodeURIComponent(token) : "");
    this.setState("connecting", "connecting…");
    const ws = new WebSocket(url); this.ws = ws;
    ws.onopen = () => { this.setState("open", this.everOpen ? "reconnected: windows sent while disconnected are not shown" : "subscribed"); this.everOpen = true; this.retries = 0; };
    ws.onmessage = (m) => this.show(JSON.parse(m.data).rows);
    ws.onclose = (e) => {
      if (this.ws !== ws || stopped) return;
      this.ws = null;
      const wait = Math.min(30, 2 ** this.retries++);
      this.setState("closed", "disconnected (" + e.code + (e.reason ? " " + e.reason : "") + "), retrying in " + wait + " s");
      this.timer = setTimeout(() => this.connect(), wait * 1000);
    };
  }
  show(rows) {
    // newest window on top: oldest first into the top of the table
    const latest = rows.slice(-KEEP_ROWS).sort((a, b) => (a.window_start < b.window_start ? -1 : a.window_start > b.window_start ? 1 : 0));
    for (const r of latest) {
      this.body.insertBefore(row(this.cols.map((c) => [r[c] === null || r[c] === undefined ? "null" : String(r[c]), this.numeric.has(c) ? "n" : ""])), this.body.firstChild);
    }
    while (this.body.rows.length > KEEP_ROWS) this.body.deleteRow(-1);
  }
  close() { clearTimeout(this.timer); const ws = this.ws; this.ws = null; if (ws) ws.close(1000); }
}

async function poll() {
  await tick();
  // one request pair at a time: a slow answer must not pile up ticks behind it
  if (!stopped) setTimeout(poll, POLL_MS);
}
poll();
</script>
</body>
</html>
`;

/**
 * The page is inline and talks only to this origin: the policy lets nothing else load, so a
 * value that somehow became markup could still not pull in or send to anything. The token is in
 * the page's URL: no Referer carries it away.
 */
const HEADERS = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

export function dashboard(): Handler {
  return (res) => {
    new Reply(res).send(200, 'text/html; charset=utf-8', PAGE, HEADERS);
  };
}
