// The wallboard: per queue, live from Supervisor.WatchStats (waiting now, oldest wait, today's
// service level, average wait, abandonment and answers, agents by state; the same day's figures
// as the public indicators page, from the same fold), and per queue and channel: waiting now and
// the oldest wait from WatchStats and Supervisor.WatchWaiting, today's figures from WatchStats'
// per-channel figures (the same fold, every queue). Colour thresholds are the
// supervisor's, kept in this browser (localStorage); a level is also written in words, never
// shown by colour alone. "Wall screen" enlarges everything for a screen across the room.
import { $, el, field, t, sup, channelName, wait, percent, stored, store, CHANNELS, CHANNEL_NUMBER, Phase, scroller } from "./sup-util.js";
import * as session from "./session.js";

const DEFAULTS = { waiting_warn: 5, waiting_alert: 10, oldest_warn: 120, oldest_alert: 300,
  sl_warn: 80, sl_alert: 60, abandon_warn: 5, abandon_alert: 10 };

let limits = stored("thresholds", DEFAULTS);
let stats = null;      // the last StatsUpdate
let lines = [];        // the last ListWaitingResponse.lines
let names = {};        // queue id -> display name
let day = {};          // "queue|channel" -> today's figures of that channel in that queue
const abort = new AbortController();

// The level of a figure: "ok", "warn" or "alert". `high` true: larger is worse.
function level(value, warn, alert, high) {
  if (value === undefined || value === null) return "ok";
  if (high) return value >= alert ? "alert" : value >= warn ? "warn" : "ok";
  return value <= alert ? "alert" : value <= warn ? "warn" : "ok";
}

function cell(text, lvl) {
  const td = el("td", { class: "num lvl-" + lvl }, el("span", { text }));
  if (lvl !== "ok") td.append(" ", el("span", { class: "badge", text: t("sup.wall.level." + lvl) }));
  return td;
}

function render() {
  const body = $("wall-rows");
  if (!body || !stats) return;
  body.replaceChildren();
  for (const q of stats.queues) {
    // Optional figures decode as 0 when absent: absent means nothing answered or abandoned yet.
    const decided = q.answered_today + q.abandoned_today > 0;
    const sl = decided ? q.service_level_today * 100 : null;
    const ab = decided ? q.abandonment_rate_today * 100 : null;
    body.append(el("tr", { "data-queue": q.queue },
      el("th", { scope: "row", text: names[q.queue] && names[q.queue] !== q.queue ? `${names[q.queue]} (${q.queue})` : q.queue }),
      cell(String(q.waiting), level(q.waiting, limits.waiting_warn, limits.waiting_alert, true)),
      cell(q.oldest_wait_ms ? wait(q.oldest_wait_ms) : "—", level(q.oldest_wait_ms / 1000, limits.oldest_warn, limits.oldest_alert, true)),
      cell(decided ? percent(q.service_level_today) : "—", level(sl, limits.sl_warn, limits.sl_alert, false)),
      el("td", { class: "num", text: q.answered_today ? wait(q.average_wait_secs_today * 1000) : "—" }),
      cell(decided ? percent(q.abandonment_rate_today) : "—", level(ab, limits.abandon_warn, limits.abandon_alert, true)),
      el("td", { class: "num", text: `${q.answered_today} / ${q.abandoned_today}` }),
      el("td", { class: "num", text: String(q.in_progress) }),
      el("td", { class: "num agents", text: t("sup.wall.agents.value", { available: q.agents_available, busy: q.agents_busy,
        paused: q.agents_paused, wrap: q.agents_wrap_up, offline: q.agents_offline }) }),
    ));
  }
  $("wall-at").textContent = t("sup.wall.at", { time: new Date(stats.at_unix_ms).toLocaleTimeString() });
  renderChannels();
}

function renderChannels() {
  const body = $("wall-channels");
  if (!body || !stats) return;
  body.replaceChildren();
  const now = stats.at_unix_ms || Date.now();
  const oldest = {};
  for (const line of lines) {
    for (const i of line.waiting) {
      if (i.phase !== Phase.PHASE_WAITING) continue;
      const key = line.queue + "|" + i.channel;
      oldest[key] = Math.min(oldest[key] || Infinity, i.enqueued_at_unix_ms);
    }
  }
  let rows = 0;
  for (const q of stats.queues) {
    for (const ch of CHANNELS) {
      const count = q.waiting_by_channel ? q.waiting_by_channel[ch] : 0;
      const today = day[q.queue + "|" + ch];
      if (!count && !(today && today.requests)) continue;
      const since = oldest[q.queue + "|" + CHANNEL_NUMBER[ch]];
      const ms = since && since !== Infinity ? now - since : 0;
      const rate = (x) => (x === null || x === undefined ? null : x * 100);
      const sl = today ? rate(today.within_delay_rate) : null;
      const ab = today ? rate(today.abandonment_rate) : null;
      body.append(el("tr", { "data-queue": q.queue, "data-channel": ch },
        el("th", { scope: "row", text: names[q.queue] || q.queue }),
        el("td", { text: channelName(ch) }),
        cell(String(count), level(count, limits.waiting_warn, limits.waiting_alert, true)),
        cell(ms ? wait(ms) : "—", level(ms / 1000, limits.oldest_warn, limits.oldest_alert, true)),
        cell(sl === null ? "—" : percent(today.within_delay_rate), level(sl, limits.sl_warn, limits.sl_alert, false)),
        el("td", { class: "num", text: today && today.average_wait_secs !== null && today.average_wait_secs !== undefined ? wait(today.average_wait_secs * 1000) : "—" }),
        cell(ab === null ? "—" : percent(today.abandonment_rate), level(ab, limits.abandon_warn, limits.abandon_alert, true)),
        el("td", { class: "num", text: today ? `${today.answered} / ${today.abandoned}` : "—" }),
      ));
      rows++;
    }
  }
  $("wall-channels-none").hidden = rows > 0;
}

// Today's figures per queue and channel come with WatchStats (QueueStats.today_by_channel: the
// same fold and definitions as the per-queue figures and the public page), for every queue.
function dayOf(update) {
  const next = {};
  for (const q of update.queues || []) {
    for (const d of q.today_by_channel || []) {
      const ch = CHANNELS.find((c) => CHANNEL_NUMBER[c] === d.channel);
      if (!ch) continue;
      next[q.queue + "|" + ch] = {
        requests: Number(d.requests_today || 0),
        answered: Number(d.answered_today || 0),
        abandoned: Number(d.abandoned_today || 0),
        within_delay_rate: d.service_level_today,
        abandonment_rate: d.abandonment_rate_today,
        average_wait_secs: d.average_wait_secs_today,
      };
    }
  }
  return next;
}

async function follow(method, req, res, body, onMessage) {
  let backoff = 1000;
  for (;;) {
    try {
      await session.stream("Supervisor", method, req, res, body, (m) => { backoff = 1000; $("wall-state").textContent = ""; onMessage(m); }, abort.signal);
    } catch (e) {
      if (e && e.name === "AbortError") return;
      if (e && e.code === 7) return;
    }
    if (abort.signal.aborted) return;
    $("wall-state").textContent = t("stream.reconnecting");
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 30000);
  }
}

function thresholdsForm() {
  const form = el("form", { id: "thresholds", class: "grid-form" });
  const rows = [["waiting", "sup.wall.th.waiting"], ["oldest", "sup.wall.th.oldest"], ["sl", "sup.wall.th.sl"], ["abandon", "sup.wall.th.abandon"]];
  for (const [key, label] of rows) {
    const fs = el("fieldset", {}, el("legend", { i18n: label }));
    for (const lvl of ["warn", "alert"]) {
      const input = el("input", { id: `th-${key}-${lvl}`, type: "number", min: "0", max: "1000000", step: "1", inputmode: "numeric", value: String(limits[`${key}_${lvl}`]) });
      fs.append(field("sup.wall.level." + lvl, input));
    }
    form.append(fs);
  }
  form.append(el("div", { class: "buttons" },
    el("button", { type: "submit", class: "primary", i18n: "sup.save" }),
    el("button", { type: "button", id: "th-reset", i18n: "sup.wall.th.reset" })));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = {};
    for (const k of Object.keys(DEFAULTS)) {
      const [key, lvl] = k.split("_");
      const v = Number($(`th-${key}-${lvl}`).value);
      next[k] = Number.isFinite(v) && v >= 0 ? v : DEFAULTS[k];
    }
    limits = next;
    store("thresholds", limits);
    render();
    $("notice").textContent = t("sup.wall.th.saved");
  });
  form.querySelector("#th-reset").addEventListener("click", () => {
    limits = Object.assign({}, DEFAULTS);
    store("thresholds", limits);
    for (const k of Object.keys(DEFAULTS)) { const [key, lvl] = k.split("_"); $(`th-${key}-${lvl}`).value = String(limits[k]); }
    render();
  });
  return form;
}

export async function start(root) {
  const head = (keys) => el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", i18n: k }))));
  const wall = stored("wall", { on: false });
  document.body.classList.toggle("wall", wall.on);
  const toggle = el("button", { type: "button", id: "wall-toggle", "aria-pressed": wall.on ? "true" : "false", i18n: "sup.wall.toggle" });
  toggle.addEventListener("click", () => {
    wall.on = !wall.on;
    store("wall", wall);
    document.body.classList.toggle("wall", wall.on);
    toggle.setAttribute("aria-pressed", wall.on ? "true" : "false");
  });
  root.append(
    el("div", { class: "buttons" }, toggle,
      el("a", { href: "/indicators.html", class: "button-link", i18n: "sup.wall.public" })),
    el("p", { class: "muted" }, el("span", { id: "wall-at" }), " ", el("span", { id: "wall-state" })),
    el("section", { "aria-labelledby": "wall-queues-title" },
      el("h2", { id: "wall-queues-title", i18n: "sup.wall.queues" }),
      scroller("sup.wall.queues", el("table", { class: "wallboard", id: "wallboard" },
        head(["sup.col.queue", "sup.wall.col.waiting", "sup.wall.col.oldest", "sup.wall.col.sl", "sup.wall.col.avg",
          "sup.wall.col.abandon", "sup.wall.col.answered", "sup.wall.col.in_progress", "sup.wall.col.agents"]),
        el("tbody", { id: "wall-rows" })))),
    el("section", { "aria-labelledby": "wall-channels-title" },
      el("h2", { id: "wall-channels-title", i18n: "sup.wall.channels" }),
      el("p", { class: "muted", i18n: "sup.wall.channels.help" }),
      el("p", { id: "wall-channels-none", class: "muted", i18n: "sup.wall.channels.none" }),
      scroller("sup.wall.channels", el("table", { class: "wallboard" },
        head(["sup.col.queue", "sup.col.channel", "sup.wall.col.waiting", "sup.wall.col.oldest", "sup.wall.col.sl",
          "sup.wall.col.avg", "sup.wall.col.abandon", "sup.wall.col.answered"]),
        el("tbody", { id: "wall-channels" })))),
    el("details", { class: "panel" }, el("summary", { i18n: "sup.wall.th" }),
      el("p", { class: "muted", i18n: "sup.wall.th.help" }), thresholdsForm()),
  );
  try {
    const queues = await sup("ListQueues", "ListQueuesRequest", "ListQueuesResponse", { page_size: 500 });
    names = Object.fromEntries(queues.queues.map((q) => [q.id, q.name]));
  } catch (_) { /* ids only */ }
  follow("WatchStats", "WatchStatsRequest", "StatsUpdate", { interval_ms: 1000 }, (m) => { stats = m; day = dayOf(m); render(); });
  follow("WatchWaiting", "WatchWaitingRequest", "ListWaitingResponse", { min_interval_ms: 2000, max_per_queue: 100 },
    (m) => { lines = m.lines; renderChannels(); });
  return { refresh: render, stop: () => { abort.abort(); } };
}
