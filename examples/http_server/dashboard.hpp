#pragma once
// The dashboard http_server serves at GET /: one static page, no build step, no network
// resources beyond this server. It polls /cpu, /jobs and /health twice a second, draws
// per-core utilisation on a <canvas>, and lists the jobs with progress bars.
//
// For tests, the page reports what it drew in data attributes: the chart canvas has
// data-samples (samples plotted), data-series (cores drawn) and data-pool-samples (points of
// the workers' own dashed line); each job row has data-job-id,
// data-status and data-progress (percent); <body> has data-updates (successful polls).

#include <string_view>

namespace corun_server {

inline constexpr std::string_view dashboard_html = R"corun_html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>corun · http_server</title>
<style>
  :root { --bg:#0f1419; --card:#182029; --line:#2a3541; --text:#dce3ea; --dim:#8a99a8;
          --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text);
         font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { display:flex; align-items:center; gap:16px; padding:12px 24px;
           border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header h1 span { color:var(--dim); font-weight:400; }
  .pill { padding:2px 10px; border-radius:10px; font-size:12px; font-weight:600;
          background:var(--line); }
  .pill.ok { background:#1f3a28; color:var(--ok); }
  .pill.stopping { background:#3a3120; color:var(--warn); }
  .pill.down { background:#3d1f1f; color:var(--bad); }
  #facts { color:var(--dim); font-size:13px; margin-left:auto; }
  main { display:grid; grid-template-columns: 1fr 340px; gap:16px; padding:16px 24px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  .card h2 { font-size:14px; margin:0 0 10px; color:var(--dim); font-weight:600;
             text-transform:uppercase; letter-spacing:.04em; }
  #cpu-card { grid-column: 1; }
  #submit-card { grid-column: 2; }
  #jobs-card { grid-column: 1 / span 2; }
  canvas#cpu-chart { width:100%; height:300px; display:block; }
  #legend { display:flex; flex-wrap:wrap; gap:6px 14px; margin-top:10px; font-size:13px; }
  #legend .item { display:flex; align-items:center; gap:6px; min-width:120px; }
  #legend .swatch { width:12px; height:12px; border-radius:2px; }
  #legend .meter { width:60px; height:6px; background:var(--line); border-radius:3px; overflow:hidden; }
  #legend .meter div { height:100%; }
  #legend .dash { width:18px; border-top:2px dashed #fff; }
  label { display:block; color:var(--dim); font-size:12px; margin:8px 0 3px; }
  input, select, button { font:inherit; color:var(--text); background:var(--bg);
                          border:1px solid var(--line); border-radius:6px; padding:6px 8px; width:100%; }
  button { background:var(--accent); color:#0b1220; border:none; font-weight:600; cursor:pointer;
           margin-top:12px; }
  button.small { width:auto; margin:0; padding:2px 10px; background:var(--line); color:var(--text);
                 font-weight:400; }
  #submit-msg { margin-top:10px; font-size:13px; min-height:1.4em; }
  #submit-msg.err { color:var(--bad); }
  #submit-msg.ok { color:var(--ok); }
  .hint { color:var(--dim); font-size:12px; margin-top:10px; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th { text-align:left; color:var(--dim); font-weight:600; padding:6px 8px;
       border-bottom:1px solid var(--line); }
  td { padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:middle; }
  td.num { font-variant-numeric: tabular-nums; text-align:right; }
  .bar { position:relative; height:16px; background:var(--bg); border-radius:4px;
         overflow:hidden; min-width:160px; }
  .bar .fill { height:100%; background:var(--accent); transition:width .3s; }
  .bar .pct { position:absolute; inset:0; text-align:center; font-size:11px; line-height:16px; }
  tr[data-status="done"] .bar .fill { background:var(--ok); }
  tr[data-status="failed"] .bar .fill { background:var(--bad); }
  tr[data-status="cancelled"] .bar .fill, tr[data-status="cancelling"] .bar .fill { background:var(--warn); }
  .status { font-weight:600; }
  .status.done { color:var(--ok); } .status.failed { color:var(--bad); }
  .status.cancelled, .status.cancelling { color:var(--warn); } .status.running { color:var(--accent); }
  .result { max-width:360px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  #no-jobs { color:var(--dim); padding:10px 8px; }
</style>
</head>
<body data-updates="0">
<header>
  <h1>corun <span>· http_server</span></h1>
  <span id="server-status" class="pill">connecting</span>
  <span id="facts"></span>
</header>
<main>
  <section class="card" id="cpu-card">
    <h2>CPU utilisation per core · last 60 s · dashed: corun's workers</h2>
    <canvas id="cpu-chart" data-samples="0" data-series="0"></canvas>
    <div id="legend"></div>
  </section>
  <section class="card" id="submit-card">
    <h2>Submit a job</h2>
    <form id="job-form">
      <label for="kind">kind</label>
      <select id="kind">
        <option value="sum">sum — 1 + 2 + … + n</option>
        <option value="primes">primes — count primes ≤ n (CPU-bound)</option>
        <option value="concat">concat — foo_0 foo_1 … joined</option>
        <option value="fail">fail — one slice throws</option>
      </select>
      <label for="n">n</label>
      <input id="n" type="number" min="1" value="100000000">
      <label for="partitions">partitions (slices)</label>
      <input id="partitions" type="number" min="1" value="64">
      <button type="submit">Start</button>
    </form>
    <div id="submit-msg"></div>
    <div class="hint">Each job fills a shared-memory array in the worker processes, then runs
      its kind over the same array, slice by slice. Try primes with n = 20000000.</div>
  </section>
  <section class="card" id="jobs-card">
    <h2>Jobs</h2>
    <table>
      <thead><tr><th>id</th><th>kind</th><th class="num">n</th><th class="num">partitions</th>
        <th>status</th><th>progress</th><th>result</th><th class="num">seconds</th><th></th></tr></thead>
      <tbody id="jobs"></tbody>
    </table>
    <div id="no-jobs">No jobs yet.</div>
  </section>
</main>
<script>
"use strict";
const POLL_MS = 500, WINDOW_S = 60;
const $ = (id) => document.getElementById(id);

function colour(i, n) { return `hsl(${Math.round(360 * i / Math.max(n, 1) + 200) % 360}, 75%, 62%)`; }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "style") e.style.cssText = v; else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// Per-core series: the mean of each core's PUs (one PU per core on most VMs).
function coreSeries(cpu) {
  const pus = cpu.pus || [], busy = cpu.busy || [], times = cpu.times || [];
  const coreOf = (cpu.cores && cpu.cores.length === pus.length) ? cpu.cores : pus.map((_, i) => i);
  const cores = [...new Set(coreOf)].sort((a, b) => a - b);
  const series = cores.map((core) => {
    const cols = coreOf.map((c, i) => (c === core ? i : -1)).filter((i) => i >= 0);
    return busy.map((row) => cols.reduce((s, i) => s + (row[i] || 0), 0) / cols.length);
  });
  return { cores, series, times };
}

// The pool's own share, from the workers' cumulative busy seconds the server samples with the
// monitor: busy seconds gained per second and per worker, over the last second. The per-core
// lines count everything that runs on the machine.
function poolSeries(cpu) {
  const t = cpu.pool_times || [], b = cpu.pool_busy_seconds || [], workers = Math.max(cpu.pool_workers || 1, 1);
  const pts = [];
  for (let i = 1, j = 0; i < t.length; ++i) {
    while (j < i - 1 && t[j + 1] <= t[i] - 1) ++j;
    if (t[i] > t[j]) pts.push({ t: t[i], v: Math.min(100, 100 * (b[i] - b[j]) / (t[i] - t[j]) / workers) });
  }
  return pts;
}

function drawChart(cpu) {
  const canvas = $("cpu-chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 40, right = 10, top = 10, bottom = 24;
  const pw = w - left - right, ph = h - top - bottom;
  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = "#2a3541"; g.fillStyle = "#8a99a8"; g.lineWidth = 1;
  for (const pct of [0, 25, 50, 75, 100]) {
    const y = top + ph - ph * pct / 100;
    g.beginPath(); g.moveTo(left, y + 0.5); g.lineTo(left + pw, y + 0.5); g.stroke();
    g.textAlign = "right"; g.textBaseline = "middle"; g.fillText(pct + "%", left - 6, y);
  }
  const { cores, series, times } = coreSeries(cpu);
  const tEnd = times.length ? times[times.length - 1] : 0;
  const tStart = Math.max(0, tEnd - WINDOW_S);
  g.textAlign = "center"; g.textBaseline = "top";
  for (let s = 0; s <= WINDOW_S; s += 10) {
    const x = left + pw * s / WINDOW_S;
    g.fillText(s === WINDOW_S ? "now" : `-${WINDOW_S - s}s`, x, top + ph + 6);
  }
  let plotted = 0;
  const first = times.findIndex((t) => t >= tStart);
  if (first >= 0) plotted = times.length - first;
  const x = (t) => left + pw * (t - (tEnd - WINDOW_S)) / WINDOW_S;
  const y = (v) => top + ph - ph * Math.min(Math.max(v, 0), 100) / 100;
  series.forEach((values, k) => {
    if (plotted === 0) return;
    const path = new Path2D();
    for (let i = first; i < times.length; ++i) {
      if (i === first) path.moveTo(x(times[i]), y(values[i])); else path.lineTo(x(times[i]), y(values[i]));
    }
    const area = new Path2D(path);
    area.lineTo(x(times[times.length - 1]), y(0)); area.lineTo(x(times[first]), y(0)); area.closePath();
    g.globalAlpha = 0.10; g.fillStyle = colour(k, cores.length); g.fill(area); g.globalAlpha = 1;
    g.strokeStyle = colour(k, cores.length); g.lineWidth = 2; g.lineJoin = "round"; g.stroke(path);
  });
  const pool = poolSeries(cpu).filter((p) => p.t >= tEnd - WINDOW_S && p.t <= tEnd + 1);
  if (plotted > 0 && pool.length > 1) {
    g.strokeStyle = "#ffffff"; g.lineWidth = 1.5; g.setLineDash([5, 4]); g.beginPath();
    pool.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
    g.stroke(); g.setLineDash([]);
  }
  canvas.dataset.poolSamples = String(pool.length);
  if (plotted === 0) {
    g.fillStyle = "#8a99a8"; g.textAlign = "center"; g.textBaseline = "middle";
    g.fillText("waiting for samples…", left + pw / 2, top + ph / 2);
  }
  canvas.dataset.samples = String(plotted);
  canvas.dataset.series = String(plotted ? cores.length : 0);

  const legend = $("legend");
  legend.replaceChildren(...cores.map((core, k) => {
    const v = series[k].length ? series[k][series[k].length - 1] : 0;
    return el("div", { class: "item", "data-core": core },
      el("span", { class: "swatch", style: `background:${colour(k, cores.length)}` }),
      `core ${core}`,
      el("span", { class: "meter" }, el("div", { style: `width:${v.toFixed(0)}%;background:${colour(k, cores.length)}` })),
      `${v.toFixed(0)}%`);
  }), el("div", { class: "item" }, el("span", { class: "dash" }),
         `corun workers ${pool.length ? pool[pool.length - 1].v.toFixed(0) : 0}%`));
}

function fmt(v) { return typeof v === "number" ? v.toLocaleString("en-US") : String(v); }

function resultText(job) {
  if (job.status === "done") {
    if ("result_preview" in job) return `${job.result_preview} (${fmt(job.result_length)} chars)`;
    if ("result" in job) return fmt(job.result);
  }
  if (job.errors && job.errors.length) return job.errors[0].description || job.errors[0].message;
  return "";
}

function renderJobs(list) {
  const rows = list.map((job) => {
    const pct = Math.floor(job.percent);
    const cancel = (job.status === "running")
      ? el("button", { class: "small", onclick: () => cancelJob(job.id) }, "Cancel") : "";
    const res = resultText(job);
    return el("tr", { "data-job-id": job.id, "data-status": job.status, "data-progress": pct },
      el("td", {}, `#${job.id}`), el("td", {}, job.kind),
      el("td", { class: "num" }, fmt(job.n)), el("td", { class: "num" }, fmt(job.partitions)),
      el("td", { class: `status ${job.status}` }, job.status === "running" ? `${job.status} (${job.phase})` : job.status),
      el("td", {}, el("div", { class: "bar" }, el("div", { class: "fill", style: `width:${pct}%` }),
                      el("div", { class: "pct" }, `${pct}% · ${job.progress.done}/${job.progress.total} slices`))),
      el("td", { class: "result", title: res }, res),
      el("td", { class: "num" }, job.seconds.toFixed(2)), el("td", {}, cancel));
  });
  $("jobs").replaceChildren(...rows);
  $("no-jobs").style.display = rows.length ? "none" : "block";
}

function renderHealth(h) {
  const pill = $("server-status");
  pill.textContent = h.status; pill.className = `pill ${h.status === "ok" ? "ok" : "stopping"}`;
  $("facts").textContent = `${h.workers} workers (pids ${h.worker_pids.join(", ")}) · ` +
    `${h.jobs_running} job(s) running · up ${Math.floor(h.uptime_seconds)} s`;
}

async function poll() {
  try {
    const [cpu, jobs, health] = await Promise.all([getJSON("/cpu"), getJSON("/jobs"), getJSON("/health")]);
    drawChart(cpu); renderJobs(jobs.jobs); renderHealth(health);
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  } catch (e) {
    const pill = $("server-status");
    pill.textContent = "unreachable"; pill.className = "pill down";
  }
  setTimeout(poll, POLL_MS);
}

async function cancelJob(id) {
  await fetch(`/jobs/${id}`, { method: "DELETE" });
}

$("job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = $("submit-msg");
  const body = { kind: $("kind").value, n: Number($("n").value), partitions: Number($("partitions").value) };
  try {
    const r = await fetch("/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify(body) });
    const j = await r.json();
    if (r.status === 202) { msg.className = "ok"; msg.textContent = `job #${j.id} started`; }
    else { msg.className = "err"; msg.textContent = `${r.status}: ${j.error}`; }
  } catch (e) { msg.className = "err"; msg.textContent = String(e); }
});

window.addEventListener("resize", () => getJSON("/cpu").then(drawChart).catch(() => {}));
poll();
</script>
</body>
</html>
)corun_html";

}  // namespace corun_server
