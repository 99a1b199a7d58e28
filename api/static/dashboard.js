// finpulse dashboard: trends (uPlot) with alert markers, movers, recent alerts, headlines, sources, subscription editor.
// Talks only to this server's /api/v1; all data goes into the page through textContent, never HTML.
"use strict";

// Relative to the page, so the dashboard works under a proxy's path prefix (/finpulse/ -> this server's /).
const API = "api/v1";
const MARKER = "rgb(255, 0, 160)"; // alert markers (the screenshot test looks for this colour)
const $ = (id) => document.getElementById(id);
// again: a refresh asked for while one loads ({ subscriptions }), or false.
// step: the charts' bucket size, "auto" resolved (chosenStep).
const state = { subs: [], editing: null, opening: null, charts: [], alert: null, loading: false, again: false, updated: 0, tried: 0, timer: null, step: "hour" };

function token() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    localStorage.setItem("finpulse-token", fromUrl);
    params.delete("token"); // out of the address bar: not bookmarked, shared or sent again
    const rest = params.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
  }
  return localStorage.getItem("finpulse-token") || "";
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// ifMatch: the ETag of the copy a PUT changes (refused with 412 if written since);
// onEtag: called with the response's ETag.
async function api(path, { method = "GET", params = {}, body, signal, blob = false, ifMatch, onEtag } = {}) {
  const url = new URL(API + path, document.baseURI);
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) url.searchParams.set(k, v);
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  if (ifMatch) headers["If-Match"] = ifMatch;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    $("auth").hidden = false;
    throw new Error("this API needs a token: enter it above");
  }
  if (blob && res.ok) return res.blob();
  const text = res.status === 204 ? "" : await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    // A proxy's or server's plain-text error page: show its status and start, not a JSON parse error.
    throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new Error(describeError(data));
  if (onEtag) onEtag(res.headers.get("ETag"));
  return data;
}

function describeError(data) {
  const detail = data && data.detail;
  if (Array.isArray(detail)) {
    // FastAPI's loc starts with where the value came from ("body", "query"): the field name is what helps.
    const where = (d) => (d.loc || []).filter((part, i) => i > 0 || !["body", "query"].includes(part)).join(".");
    return detail.map((d) => (where(d) ? `${where(d)}: ${d.msg}` : d.msg)).join("\n");
  }
  return String(detail || "request failed");
}

// The search box: only the stories whose titles hold each of its words, in every panel but alerts.
function searched() {
  const search = $("search").value.trim();
  return search ? { search } : {};
}

function range() {
  if ($("range").value === "custom") {
    // datetime-local values carry no zone: the dashboard, like the API, reads them as UTC.
    if (!$("from").value) throw new Error("pick the start of the range (UTC)");
    const start = new Date($("from").value + "Z");
    const end = $("to").value ? new Date($("to").value + "Z") : new Date();
    if (!(start < end)) throw new Error("the range's start must be before its end");
    return { start: start.toISOString(), end: end.toISOString() };
  }
  const end = new Date();
  const start = new Date(end.getTime() - Number($("range").value) * 3600e3);
  return { start: start.toISOString(), end: end.toISOString() };
}

// The view lives in the address (?kind=ticker&entity=ACME&range=custom&from=...), so a link shows
// the same trend to whoever opens it; the API token never goes there.
const VIEW = {
  kind: "kind", entity: "entity", range: "range", from: "from", to: "to", step: "granularity", live: "live",
  q: "search", headlines: "headline-sentiment",
};

function readView() {
  const params = new URLSearchParams(location.search);
  for (const [key, id] of Object.entries(VIEW)) {
    const value = params.get(key);
    if (value === null) continue;
    if (id === "entity") $(id).add(new Option(value, value));
    else if ($(id).tagName === "SELECT" && ![...$(id).options].some((o) => o.value === value)) continue; // an old or mistyped link
    $(id).value = value;
  }
  $("custom-range").hidden = $("range").value !== "custom";
}

function writeView() {
  const params = new URLSearchParams();
  for (const [key, id] of Object.entries(VIEW)) {
    const custom = id === "from" || id === "to";
    const usual = $(id).tagName === "SELECT" && $(id).selectedOptions[0]?.defaultSelected; // short links
    if ($(id).value && (!custom || $("range").value === "custom") && !usual) params.set(key, $(id).value);
  }
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

// --- trends -------------------------------------------------------------------------------
async function loadEntities() {
  const kind = $("kind").value;
  const page = await api("/entities", { params: { entity_kind: kind, ...range(), ...searched(), limit: 50 } });
  const select = $("entity");
  const keep = select.value;
  select.replaceChildren(new Option("busiest four", ""));
  for (const e of page.items) {
    const label = `${e.entity} (${e.count} · ${Math.round(e.negative_share * 100)}% negative)`;
    select.add(new Option(label, e.entity));
  }
  if (keep && !page.items.some((e) => e.entity === keep)) select.add(new Option(`${keep} (not among the busiest)`, keep));
  select.value = keep;
  return page.items;
}

async function loadTrends() {
  const [entities, step] = await Promise.all([loadEntities(), chosenStep()]);
  state.step = step;
  const chosen = $("entity").value ? [$("entity").value] : entities.slice(0, 4).map((e) => e.entity);
  // The old charts' height is kept while the new ones load, so a live refresh does not make the page jump.
  $("charts").style.minHeight = `${$("charts").offsetHeight}px`;
  for (const c of state.charts) c.destroy();
  state.charts = [];
  $("charts").replaceChildren();
  if (!chosen.length) {
    $("charts").style.minHeight = "";
    $("charts").textContent = searched().search
      ? `No stories in this range whose titles hold “${searched().search}”.`
      : "No scored items in this range yet.";
    return;
  }
  // One entity's chart takes the panel's whole width, several share it side by side.
  $("charts").classList.toggle("single", chosen.length === 1);
  for (const entity of chosen) await drawChart($("kind").value, entity);
  $("charts").style.minHeight = "";
}

// The charts follow their boxes' widths as the window (or the panel's columns) change.
function chartSize(box) {
  return { width: Math.max(320, box.clientWidth), height: $("charts").classList.contains("single") ? 300 : 240 };
}

new ResizeObserver(() => {
  for (const chart of state.charts) {
    const size = chartSize(chart.root.parentElement);
    if (size.width !== chart.width || size.height !== chart.height) chart.setSize(size);
  }
}).observe($("charts"));

// Whole numbers of items on their axis (uPlot's default steps include 2.5).
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];

// "1 alert", "2 alerts".
const counted = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

// One entity's trend as the view asks for it; without one, every entity of the kind (the CSV). The
// range as chosen, as the other panels, the CLI and the API count it (going back to the first
// bucket's start counted stories the entity list and movers did not); the title says where the
// first bucket holds only part of its time.
const trendParams = (entity) => ({
  entity_kind: $("kind").value, ...(entity ? { entity } : {}), ...range(), ...searched(), granularity: step(),
});
// "; first day from 09:00 UTC" when a chart by days starts inside its first day (its first bar is
// part of a day); a part of the first 5 minutes or hour is one bar of many: not said.
function partialStart(start, granularity) {
  const t = Date.parse(start);
  if (granularity !== "day" || t % (STEP_S.day * 1000) === 0) return "";
  return `; first day from ${new Date(t).toISOString().slice(11, 16)} UTC`;
}
// The chosen step, or auto's pick for the charts shown.
const step = () => ($("granularity").value === "auto" ? state.step : $("granularity").value);

const STEP_S = { "5min": 300, hour: 3600, day: 86400 };

// The start of the bucket holding the last moment before `t` (epoch seconds): buckets count from
// midnight UTC (the store's origin, 2000-01-03, is a whole number of days after the epoch).
const bucketBefore = (t, step) => Math.floor((t - 0.001) / step) * step;

// Time axes in 24-hour UTC (uPlot's default ticks are "2pm"): uPlot's tick table, per tick step the
// label, then what is added below it where the year / month / day / hour / minute / second changes.
const UTC_TICKS = [
  [365 * 86400, "{YYYY}", null, null, null, null, null, null, 1],
  [28 * 86400, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [86400, "{M}/{D}", "\n{YYYY}", null, null, null, null, null, 1],
  [60, "{HH}:{mm}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
  [1, "{HH}:{mm}:{ss}", "\n{M}/{D}/{YY}", null, "\n{M}/{D}", null, null, null, 1],
];
const UTC_AXIS = { label: "time (UTC)", values: UTC_TICKS };
const UTC_LEGEND = { label: "time", value: "{YYYY}-{MM}-{DD} {HH}:{mm} UTC" };

// Step "auto": the API's pick for the range (GET /granularity, `finpulse history`'s rule): 5 minutes
// when its stories span a day or less, hours up to 31 days, days beyond. A young store's week of
// hours was a chart of two points. The chosen entity's stories alone, as `history trend` picks:
// the whole kind's span gave a quiet entity's day of news a few hourly points.
async function chosenStep() {
  const auto = $("granularity").options[0];
  if ($("granularity").value !== "auto") return $("granularity").value;
  const entity = $("entity").value;
  const params = { entity_kind: $("kind").value, ...(entity ? { entity } : {}), ...range(), ...searched() };
  const { granularity: picked } = await api("/granularity", { params });
  auto.textContent = `auto: ${$("granularity").querySelector(`option[value="${picked}"]`).textContent}`;
  return picked;
}

// The API answers the buckets that hold stories. Where the next one comes much later than this
// entity's stories usually do (4x their median spacing, at least a step), a null breaks the lines:
// they no longer draw a trend across hours without news.
function trendColumns(items, step) {
  const xs = items.map((p) => Date.parse(p.bucket_start) / 1000);
  const spacing = xs.slice(1).map((x, i) => x - xs[i]).sort((a, b) => a - b);
  const gap = Math.max(step, 4 * (spacing[Math.floor(spacing.length / 2)] || step));
  const columns = [[], [], [], []];
  const add = (x, p) => [x, p && p.negative_share, p && p.mean_score, p && p.count].forEach((v, i) => columns[i].push(v));
  items.forEach((p, i) => {
    if (i > 0 && xs[i] - xs[i - 1] > gap) add(xs[i - 1] + step, null);
    add(xs[i], p);
  });
  return columns;
}

// Every page of a list (its range fixed by params): a long range at 5 minutes passes one page's
// 10,000 points, and the newest would be left off the chart.
async function allPages(path, params) {
  const items = [];
  for (let offset = 0; offset !== null; ) {
    const page = await api(path, { params: { ...params, limit: 10000, offset } });
    items.push(...page.items);
    offset = page.next_offset;
  }
  return { items };
}

async function drawChart(kind, entity) {
  const params = trendParams(entity);
  const [trend, alerts] = await Promise.all([
    allPages("/trends", params),
    api("/alerts", { params: { entity_kind: kind, entity, start: params.start, end: params.end, state: "fired", timed_by: "window", limit: 500 } }),
  ]);
  const data = trendColumns(trend.items, STEP_S[params.granularity]);
  // The chart runs from its first story to the end of the range (now, live), so news that stopped
  // coming shows as an empty stretch on the right.
  const [from, to] = [Date.parse(params.start) / 1000, Date.parse(params.end) / 1000];
  // The alerts whose windows lie on the chart, however late they were sent (a replay's, a lagging
  // worker's), each on the bucket holding its window's last moment (its end opens the next), where
  // that bucket's bar and point are, as the PNG chart and the CLI place it: at the end itself, a
  // chart by days put an afternoon alert on the next day.
  const marks = alerts.items.map((a) => Date.parse(a.window_end) / 1000).filter((t) => t > from && t <= to)
    .map((t) => bucketBefore(t, STEP_S[params.granularity]));
  const box = document.createElement("div");
  box.className = "chart";
  box.dataset.entity = entity;
  box.dataset.alerts = String(marks.length);
  const title = document.createElement("h3");
  const holding = searched().search ? ` holding “${searched().search}”` : "";
  $("charts").append(box);
  if (!trend.items.length) { // a chosen entity quiet in this range: said, not blank axes
    const note = document.createElement("p");
    note.className = "empty";
    note.textContent = `No stories for ${kind} ${entity}${holding} in this range.`;
    box.append(note);
    return;
  }
  const items = trend.items.reduce((n, p) => n + p.count, 0);
  title.textContent = `${kind} ${entity}: ${counted(items, "item")}${holding}, ${counted(marks.length, "alert")}`
    + partialStart(params.start, params.granularity);
  box.append(title);
  const opts = {
    ...chartSize(box),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"), // axes in UTC, like the API
    scales: { x: { time: true, range: (u, first) => [first ?? from, to] }, score: { range: [-1, 1] }, count: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [UTC_AXIS, { scale: "score", label: "share / score" }, { scale: "count", side: 1, grid: { show: false }, label: "items", incrs: COUNT_STEPS }],
    series: [
      UTC_LEGEND,
      { label: "negative share", scale: "score", stroke: "rgb(214, 39, 40)", width: 2 },
      { label: "mean score", scale: "score", stroke: "rgb(31, 119, 180)", width: 1.5 },
      { label: "items", scale: "count", stroke: "rgb(170, 170, 170)", fill: "rgba(170, 170, 170, 0.35)",
        paths: uPlot.paths.bars({ size: [0.8, 40] }) },
    ],
    hooks: { draw: [(u) => drawMarkers(u, marks)] },
  };
  state.charts.push(new uPlot(opts, data, box));
}

function drawMarkers(u, marks) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = MARKER;
  ctx.fillStyle = MARKER;
  ctx.lineWidth = 2 * devicePixelRatio;
  for (const t of marks) {
    const x = u.valToPos(t, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(x, u.bbox.top + 6 * devicePixelRatio, 5 * devicePixelRatio, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.restore();
}

// --- alerts and headlines -------------------------------------------------------------------
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// The selected kind's entities whose negative share rose most against the range before.
const moverParams = () => ({ entity_kind: $("kind").value, ...range(), ...searched() });

async function loadMovers() {
  const page = await api("/movers", { params: { ...moverParams(), limit: 10 } });
  const body = $("mover-rows");
  body.replaceChildren();
  const pct = (share) => `${Math.round(share * 100)}%`;
  for (const m of page.items) {
    const row = body.insertRow();
    row.dataset.entity = m.entity;
    cell(row, m.entity);
    cell(row, String(m.count), "num");
    cell(row, pct(m.negative_share), "num");
    cell(row, m.change === null ? `${m.previous_count} stories` : `${pct(m.previous_share)} of ${m.previous_count}`, "num");
    const change = m.change === null ? "–" : `${m.change > 0 ? "+" : ""}${Math.round(m.change * 100)} pts`;
    cell(row, change, m.change > 0 ? "num fired" : "num");
    row.title = `show ${m.entity}'s trend`;
    row.onclick = () => showEntity(m.entity);
  }
  if (!page.items.length) cell(body.insertRow(), "No entity with 10+ stories in this range whose negative share rose.");
}

function showEntity(entity, kind = $("kind").value) {
  $("kind").value = kind;
  if (![...$("entity").options].some((o) => o.value === entity)) $("entity").add(new Option(entity, entity));
  $("entity").value = entity;
  refresh();
}

// As the alert messages write it (Python's .2g): 0.77, 0.001, 5.6e-8.
const pValue = (p) => (p >= 1e-3 ? String(Number(p.toPrecision(2))) : p.toExponential(1));

// The alerts table shows the latest load's answer: a refresh's that comes back after a verdict's
// reload would show the alert without the verdict just given.
let alertsAsked = 0;

async function loadAlerts() {
  const asked = ++alertsAsked;
  const page = await api("/alerts", { params: { ...range(), limit: 20 } });
  if (asked !== alertsAsked) return;
  const body = $("alert-rows");
  body.replaceChildren();
  for (const a of page.items) {
    const row = body.insertRow();
    row.dataset.alertId = a.alert_id;
    if (a.alert_id === state.alert) row.setAttribute("aria-selected", "true"); // the one whose chart is open
    cell(row, a.created_at.slice(0, 16).replace("T", " "));
    cell(row, `${a.entity_kind} ${a.entity}`);
    cell(row, a.still_open ? "open" : a.state, a.state); // open: fired, and no resolve has ended it yet
    cell(row, `${Math.round(a.negative_share * 100)}% (baseline ${Math.round(a.baseline_negative_share * 100)}%)`);
    cell(row, pValue(a.p_value));
    cell(row, a.subscription_id);
    row.title = "show this alert's chart";
    row.onclick = (event) => { if (event.target.tagName !== "BUTTON") showAlertChart(a); };
    const verdict = cell(row, a.verdict ? `${a.verdict} by ${a.feedback_by}` : "", "verdict");
    for (const v of ["tp", "fp"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = v === "tp" ? "true +" : "false +";
      b.title = v === "tp" ? "a real event" : "a false alarm";
      b.onclick = () => mark(a.alert_id, v);
      verdict.append(b);
    }
  }
  if (!page.items.length) cell(body.insertRow(), "No alerts in this range.");
}

// The chart comes through api() (it needs the token), so it is shown from a blob URL; under it the
// evidence (the alert's top headlines) and its entity's trend on this page.
async function showAlertChart(a) {
  const box = $("alert-chart");
  state.alert = a.alert_id;
  for (const row of $("alert-rows").rows) row.setAttribute("aria-selected", String(row.dataset.alertId === a.alert_id));
  box.hidden = false;
  $("alert-chart-title").textContent = `${a.entity_kind} ${a.entity}, alert of ${a.window_end.slice(0, 16).replace("T", " ")} UTC (${a.subscription_id})`;
  $("alert-trend").onclick = () => {
    showEntity(a.entity, a.entity_kind);
    $("trends").scrollIntoView();
  };
  showAlertHeadlines(a.alert_id);
  const img = $("alert-chart-img");
  try {
    const url = URL.createObjectURL(await api(`/alerts/${encodeURIComponent(a.alert_id)}/chart.png`, { blob: true }));
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = url;
    img.hidden = false;
  } catch (err) {
    img.hidden = true;
    $("alert-chart-title").textContent += `: ${err.message}`;
  }
}

// GET /alerts/{id}: the headlines the alert was sent with (the list of alerts leaves them out).
async function showAlertHeadlines(alertId) {
  const list = $("alert-headlines");
  list.replaceChildren();
  try {
    const { alert } = await api(`/alerts/${encodeURIComponent(alertId)}`);
    if (state.alert !== alertId) return; // another alert was clicked meanwhile
    for (const h of alert.top_headlines) {
      const li = document.createElement("li");
      li.append(headlineLink(h.title, h.url), ` (${h.source ? `${h.source}, ` : ""}${h.sentiment_score.toFixed(2)})`);
      list.append(li);
    }
    if (!alert.top_headlines.length) list.textContent = "No headlines were kept with this alert.";
  } catch (err) {
    if (state.alert === alertId) list.textContent = err.message;
  }
}

async function mark(alertId, verdict) {
  try {
    await api(`/alerts/${encodeURIComponent(alertId)}/feedback`, { method: "POST", body: { verdict, author: "dashboard" } });
    await loadAlerts();
  } catch (err) {
    status(err.message, true);
  }
}

// A headline's title, a link only where its URL is http(s): titles and URLs come from outside feeds,
// and a javascript: URL would run in this page.
function headlineLink(title, url) {
  const link = document.createElement(url && /^https?:/.test(url) ? "a" : "span");
  if (link.tagName === "A") { link.href = url; link.rel = "noopener noreferrer"; link.target = "_blank"; }
  link.textContent = title;
  return link;
}

// The most negative (or positive) headlines, or any sentiment newest first.
function headlineParams() {
  const entity = $("entity").value;
  return { ...range(), sentiment: $("headline-sentiment").value, ...searched(), ...(entity ? { entity_kind: $("kind").value, entity } : {}) };
}

async function loadHeadlines() {
  const entity = $("entity").value;
  const sentiment = $("headline-sentiment").value;
  const search = searched().search;
  const which = { negative: "Most negative headlines", positive: "Most positive headlines", any: "Newest headlines" }[sentiment];
  const page = await api("/headlines", { params: { ...headlineParams(), limit: 10 } });
  $("headline-title").textContent = `${which}${search ? ` holding “${search}”` : ""}${entity ? ` for ${entity}` : ""}`;
  const list = $("headline-list");
  list.replaceChildren();
  for (const h of page.items) {
    const li = document.createElement("li");
    const link = headlineLink(h.title, h.url);
    li.dataset.storyId = h.story_id;
    // What the model made of it: topic and tickers beside the sentiment, so a surprise is seen at once.
    const tickers = h.tickers.map((t) => ` $${t}`).join(",");
    const when = h.published_at.slice(0, 16).replace("T", " ");
    li.append(link, ` (${h.source}, ${when}, ${h.topic}${tickers && ","}${tickers}, ${h.sentiment}, ${h.sentiment_score.toFixed(2)})`);
    list.append(li);
  }
  if (!page.items.length) list.textContent = "No such headlines in this range.";
}

// --- downloads ------------------------------------------------------------------------------
// A panel's data as CSV (the API's format=csv: the whole range, not only the rows on screen),
// fetched with the page's token, which a plain link could not send.
async function download(path, params, name) {
  try {
    const blob = await api(path, { params: { ...params, format: "csv" }, blob: true });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${name}.csv`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    status(err.message, true);
  }
}

// --- news sources ---------------------------------------------------------------------------
// Their health as the ingestors publish it on Kafka (GET /sources); none published: the panel says so.
async function loadSources() {
  const body = $("source-rows");
  const note = $("sources-note");
  body.replaceChildren();
  let answer;
  try {
    answer = await api("/sources");
  } catch (err) {
    note.textContent = err.message;
    note.className = "error";
    note.hidden = false;
    return;
  }
  note.className = "";
  note.hidden = answer.items.length > 0;
  note.textContent = `No ingestor has published on ${answer.topic} yet: is \`finpulse ingest\` running?`;
  for (const s of answer.items) {
    const row = body.insertRow();
    row.dataset.source = s.name;
    cell(row, s.name);
    cell(row, s.kind);
    cell(row, s.health, `health-${s.health}`);
    cell(row, s.last_success_at ? s.last_success_at.slice(0, 16).replace("T", " ") : "never");
    cell(row, String(s.items_published), "num");
    cell(row, s.detail);
    cell(row, s.host);
  }
}

// --- subscriptions --------------------------------------------------------------------------
const TEMPLATE = {
  id: "new-subscription", name: "", channel: "#alerts", enabled: true,
  filter: { topics: ["*"], tickers: [], sources: [] },
  detector: { window: "tumbling", min_volume: 10, min_rise: 0.15, significance: 0.001 },
};

function subMessage(text, error = false) {
  $("sub-message").textContent = text;
  $("sub-message").className = error ? "error" : "";
}

async function loadSubscriptions(select) {
  state.subs = await api("/subscriptions");
  const list = $("sub-list");
  list.replaceChildren();
  for (const s of state.subs) list.add(new Option(`${s.id} → ${s.channel}`, s.id));
  if (select) list.value = select;
  showSubscription();
}

function showSubscription() {
  const sub = state.subs.find((s) => s.id === $("sub-list").value);
  $("sub-json").value = JSON.stringify(sub || TEMPLATE, null, 2);
  $("sub-overview").textContent = "";
  state.editing = null;
  state.opening = null;
  if (sub) {
    showOverview(sub.id);
    state.opening = openSubscription(sub.id, $("sub-json").value);
  }
}

// The stored copy with its ETag: a save then cannot undo a change made since (a mute from Slack).
// `shown`: the text the editor showed meanwhile; edits typed since are kept.
async function openSubscription(id, shown) {
  let etag = null;
  try {
    const sub = await api(`/subscriptions/${encodeURIComponent(id)}`, { onEtag: (e) => (etag = e) });
    if ($("sub-list").value !== id) return;
    if ($("sub-json").value === shown) $("sub-json").value = JSON.stringify(sub, null, 2);
    state.editing = { id, etag };
  } catch (err) {
    subMessage(err.message, true);
  }
}

async function showOverview(id) {
  try {
    const o = await api(`/subscriptions/${encodeURIComponent(id)}/overview`);
    // What may not do what was meant (a name that never matches): `finpulse alerts check`'s warnings.
    const said = [o.summary, ...o.warnings.map((w) => `warning: ${w}`)];
    if ($("sub-list").value === id) $("sub-overview").textContent = said.join("\n");
  } catch (err) {
    $("sub-overview").textContent = err.message;
  }
}

async function saveSubscription() {
  let sub;
  try {
    sub = JSON.parse($("sub-json").value);
  } catch (err) {
    return subMessage(`not valid JSON: ${err.message}`, true);
  }
  const exists = state.subs.some((s) => s.id === sub.id);
  if (state.opening) await state.opening; // a save clicked before its ETag came waits for it
  try {
    const ifMatch = state.editing && state.editing.id === sub.id ? state.editing.etag : undefined;
    if (exists) await api(`/subscriptions/${encodeURIComponent(sub.id)}`, { method: "PUT", body: sub, ifMatch });
    else await api("/subscriptions", { method: "POST", body: sub });
    await loadSubscriptions(sub.id);
    subMessage(`saved ${sub.id}`);
  } catch (err) {
    subMessage(err.message, true);
  }
}

async function deleteSubscription() {
  const id = $("sub-list").value;
  if (!id) return subMessage("select a subscription first", true);
  try {
    await api(`/subscriptions/${encodeURIComponent(id)}`, { method: "DELETE" });
    await loadSubscriptions();
    subMessage(`deleted ${id}`);
  } catch (err) {
    subMessage(err.message, true);
  }
}

async function testSubscription() {
  const id = $("sub-list").value;
  if (!id) return subMessage("select a saved subscription first", true);
  subMessage(`sending a test message for ${id}…`);
  try {
    const results = await api(`/subscriptions/${encodeURIComponent(id)}/test`, { method: "POST" });
    const lines = results.map((r) => `${r.sink} → ${r.channel}: ${r.sent ? r.detail : "NOT SENT: " + r.detail}`);
    subMessage(lines.join("\n"), results.some((r) => !r.sent));
  } catch (err) {
    subMessage(err.message, true);
  }
}

// --- wiring ---------------------------------------------------------------------------------
// Reloads the charts and tables; the subscription editor only when `subscriptions` (the first load,
// Refresh), so an edit in progress survives view changes and live refreshes. Refreshes never
// overlap (two would draw each chart twice): a `live` one due while another loads is skipped, any
// other runs when that one ends.
async function refresh({ live = false, subscriptions = false } = {}) {
  if (state.loading) {
    if (!live) state.again = { subscriptions: subscriptions || Boolean(state.again?.subscriptions) };
    return;
  }
  state.loading = true;
  status(live ? "updating…" : "loading…");
  document.body.dataset.ready = "loading";
  try {
    token(); // keep a ?token= from the address before the view replaces it
    writeView();
    const editor = subscriptions ? [loadSubscriptions($("sub-list").value)] : [];
    await Promise.all([loadTrends(), loadMovers(), loadAlerts(), ...editor]);
    await Promise.all([loadHeadlines(), loadSources()]);
    state.updated = Date.now();
    showUpdated();
    document.body.dataset.ready = "true";
  } catch (err) {
    status(err.message, true);
    document.body.dataset.ready = "error";
  } finally {
    state.loading = false;
    state.tried = Date.now();
    const again = state.again;
    state.again = false;
    if (again) refresh(again);
    else schedule();
  }
}

function showUpdated() {
  const live = $("live").value === "0" ? "" : ` · live, ${$("live").selectedOptions[0].textContent}`;
  status(`updated ${new Date(state.updated).toISOString().slice(11, 19)} UTC${live}`);
}

// The next live refresh, counted from the end of the last one (failed ones too, so an API that is
// away is asked again at the same pace); none while the tab is hidden: it catches up when shown.
function schedule() {
  clearTimeout(state.timer);
  const every = Number($("live").value) * 1000;
  if (!every || document.hidden) return;
  state.timer = setTimeout(() => refresh({ live: true }), Math.max(0, state.tried + every - Date.now()));
}

$("refresh").onclick = () => refresh({ subscriptions: true });
for (const id of ["kind", "range", "granularity", "from", "to"]) {
  $(id).onchange = () => {
    if (id === "kind") $("entity").value = "";
    $("custom-range").hidden = $("range").value !== "custom";
    if ($("range").value === "custom" && !$("from").value) return status("pick the start of the range (UTC)");
    refresh();
  };
}
$("entity").onchange = () => refresh();
$("trends-csv").onclick = () => {
  const entity = $("entity").value;
  download("/trends", trendParams(entity), `trend-${$("kind").value}-${entity || "all"}-${step()}`);
};
$("movers-csv").onclick = () => download("/movers", moverParams(), `movers-${$("kind").value}`);
$("headlines-csv").onclick = () => download("/headlines", headlineParams(), `headlines-${$("headline-sentiment").value}`);
$("live").onchange = () => {
  writeView();
  if (state.updated && !$("status").classList.contains("error")) showUpdated();
  schedule();
};
document.addEventListener("visibilitychange", schedule);
$("search-form").onsubmit = (event) => {
  event.preventDefault();
  refresh();
};
$("search").onsearch = () => { if (!$("search").value) refresh(); }; // the field's clear button
$("headline-sentiment").onchange = () => {
  writeView();
  loadHeadlines().catch((err) => status(err.message, true));
};
$("sub-list").onchange = showSubscription;
$("sub-new").onclick = () => { $("sub-list").value = ""; $("sub-json").value = JSON.stringify(TEMPLATE, null, 2); subMessage(""); };
$("sub-save").onclick = saveSubscription;
$("sub-delete").onclick = deleteSubscription;
$("sub-test").onclick = testSubscription;
$("save-token").onclick = () => { localStorage.setItem("finpulse-token", $("token").value); $("auth").hidden = true; refresh({ subscriptions: true }); };
readView();
refresh({ subscriptions: true });
