// What every supervisor view shares: building elements (text only, never HTML from the server),
// the page's notice line, calls to the Supervisor service as the signed-in person, reading every
// page of a paged list, and the words for channels, states and durations.
import { enums, Code } from "./grpcweb.js";
import * as session from "./session.js";
import { t, lang } from "./i18n.js";

export const $ = (id) => document.getElementById(id);
export const Kind = enums["guichet.v1.AgentState.Kind"];
export const Channel = enums["guichet.v1.Channel"];
export const Phase = enums["guichet.v1.Phase"];
export const Strategy = enums["guichet.v1.Strategy"];
export const CHANNELS = ["voice", "email", "sms", "chat"];
export const CHANNEL_NUMBER = { voice: Channel.CHANNEL_VOICE, email: Channel.CHANNEL_EMAIL,
  sms: Channel.CHANNEL_SMS, chat: Channel.CHANNEL_CHAT };
const CHANNEL_NAME = Object.fromEntries(Object.entries(CHANNEL_NUMBER).map(([k, v]) => [v, k]));

/** An element: `attrs` sets attributes (`class`, `text` for textContent, `i18n` for a text key). */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "i18n") { e.dataset.i18n = v; e.textContent = t(v); }
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** A labelled field: `<div class=field><label for=id>…</label>control</div>`. */
export function field(labelKey, control, hintKey) {
  const wrap = el("div", { class: "field" }, el("label", { for: control.id, i18n: labelKey }));
  if (hintKey) {
    const hint = el("p", { class: "hint muted", id: control.id + "-hint", i18n: hintKey });
    control.setAttribute("aria-describedby", hint.id);
    wrap.append(hint);
  }
  wrap.append(control);
  return wrap;
}

/** A table that may scroll sideways: focusable and named, so that keyboards can scroll it. */
export function scroller(labelKey, table) {
  return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": t(labelKey) }, table);
}

let noticeTimer = null;
/** Says what an action did (polite live region); errors stay until the next notice. */
export function notice(text, isError) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("error", !!isError);
  clearTimeout(noticeTimer);
  if (!isError) noticeTimer = setTimeout(() => { n.textContent = ""; }, 10000);
}

/** A failed call, in words. */
export function failed(e) {
  if (e && e.code === Code.UNAVAILABLE) notice(t("error.network"), true);
  else notice(t("error.generic", { message: (e && e.message) || "?" }), true);
}

/** A unary Supervisor call. */
export function sup(method, req, res, body) {
  return session.call("Supervisor", method, req, res, body || {});
}

/** An AgentDesktop call made for an agent (supervisors name the agent). */
export function desk(method, req, res, body) {
  return session.call("AgentDesktop", method, req, res, body || {});
}

/** Every entry of a paged list: `field` of each answer, following next_page_token. */
export async function all(method, req, res, field, body) {
  const out = [];
  let token = "";
  for (let i = 0; i < 100; i++) {
    const answer = await sup(method, req, res, Object.assign({}, body || {}, { page_size: 500, page_token: token }));
    out.push(...answer[field]);
    token = answer.next_page_token;
    if (!token) break;
  }
  return out;
}

export function channelName(ch) {
  const name = typeof ch === "string" ? ch : CHANNEL_NAME[ch];
  return t("channel." + (name || "chat"));
}

function reasonText(reason) {
  const key = "reason." + reason;
  const text = t(key);
  return text === key ? reason : text;
}

export function stateText(st) {
  switch (st && st.kind) {
    case Kind.KIND_AVAILABLE: return t("state.available");
    case Kind.KIND_PAUSED: return st.pause_reason ? t("state.paused.reason", { reason: reasonText(st.pause_reason) }) : t("state.paused");
    case Kind.KIND_WRAP_UP: return t("state.wrap_up", { time: new Date(st.wrap_up_until_unix_ms).toLocaleTimeString(lang() === "fr" ? "fr-FR" : "en-GB") });
    default: return t("state.offline");
  }
}

/** A wait in words: "45 s", "3 min 05 s", "2 h 10 min", "3 j 4 h". */
export function wait(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return t("sup.days", { d: Math.floor(h / 24), h: h % 24 });
}

export function percent(x) {
  return x === undefined || x === null ? "—" : `${Math.round(x * 1000) / 10} %`;
}

/** Remembers a page's own settings in the browser (localStorage, per key). */
export function stored(key, fallback) {
  try { return Object.assign({}, fallback, JSON.parse(localStorage.getItem("guichet.sup." + key) || "{}")); } catch (_) { return Object.assign({}, fallback); }
}
export function store(key, value) { localStorage.setItem("guichet.sup." + key, JSON.stringify(value)); }

export { Code, t };
