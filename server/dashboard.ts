/**
 * `GET /`: the live dashboard (DESIGN.md A4). One self-contained HTML page, no build step and no
 * external assets: it polls /v1/streams and /v1/pipelines once a second (events/s from the
 * counters' differences, watermarks, late events, windows) and subscribes to every pipeline's
 * windows over WebSocket to show the latest results. With server.auth configured, open it as
 * `/?token=T`: the page sends the token on its own requests.
 */

import { Reply } from './http.js';
import type { Handler } from './rest.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2433; background: #f6f7f9; }
  body { margin: 0 auto; max-width: 1200px; padding: 16px 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
  .muted { color: #667; font-size: 13px; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e6eb; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  .err { color: #b00020; } .ok { color: #1b7f3b; }
  svg { background: #fff; border: 1px solid #e4e6eb; }
  .windows { max-height: 260px; overflow: auto; }
</style>
</head>
<body>
<h1>Sluice</h1>
<div class="muted">status: <span id="status">connecting…</span> · updated <span id="updated">—</span></div>
<h2>Streams</h2>
<table id="streams"><thead><tr><th>stream</th><th class="n">events</th><th class="n">events/s</th><th class="n">rejected batches</th><th>watermark</th><th>ack</th></tr></thead><tbody></tbody></table>
<svg id="chart" width="1150" height="90" role="img" aria-label="events per second"></svg>
<h2>Pipelines</h2>
<table id="pipelines"><thead><tr><th>pipeline</th><th>from</th><th>window</th><th class="n">events</th><th class="n">late</th><th class="n">result rows</th></tr></thead><tbody></tbody></table>
<div id="results"></div>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const last = new Map();
const history = [];
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const fmt = (n) => Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
const row = (cells) => { const tr = el("tr"); for (const [text, cls] of cells) tr.appendChild(el("td", text, cls)); return tr; };
function windowText(w) { const [k, v] = Object.entries(w)[0]; return typeof v === "string" ? k + " " + v : k + " " + Object.values(v).join(" / "); }
async function get(path) { const r = await fetch(path, { headers }); if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text())); return r.json(); }
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
    history.push(total); if (history.length > 120) history.shift(); draw();
    const pb = document.querySelector("#pipelines tbody"); pb.replaceChildren();
    for (const p of pipelines) {
      pb.appendChild(row([[p.name], [p.from], [windowText(p.window)], [fmt(p.events), "n"], [fmt(p.lateEvents), p.lateEvents > 0 ? "n err" : "n"], [fmt(p.windowsEmitted), "n"]]));
      subscribe(p.name);
    }
    document.getElementById("status").textContent = "live"; document.getElementById("status").className = "ok";
  } catch (e) {
    document.getElementById("status").textContent = String(e.message || e); document.getElementById("status").className = "err";
  }
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
}
function draw() {
  const svg = document.getElementById("chart"); const w = svg.width.baseVal.value, h = svg.height.baseVal.value;
  const max = Math.max(1, ...history); const step = w / 119;
  const pts = history.map((v, i) => (i * step).toFixed(1) + "," + (h - 4 - (v / max) * (h - 20)).toFixed(1)).join(" ");
  svg.innerHTML = '<polyline fill="none" stroke="#3358d4" stroke-width="2" points="' + pts + '"/><text x="6" y="14" font-size="12" fill="#667">events/s (peak ' + fmt(max) + ')</text>';
}
const subs = new Map();
function subscribe(name) {
  if (subs.has(name)) return;
  const box = el("div"); box.appendChild(el("h2", "Latest windows — " + name));
  const wrap = el("div", undefined, "windows"); const table = el("table"); wrap.appendChild(table); box.appendChild(wrap);
  document.getElementById("results").appendChild(box);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = proto + "//" + location.host + "/v1/pipelines/" + encodeURIComponent(name) + "/subscribe" + (token ? "?token=" + encodeURIComponent(token) : "");
  const ws = new WebSocket(url); subs.set(name, ws);
  ws.onmessage = (m) => {
    const { rows } = JSON.parse(m.data); if (rows.length === 0) return;
    const cols = Object.keys(rows[0]);
    if (!table.tHead) { const tr = el("tr"); for (const c of cols) tr.appendChild(el("th", c)); table.createTHead().appendChild(tr); table.createTBody(); }
    const body = table.tBodies[0];
    for (const r of rows.slice(-50)) body.insertBefore(row(cols.map((c) => [r[c] === null ? "null" : String(r[c]), typeof r[c] === "number" ? "n" : ""])), body.firstChild);
    while (body.rows.length > 50) body.deleteRow(-1);
  };
  ws.onclose = () => { subs.delete(name); setTimeout(() => { box.remove(); }, 0); };
}
tick(); setInterval(tick, 1000);
</script>
</body>
</html>
`;

export function dashboard(): Handler {
  return (res) => {
    new Reply(res).send(200, 'text/html; charset=utf-8', PAGE, { 'Cache-Control': 'no-store' });
  };
}
