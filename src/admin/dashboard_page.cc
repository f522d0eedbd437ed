// The dashboard page (dashboard.h): markup, style and script in one
// document, served from the binary. The static table of routes goes between
// the head and the tail; the script replaces it with live views.

namespace sidecar::admin {

extern const char* const kDashboardHead;
extern const char* const kDashboardTail;

const char* const kDashboardHead = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sidecar</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:10px 16px;background:#1d2430;color:#fff}
header h1{font-size:17px;margin:0}
.badge{padding:2px 8px;border-radius:10px;background:#667;font-size:12px}
.ok{background:#1f8a4c}.bad{background:#c0392b}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px;padding:12px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px;overflow-x:auto}
h2{font-size:14px;margin:0 0 6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f3;white-space:nowrap}
th{font-weight:600;color:#556}
td.n{text-align:right}
svg.spark{width:90px;height:20px;vertical-align:middle}
svg.spark polyline{fill:none;stroke:#2d6cdf;stroke-width:1.5}
.e5{color:#c0392b}.e4{color:#b9770e}
pre{margin:0;font-size:12px;white-space:pre-wrap;word-break:break-all}
@media (min-width:1100px){#routes-box,#errors-box{grid-column:span 2}}
@media (max-width:480px){main{grid-template-columns:1fr;padding:6px}th,td{padding:2px 4px}}
</style></head><body>
<header><h1>sidecar</h1><span id="ready" class="badge">loading</span>
<span id="updated" class="badge">static</span></header>
<main>
<section id="static"><h2>Routes (totals at page load)</h2>
)HTML";

const char* const kDashboardTail = R"HTML(
</section>
<section id="listeners-box" hidden><h2>Listeners</h2><table id="listeners"></table></section>
<section id="routes-box" hidden><h2>Routes</h2><table id="routes"></table></section>
<section id="top-box" hidden><h2>Top routes</h2><table id="top-routes"></table></section>
<section id="clusters-box" hidden><h2>Clusters</h2><table id="clusters"></table></section>
<section id="app-box" hidden><h2>App</h2><table id="app"></table></section>
<section id="modules-box" hidden><h2>Modules</h2><table id="modules"></table></section>
<section id="errors-box" hidden><h2>Recent errors (5xx)</h2><table id="errors"></table></section>
</main>
<script>
"use strict";
const hist = {}; const rpsHist = {}; let prev = null;
const $ = id => document.getElementById(id);
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const fmt = (v, d) => v == null || isNaN(v) ? "-" : v.toFixed(d);
function ms(s) { return s == null ? "-" : s < 0.001 ? (s * 1e6).toFixed(0) + "µs" : s < 1 ? (s * 1e3).toFixed(1) + "ms" : s.toFixed(2) + "s"; }
function spark(values) {
  if (!values || values.length < 2) return "";
  const max = Math.max(...values, 1e-9), n = values.length;
  const pts = values.map((v, i) => (i * 90 / (n - 1)).toFixed(1) + "," + (19 - v / max * 18).toFixed(1)).join(" ");
  return '<svg class="spark" viewBox="0 0 90 20"><polyline points="' + pts + '"/></svg>';
}
function metric(stats, name) { const m = stats.metrics.find(x => x.name === name); return m ? m.samples : []; }
function quantile(now, old, q) {
  const les = Object.keys(now).filter(k => k !== "+Inf").map(Number).sort((a, b) => a - b);
  const d = k => now[k] - (old ? old[k] : 0);
  const total = d("+Inf"); if (!(total > 0)) return null;
  const rank = q * total; let lastB = 0, lastC = 0;
  for (const b of les) {
    const c = d(String(b));
    if (c >= rank) return lastB + (b - lastB) * (c > lastC ? (rank - lastC) / (c - lastC) : 1);
    lastB = b; lastC = c;
  }
  return les[les.length - 1];
}
function table(el, head, rows) {
  $(el).innerHTML = "<thead><tr>" + head.map(h => "<th>" + h + "</th>").join("") + "</tr></thead><tbody>" +
    (rows.length ? rows.join("") : '<tr><td colspan="' + head.length + '">none</td></tr>') + "</tbody>";
  $(el).closest("section").hidden = false;
}
function render(s) {
  const t = s.time;
  $("ready").textContent = s.ready ? "ready" : s.ready_reason || "not ready";
  $("ready").className = "badge " + (s.ready ? "ok" : "bad");
  $("updated").textContent = new Date(t * 1000).toLocaleTimeString();
  $("static").hidden = true;
  // Per route: totals, classes, durations.
  const cur = {};
  for (const x of metric(s.stats, "sidecar_http_requests_total")) {
    const k = x.labels.listener + "\u0000" + (x.labels.route || "");
    const r = cur[k] || (cur[k] = {listener: x.labels.listener, route: x.labels.route || "", cluster: x.labels.cluster || "", total: 0, cls: {}});
    r.total += x.value; r.cls[x.labels.code_class] = (r.cls[x.labels.code_class] || 0) + x.value;
  }
  for (const x of metric(s.stats, "sidecar_http_request_duration_seconds")) {
    const k = x.labels.listener + "\u0000" + (x.labels.route || "");
    const r = cur[k] || (cur[k] = {listener: x.labels.listener, route: x.labels.route || "", cluster: x.labels.cluster || "", total: 0, cls: {}});
    r.buckets = x.buckets;
  }
  const routes = [], listeners = {};
  for (const k in cur) {
    const r = cur[k], h = hist[k] || (hist[k] = []);
    h.push({t, total: r.total, cls: r.cls, buckets: r.buckets}); if (h.length > 11) h.shift();
    const p = h.length > 1 ? h[h.length - 2] : null, o = h[0];
    r.rps = p ? (r.total - p.total) / Math.max(t - p.t, 1e-3) : 0;
    const rh = rpsHist[k] || (rpsHist[k] = []); rh.push(r.rps); if (rh.length > 60) rh.shift();
    r.spark = rh.slice();
    const win = Math.max(t - o.t, 1e-3);
    r.rate = c => o === h[h.length - 1] ? 0 : ((r.cls[c] || 0) - (o.cls[c] || 0)) / win;
    if (r.buckets) for (const q of [0.5, 0.9, 0.99]) r["p" + q * 100] = quantile(r.buckets, o === h[h.length - 1] ? null : o.buckets, q);
    routes.push(r);
    const l = listeners[r.listener] || (listeners[r.listener] = {rps: 0, total: 0, e5: 0, spark: []});
    l.rps += r.rps; l.total += r.total; l.e5 += r.rate("5xx");
    r.spark.forEach((v, i) => l.spark[i] = (l.spark[i] || 0) + v);
  }
  table("listeners", ["listener", "req/s", "", "5xx/s", "total"], Object.entries(listeners).map(([n, l]) =>
    "<tr><td>" + esc(n) + '</td><td class="n">' + fmt(l.rps, 1) + "</td><td>" + spark(l.spark) + '</td><td class="n">' + fmt(l.e5, 2) + '</td><td class="n">' + l.total + "</td></tr>"));
  table("routes", ["listener", "route", "req/s", "", "p50", "p90", "p99", "2xx/s", "4xx/s", "5xx/s"], routes.map(r =>
    "<tr><td>" + esc(r.listener) + "</td><td>" + esc(r.route) + '</td><td class="n">' + fmt(r.rps, 1) + "</td><td>" + spark(r.spark) +
    '</td><td class="n">' + ms(r.p50) + '</td><td class="n">' + ms(r.p90) + '</td><td class="n">' + ms(r.p99) +
    '</td><td class="n">' + fmt(r.rate("2xx"), 1) + '</td><td class="n e4">' + fmt(r.rate("4xx"), 1) + '</td><td class="n e5">' + fmt(r.rate("5xx"), 1) + "</td></tr>"));
  table("top-routes", ["route", "cluster", "req/s"], routes.slice().sort((a, b) => b.rps - a.rps).slice(0, 5).map(r =>
    "<tr><td>" + esc(r.route) + "</td><td>" + esc(r.cluster) + '</td><td class="n">' + fmt(r.rps, 1) + "</td></tr>"));
  // Clusters and endpoints: health checks and outlier detection say
  // unhealthy / ejected; failing: connect failures since the last snapshot.
  const crow = [];
  for (const c of (s.clusters && s.clusters.clusters) || []) for (const e of c.endpoints) {
    const k = c.name + "\u0000" + e.address, p = prev && prev.ep[k];
    const failing = p && (e.connect_failures || 0) > (p.connect_failures || 0);
    const state = e.outlier && e.outlier.ejected ? "ejected" : e.healthy === false ? "unhealthy" : failing ? "failing" : "";
    crow.push("<tr><td>" + esc(c.name) + "</td><td>" + esc(e.address) + "</td><td>" + (state ? '<span class="e5">' + state + "</span>" : "ok") +
      '</td><td class="n">' + (e.requests_total || 0) + '</td><td class="n">' + (e.requests_5xx || 0) + '</td><td class="n">' + (e.connect_failures || 0) +
      '</td><td class="n">' + (e.connections_active || 0) + "</td></tr>");
  }
  table("clusters", ["cluster", "endpoint", "health", "requests", "5xx", "connect failures", "connections"], crow);
  // The app's processes.
  const cpu = metric(s.stats, "sidecar_app_cpu_seconds_total").reduce((a, x) => a + x.value, 0);
  const rss = metric(s.stats, "sidecar_app_resident_memory_bytes").reduce((a, x) => a + x.value, 0);
  const up = metric(s.stats, "sidecar_app_up");
  const cpuPct = prev && prev.cpu != null ? (cpu - prev.cpu) / Math.max(t - prev.t, 1e-3) * 100 : null;
  table("app", ["up", "CPU", "memory"], up.length || cpu || rss ? ["<tr><td>" + (up.length ? (up[0].value ? "yes" : "no") : "-") +
    '</td><td class="n">' + fmt(cpuPct, 1) + '%</td><td class="n">' + (rss / 1048576).toFixed(1) + " MiB</td></tr>"] : []);
  table("modules", ["module", "status"], Object.entries(s.modules || {}).map(([k, v]) =>
    "<tr><td>" + esc(k) + "</td><td><pre>" + esc(JSON.stringify(v).slice(0, 300)) + "</pre></td></tr>"));
  table("errors", ["time", "status", "route", "path", "flags", "trace"], (s.errors || []).slice().reverse().map(e =>
    "<tr><td>" + esc(e.start_time.slice(11, 23)) + '</td><td class="e5">' + e.status + "</td><td>" + esc(e.route) + "</td><td>" + esc(e.path) +
    "</td><td>" + esc(e.response_flags) + "</td><td>" + esc(e.trace_id.slice(0, 8)) + "</td></tr>"));
  const ep = {};
  for (const c of (s.clusters && s.clusters.clusters) || []) for (const e of c.endpoints) ep[c.name + "\u0000" + e.address] = e;
  prev = {t, cpu, ep};
}
function onEvent(data) { try { render(JSON.parse(data)); } catch (e) { console.error(e); } }
// A first snapshot at once, then the live stream.
fetch("stream?once=1").then(r => r.text()).then(t => {
  const m = /^data: (.*)$/m.exec(t); if (m) onEvent(m[1]);
}).catch(() => {}).finally(() => setTimeout(() => {
  if (!window.EventSource) return;
  const es = new EventSource("stream");
  es.addEventListener("snapshot", ev => onEvent(ev.data));
  es.onerror = () => { $("updated").textContent = "reconnecting"; };
}, 1000));
</script></body></html>
)HTML";

}  // namespace sidecar::admin
