// finpulse dashboard, Backtest panel: replay stored history with a grid of detector settings
// (POST /api/v1/backtest), then a table of the settings and a uPlot chart of the trend with each
// setting's alerts. Uses api(), describeError-style messages, cell(), $ and MARKER from dashboard.js.
"use strict";

const BT = { charts: [], run: null, report: null, trend: null, selected: null, subscription: null };
const SHARE = "rgb(214, 39, 40)"; // negative share, as in the trend charts
const BASELINE = "rgb(90, 90, 90)";
const LANE = "rgb(60, 60, 60)"; // alerts of settings other than the selected one
const LABEL_FILL = "rgba(44, 160, 44, 0.18)"; // labelled real events
const WEEK_H = 168;

// --- form -----------------------------------------------------------------------------------------
function utcInput(date) {
  return date.toISOString().slice(0, 16); // datetime-local wants YYYY-MM-DDTHH:MM; we read it as UTC
}

function fromUtcInput(value) {
  return value ? `${value}:00Z` : undefined;
}

function backtestDefaults() {
  const end = new Date();
  $("bt-end").value = utcInput(end);
  $("bt-start").value = utcInput(new Date(end.getTime() - WEEK_H * 3600e3));
}

async function backtestEntities() {
  try {
    const page = await api("/entities", { params: { entity_kind: $("bt-kind").value, limit: 50 } });
    const list = $("bt-entities");
    list.replaceChildren(...page.items.map((e) => new Option(`${e.count} items`, e.entity)));
    if (!$("bt-entity").value && page.items.length) $("bt-entity").value = page.items[0].entity;
  } catch (err) {
    // The trends already report auth and store errors in the header; the panel stays usable.
  }
}

function backtestMode() {
  const bySub = $("bt-mode").value === "subscription";
  $("bt-entity-field").hidden = bySub;
  $("bt-subscription-field").hidden = !bySub;
  if (bySub) $("bt-subscriptions").replaceChildren(...state.subs.map((s) => new Option(s.name || s.channel, s.id)));
}

// "[KIND:NAME] START END [tp|fp]" per line (times UTC); KIND:NAME defaults to the chosen entity.
// Read from the right: a name may hold spaces ("topic:Energy | Oil").
function parseLabels(text, entity) {
  const events = [];
  text.split("\n").forEach((line, i) => {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (!words.length) return;
    const verdict = ["tp", "fp"].includes(words.at(-1)) ? words.pop() : "tp";
    const [start, end] = words.length >= 2 ? words.splice(-2) : [];
    let [kind, name] = entity || [];
    if (words.length) [kind, name] = /^(topic|ticker|source):./.test(words[0]) ? words.join(" ").split(/:(.*)/s) : [];
    if (!kind || !end) {
      throw new Error(`labelled events, line ${i + 1}: write [KIND:NAME] START END [tp|fp], e.g. 2026-03-02T12:20 2026-03-02T12:35`);
    }
    const utc = (t) => (/(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : `${t}Z`);
    events.push({ entity_kind: kind, entity: name, start: utc(start), end: utc(end), verdict });
  });
  return events.length ? events : undefined;
}

function backtestRequest() {
  const bySub = $("bt-mode").value === "subscription";
  const body = { start: fromUtcInput($("bt-start").value), end: fromUtcInput($("bt-end").value), grid: $("bt-grid").value.trim() };
  let entity = null;
  if (bySub) {
    body.subscription_id = $("bt-subscription").value.trim();
    if (!body.subscription_id) throw new Error("choose a subscription to replay");
  } else {
    const name = $("bt-entity").value.trim();
    if (!name) throw new Error("choose an entity to replay");
    entity = [$("bt-kind").value, name];
    body.entity = entity.join(":");
  }
  if ($("bt-max").value !== "") body.max_alerts_per_day = Number($("bt-max").value);
  if ($("bt-rebuild").checked) body.rebuild = true;
  body.labels = parseLabels($("bt-labels").value, entity);
  return JSON.parse(JSON.stringify(body)); // drops the undefined fields
}

// --- running ----------------------------------------------------------------------------------
function backtestState(name, text = "") {
  $("backtest").dataset.state = name;
  const running = name === "running";
  $("bt-run").disabled = running;
  $("bt-run").textContent = running ? "Running…" : "Run backtest";
  $("bt-cancel").hidden = !running;
  $("bt-progress").hidden = !running;
  $("bt-status").textContent = text;
}

function backtestError(message) {
  $("bt-error").textContent = message;
  $("bt-error").hidden = !message;
}

async function runBacktest(event) {
  event.preventDefault();
  if (BT.run) return;
  backtestError("");
  $("bt-results").hidden = true; // never show one run's table under another run's state
  let body;
  try {
    body = backtestRequest();
  } catch (err) {
    backtestState("error");
    return backtestError(err.message);
  }
  const started = performance.now();
  const controller = new AbortController();
  const tick = () => backtestState("running", `running ${((performance.now() - started) / 1000).toFixed(0)} s…`);
  BT.run = { controller, timer: setInterval(tick, 1000) };
  tick();
  try {
    const data = await api("/backtest", { method: "POST", body, signal: controller.signal });
    BT.subscription = body.subscription_id || null; // a live subscription's replay can be applied
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const { results, windows, days } = data.report;
    backtestState("done", `${counted(results.length, "setting")} over ${counted(windows, "window")}, ${held(days)} of history, in ${seconds} s`);
    showBacktest(data);
  } catch (err) {
    backtestState("error", controller.signal.aborted ? "cancelled" : "");
    if (!controller.signal.aborted) backtestError(err.message);
  } finally {
    clearInterval(BT.run.timer);
    BT.run = null;
  }
}

// --- results ----------------------------------------------------------------------------------
const fixed = (x, digits = 2) => (x == null ? "n/a" : x.toFixed(digits));

function duration(seconds) {
  if (seconds == null) return "n/a";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function showBacktest({ report, trend }) {
  BT.report = report;
  BT.trend = trend;
  BT.selected = report.recommended || report.results[0].setting.name;
  const rec = $("bt-recommendation");
  rec.textContent = report.recommended ? `Recommended: ${report.recommendation}` : report.recommendation;
  // A live subscription's replay checks itself against what it sent; refused grid pairs are named.
  const checks = [];
  (report.notes || []).forEach((note) => checks.push(`Note: ${note}.`));
  if (report.live) checks.push(`Live check: ${report.live.summary}.`);
  if (report.skipped.length) checks.push(`Left out (the detector refuses them): ${report.skipped.join("; ")}.`);
  $("bt-checks").textContent = checks.join(" ");
  rec.className = report.recommended ? "" : "error";
  const labels = report.labels.events.filter((e) => e.verdict === "tp").length;
  $("bt-labels-note").textContent = labels
    ? `${counted(labels, "labelled event")} ${report.labels.complete ? "given" : "from analysts' verdicts"}`
    : "no labelled events: precision and recall need labels (mark alerts true/false +, or list events)";
  const body = $("bt-rows");
  body.replaceChildren();
  report.results.forEach((r, i) => {
    const row = body.insertRow();
    const name = r.setting.name;
    row.dataset.setting = name;
    if (name === report.recommended) row.classList.add("recommended");
    cell(row, `#${i + 1}${name === report.recommended ? " ★" : ""}`);
    cell(row, name);
    cell(row, String(r.alerts_fired), "num");
    cell(row, r.alerts_per_day.toFixed(2), "num");
    cell(row, `${r.true_positives} / ${r.false_positives} / ${r.unlabelled}`, "num"); // precision's counts
    cell(row, `${r.events_detected} / ${r.labelled_events}`, "num");
    cell(row, duration(r.median_delay_s), "num");
    cell(row, fixed(r.precision), "num");
    cell(row, fixed(r.recall), "num");
    row.onclick = () => selectSetting(name);
  });
  $("bt-results").hidden = false;
  $("bt-apply-row").hidden = !BT.subscription;
  $("bt-apply-status").textContent = "";
  selectSetting(BT.selected);
}

function selectSetting(name) {
  BT.selected = name;
  for (const row of $("bt-rows").rows) row.setAttribute("aria-selected", String(row.dataset.setting === name));
  $("bt-apply").textContent = `Apply ${name} to subscription ${BT.subscription}`;
  drawBacktest();
}

// --- apply: the selected setting's detector parameters into the live subscription -----------------
async function applySetting() {
  const sub = BT.subscription;
  const params = BT.report.results.find((r) => r.setting.name === BT.selected).setting.params;
  const status = $("bt-apply-status");
  status.className = "";
  try {
    const path = `/subscriptions/${encodeURIComponent(sub)}`;
    let etag;
    const live = await api(path, { onEtag: (e) => (etag = e) });
    const changed = Object.keys(params).filter((k) => JSON.stringify(live.detector[k]) !== JSON.stringify(params[k]));
    if (!changed.length) {
      status.textContent = `${sub} already uses this setting`;
      return;
    }
    await api(path, { method: "PUT", body: { ...live, detector: params }, ifMatch: etag }); // keeps a mute made meanwhile
    const steps = changed.map((k) => `${k} ${live.detector[k]} → ${params[k]}`).join(", ");
    await loadSubscriptions(sub); // the editor shows the subscription as it is now, before "applied" says so
    status.textContent = `applied to ${sub}: ${steps}; the worker and the dispatcher reload it within their refresh interval`;
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
  }
}

// --- chart: the trend (share, baseline, labels, the selected setting's alerts) over one lane per setting
// Each kind's share and baseline over the windows of every kind. A kind's windows follow each
// other at its shortest step; where one is missing (no stories in it) a null at its end breaks the
// kind's lines. At the other kinds' times its values are undefined, which uPlot draws across.
function backtestSeries(report, trend) {
  const points = trend.points;
  const kinds = [...new Set(points.map((p) => p.window_kind))];
  const end = (p) => Date.parse(p.window_end) / 1000;
  const ofKind = new Map(kinds.map((k) => [k, points.filter((p) => p.window_kind === k).sort((a, b) => end(a) - end(b))]));
  const missing = new Map(kinds.map((k) => [k, missingWindows(ofKind.get(k).map(end))]));
  const xs = [...new Set([...points.map(end), ...[...missing.values()].flat()])].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const column = (fill) => new Array(xs.length).fill(fill);
  const trendData = [xs];
  for (const kind of kinds) {
    const share = column(undefined);
    const base = column(undefined);
    for (const x of missing.get(kind)) share[at.get(x)] = base[at.get(x)] = null;
    for (const p of ofKind.get(kind)) {
      const i = at.get(end(p));
      share[i] = p.negative_share;
      base[i] = p.baseline_negative_share;
    }
    trendData.push(share, base);
  }
  const mine = (e) => e.entity_kind === trend.entity_kind && e.entity === trend.entity; // both as windows name it
  const fired = report.results.map((r) => r.events.filter((e) => e.state === "fired" && mine(e)).map((e) => Date.parse(e.window_end) / 1000));
  const laneData = [xs, ...fired.map((ts, row) => {
    const lane = column(null);
    for (const t of ts) if (at.has(t)) lane[at.get(t)] = row;
    return lane;
  })];
  return { kinds, trendData, laneData, fired };
}

// How much history the rates per day are taken over (the report's span): "6 hours", "6.5 days".
const held = (days) => (days < 2 ? `${+(days * 24).toFixed(1)} hours` : `${+days.toFixed(1)} days`);

// The end of the first window missing after each run of windows (ends ascending, in seconds).
function missingWindows(ends) {
  const steps = ends.slice(1).map((x, i) => x - ends[i]).filter((d) => d > 0);
  const step = Math.min(...steps);
  return ends.slice(1).flatMap((x, i) => (x - ends[i] > 1.5 * step ? [ends[i] + step] : []));
}

function drawBacktest() {
  for (const c of BT.charts) c.destroy();
  BT.charts = [];
  const box = $("bt-chart");
  box.replaceChildren();
  const { report, trend } = BT;
  if (!trend.points.length) {
    box.textContent = "No windows to draw.";
    return;
  }
  const { kinds, trendData, laneData, fired } = backtestSeries(report, trend);
  const names = report.results.map((r) => r.setting.name);
  const selectedRow = names.indexOf(BT.selected);
  const marks = fired[selectedRow] || [];
  const labels = report.labels.events.filter((e) => e.verdict === "tp")
    .map((e) => [Date.parse(e.start) / 1000, Date.parse(e.end) / 1000]);
  const title = document.createElement("h3");
  title.textContent = `${trend.entity_kind} ${trend.entity}: negative share (red), baseline (dashed), labelled events (green); ` +
    `alerts of ${BT.selected} (magenta lines); one row of alerts per setting below`;
  box.append(title);
  const width = Math.max(640, box.clientWidth || 900);
  const common = {
    width,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // axes in UTC, like the API
    axes: [{ ...UTC_AXIS, space: 70 }], // 24-hour UTC, as the trend charts (dashboard.js)
    cursor: { sync: { key: "backtest" } }, // one cursor across the trend and the lanes
  };
  const trendSeries = [{}];
  for (const kind of kinds) {
    trendSeries.push({ label: `share (${kind})`, scale: "share", stroke: SHARE, width: 2 },
      { label: `baseline (${kind})`, scale: "share", stroke: BASELINE, width: 1.5, dash: [6, 4] });
  }
  const trendChart = new uPlot({
    ...common, height: 240,
    scales: { x: { time: true }, share: { range: [0, 1] } },
    axes: [...common.axes, { scale: "share", label: "negative share", size: 70 }],
    series: trendSeries,
    hooks: { drawClear: [(u) => shadeLabels(u, labels)], draw: [(u) => drawMarkers(u, marks)] },
  }, trendData, box);
  const laneChart = new uPlot({
    ...common, height: Math.min(360, 40 + 24 * names.length),
    legend: { show: false },
    scales: { x: { time: true }, row: { range: [-0.5, names.length - 0.5], dir: -1 } },
    axes: [...common.axes, {
      scale: "row", label: "setting", size: 70, grid: { show: false },
      splits: () => names.map((_, i) => i),
      values: (u, splits) => splits.map((i) => `#${i + 1}${names[i] === report.recommended ? " ★" : ""}`),
    }],
    series: [{}, ...names.map((name, i) => {
      const colour = i === selectedRow ? MARKER : LANE;
      return { label: name, scale: "row", stroke: colour, paths: () => null,
        points: { show: true, size: i === selectedRow ? 11 : 8, width: 1, stroke: colour, fill: colour } };
    })],
  }, laneData, box);
  trendChart.root.dataset.chart = "trend";
  laneChart.root.dataset.chart = "lanes";
  BT.charts.push(trendChart, laneChart);
  box.dataset.markers = String(marks.length);
}

function shadeLabels(u, spans) {
  const ctx = u.ctx;
  ctx.save();
  ctx.fillStyle = LABEL_FILL;
  for (const [start, end] of spans) {
    const left = Math.max(u.bbox.left, u.valToPos(start, "x", true));
    const right = Math.min(u.bbox.left + u.bbox.width, u.valToPos(end, "x", true));
    if (right > left) ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
  }
  ctx.restore();
}

// --- wiring ---------------------------------------------------------------------------------------
backtestDefaults();
backtestEntities();
$("bt-form").onsubmit = runBacktest;
$("bt-cancel").onclick = () => BT.run && BT.run.controller.abort();
$("bt-mode").onchange = backtestMode;
$("bt-apply").onclick = applySetting;
$("bt-kind").onchange = () => { $("bt-entity").value = ""; backtestEntities(); };
