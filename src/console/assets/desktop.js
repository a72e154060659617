// The agent desktop: sign-in, my state and device, the offer stream (one stream per page), the
// ringing offer, and a tab per interaction in hand with its conversation, reply, completion and
// transfer. Everything goes through the AgentDesktop and Sessions services over gRPC-web.
//
// Texts are set with textContent only (never HTML from the server). Live regions: `#alert`
// announces a new offer once; `#notice` (polite) says what an action did; the countdown is
// hidden from screen readers (the deadline time is read instead).
import { enums, Code } from "./grpcweb.js";
import * as session from "./session.js";
import { t, apply, wireSwitch, timeOf, dateTimeOf, duration } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const Kind = enums["guichet.v1.AgentState.Kind"];
const Channel = enums["guichet.v1.Channel"];
const CHANNEL_NAME = { [Channel.CHANNEL_VOICE]: "voice", [Channel.CHANNEL_EMAIL]: "email",
  [Channel.CHANNEL_SMS]: "sms", [Channel.CHANNEL_CHAT]: "chat" };

const desk = (method, req, res, body) => session.call("AgentDesktop", method, req, res, body);

// ---------- small helpers ----------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

let noticeTimer = null;
function notice(text, isError) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("error", !!isError);
  clearTimeout(noticeTimer);
  if (!isError) noticeTimer = setTimeout(() => { n.textContent = ""; }, 8000);
}

function failed(e) {
  if (e && e.code === Code.UNAVAILABLE) notice(t("error.network"), true);
  else notice(t("error.generic", { message: (e && e.message) || "?" }), true);
}

function channelName(ch) { return t("channel." + (CHANNEL_NAME[ch] || "chat")); }

// ---------- the ringer: Web Audio, unlocked by the sign-in click ----------
let audio = null;
function unlockSound() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = audio || new Ctx();
    if (audio.state === "suspended") audio.resume();
  } catch (_) { audio = null; }
  $("sound").hidden = !!(audio && audio.state === "running");
}
function ring() {
  if (!audio || audio.state !== "running") { $("sound").hidden = false; return; }
  const now = audio.currentTime;
  for (const [at, freq] of [[0, 880], [0.25, 660]]) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.15, now + at);
    gain.gain.exponentialRampToValueAtTime(0.001, now + at + 0.22);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + at); osc.stop(now + at + 0.23);
  }
}

// ---------- my state ----------
const STATE_KEY = "guichet.state";
let status = null; // the last AgentStatus seen
let stateSince = null;

function remember(kind, reason) {
  const known = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
  if (!known || known.kind !== kind || known.reason !== reason) {
    sessionStorage.setItem(STATE_KEY, JSON.stringify({ kind, reason, since: Date.now() }));
  }
  stateSince = JSON.parse(sessionStorage.getItem(STATE_KEY)).since;
}

function showStatus(s) {
  status = s;
  const st = s.state || {};
  remember(st.kind, st.pause_reason || "");
  // The router's own time of the change when it has one (it survives a reload, another browser
  // and a restart); else when this browser saw it.
  const since = Number(s.state_since_unix_ms || 0);
  if (since > 0) stateSince = since;
  renderState();
  if (s.agent) $("device").value = s.agent.device || "";
}

function renderState() {
  const st = (status && status.state) || { kind: Kind.KIND_OFFLINE };
  let text;
  switch (st.kind) {
    case Kind.KIND_AVAILABLE: text = t("state.available"); break;
    case Kind.KIND_PAUSED: text = st.pause_reason ? t("state.paused.reason", { reason: reasonText(st.pause_reason) }) : t("state.paused"); break;
    case Kind.KIND_WRAP_UP: text = t("state.wrap_up", { time: timeOf(st.wrap_up_until_unix_ms) }); break;
    default: text = status ? t("state.offline") : t("state.unknown");
  }
  $("state").textContent = text;
  $("state").dataset.kind = String(st.kind || Kind.KIND_OFFLINE);
  if (st.kind === Kind.KIND_WRAP_UP && st.wrap_up_until_unix_ms < Date.now() - 1000 && !renderState.asking) {
    // The wrap-up is over: ask the router what the state is now.
    renderState.asking = true;
    refreshStatus().finally(() => { renderState.asking = false; });
  }
  $("state-since").textContent = status && stateSince ? t("state.since", { time: timeOf(stateSince), duration: duration(Date.now() - stateSince) }) : "";
}

function reasonText(reason) {
  const key = "reason." + reason;
  const text = t(key);
  return text === key ? reason : text;
}

async function goAvailable() {
  try {
    let s = await desk("Login", "LoginRequest", "AgentStatus", {});
    if (s.state && s.state.kind !== Kind.KIND_AVAILABLE && s.state.kind !== Kind.KIND_WRAP_UP) {
      s = await desk("SetState", "SetStateRequest", "AgentStatus", { state: Kind.KIND_AVAILABLE });
    }
    showStatus(s);
    notice(t("state.available"));
  } catch (e) { failed(e); }
}

async function goPause(reason) {
  try {
    let s = await desk("Login", "LoginRequest", "AgentStatus", {});
    s = await desk("SetState", "SetStateRequest", "AgentStatus", { state: Kind.KIND_PAUSED, pause_reason: reason });
    showStatus(s);
    notice(t("state.paused.reason", { reason: reasonText(reason) }));
  } catch (e) { failed(e); }
}

async function goOffline() {
  try {
    showStatus(await desk("Logout", "LogoutRequest", "AgentStatus", {}));
    notice(t("state.offline"));
  } catch (e) { failed(e); }
}

// ---------- the offer ----------
let offer = null; // the pending Offer
let ringTimer = null;

function historyItems(list, history) {
  list.replaceChildren();
  if (!history.length) { list.append(el("li", { text: t("offer.history.none") })); return; }
  for (const h of history) {
    const parts = [dateTimeOf(h.created_at_unix_ms), channelName(h.channel), h.queue, h.outcome];
    if (h.wrap_up_code) parts.push(h.wrap_up_code);
    if (h.agent) parts.push(h.agent);
    const li = el("li", { text: parts.filter(Boolean).join(" · ") });
    if (h.notes) li.append(el("br"), el("span", { class: "muted", text: h.notes }));
    list.append(li);
  }
}

function transferText(tr) {
  return tr && tr.from_agent ? t("offer.transfer", { agent: tr.from_agent, note: tr.note || "—" }) : "";
}

// A consultation offer (warm transfer): the interaction is still held by a colleague.
function isConsult(o) {
  const c = o.interaction.consult;
  return !!(c && c.agent && c.agent !== o.interaction.agent);
}

function consultText(o) {
  const c = o.interaction.consult;
  return t("offer.consult", { agent: c.from_agent || o.interaction.agent, note: c.note || "—" });
}

function showOffer(o) {
  offer = o;
  const i = o.interaction;
  $("offer-consult").hidden = !isConsult(o);
  $("offer-consult").textContent = isConsult(o) ? consultText(o) : "";
  $("offer-channel").textContent = channelName(i.channel);
  $("offer-contact").textContent = i.contact || "—";
  $("offer-queue").textContent = i.queue;
  $("offer-why").textContent = (o.decision && o.decision.text) || (i.decision && i.decision.text) || "—";
  $("offer-deadline").textContent = timeOf(o.deadline_unix_ms) + ":" + String(new Date(o.deadline_unix_ms).getSeconds()).padStart(2, "0");
  const tr = transferText(o.transfer);
  $("offer-transfer").hidden = !tr;
  $("offer-transfer").textContent = tr;
  const preview = $("offer-preview");
  preview.replaceChildren();
  const last = o.conversation.filter((m) => m.direction === "inbound").slice(-1)[0];
  if (last) preview.append(el("blockquote", { text: (last.subject ? last.subject + " — " : "") + last.text.slice(0, 500) }));
  historyItems($("offer-history"), o.history);
  $("offer").hidden = false;
  // Announced once; the countdown is not read out.
  $("alert").textContent = t("offer.announce", { channel: channelName(i.channel), contact: i.contact || "—", queue: i.queue });
  ring();
  clearInterval(ringTimer);
  ringTimer = setInterval(() => {
    if (!offer) return;
    const left = Math.max(0, Math.round((offer.deadline_unix_ms - Date.now()) / 1000));
    $("offer-left").textContent = t("offer.left", { seconds: left });
    if (left % 3 === 0 && left > 0) ring();
    if (left === 0) hideOffer();
  }, 1000);
  $("offer-left").textContent = t("offer.left", { seconds: Math.max(0, Math.round((o.deadline_unix_ms - Date.now()) / 1000)) });
}

function hideOffer() {
  offer = null;
  clearInterval(ringTimer);
  $("offer").hidden = true;
  $("alert").textContent = "";
}

async function accept() {
  if (!offer) return;
  const o = offer;
  try {
    await desk("Accept", "InteractionAction", "Interaction", { interaction_id: o.interaction.id });
    hideOffer();
    openTab(o, true, isConsult(o));
  } catch (e) { hideOffer(); failed(e); }
}

async function decline() {
  if (!offer) return;
  const id = offer.interaction.id;
  hideOffer();
  try { await desk("Decline", "InteractionAction", "Interaction", { interaction_id: id }); } catch (e) { failed(e); }
}

// ---------- tabs: the interactions in hand ----------
const tabs = new Map(); // interaction id -> { tab, panel, offer, seen: Set }
let tabCounter = 0;

function messageItem(m) {
  const li = el("li", { class: "msg " + m.direction });
  const who = m.direction === "inbound" ? t("conv.inbound", { from: m.meta.from_name || m.from || "—" })
    : (m.agent ? t("conv.outbound", { agent: m.agent }) : t("conv.outbound.system"));
  li.append(el("p", { class: "meta", text: who + " · " + dateTimeOf(m.at_unix_ms) }));
  if (m.subject) li.append(el("p", { class: "subject", text: m.subject }));
  if (m.meta.recording_url) {
    li.append(el("p", { class: "subject", text: t("conv.voicemail") + (m.meta.recording_duration ? ` (${m.meta.recording_duration} s)` : "") }));
    const player = el("audio", { controls: "", preload: "none", src: m.meta.recording_url });
    player.setAttribute("aria-label", t("conv.voicemail"));
    li.append(player, el("p", {}, el("a", { href: m.meta.recording_url, rel: "noopener", target: "_blank", text: t("conv.voicemail.link") })));
  }
  if (m.text) li.append(el("p", { class: "text", text: m.text }));
  if (m.attachments.length) {
    const ul = el("ul", { class: "attachments", "aria-label": t("conv.attachments") });
    for (const a of m.attachments) {
      const size = a.size ? ` (${Math.max(1, Math.round(a.size / 1024))} Ko)` : "";
      const item = el("li", {}, a.url ? el("a", { href: a.url, download: a.name, text: a.name + size })
        : el("span", { text: t("conv.attachment.unavailable", { name: a.name }) }));
      // A recording (a voicemail left through jambonz, an MMS voice note) plays in place.
      if (a.url && (a.content_type || "").startsWith("audio/")) {
        const player = el("audio", { controls: "", preload: "none", src: a.url });
        player.setAttribute("aria-label", `${t("conv.voicemail")} — ${a.name}`);
        item.append(player);
      }
      ul.append(item);
    }
    li.append(ul);
  }
  return li;
}

function addMessage(entry, m) {
  if (entry.seen.has(m.id)) return;
  entry.seen.add(m.id);
  const list = entry.panel.querySelector(".conversation");
  const empty = list.querySelector(".empty");
  if (empty) empty.remove();
  list.append(messageItem(m));
  list.lastElementChild.scrollIntoView({ block: "nearest" });
}

function label(panel, cls, inputCls, id) {
  const input = panel.querySelector("." + inputCls);
  input.id = id;
  panel.querySelector("." + cls).setAttribute("for", id);
}

function selectTab(id) {
  for (const [key, entry] of tabs) {
    const on = key === id;
    entry.tab.setAttribute("aria-selected", on ? "true" : "false");
    entry.tab.tabIndex = on ? 0 : -1;
    entry.panel.hidden = !on;
  }
}

function openTab(o, focus, consulting) {
  const i = o.interaction;
  if (tabs.has(i.id)) { selectTab(i.id); return; }
  const n = ++tabCounter;
  const tab = el("button", { type: "button", role: "tab", id: `tab-${n}`, "aria-controls": `panel-${n}`,
    text: `${channelName(i.channel)} · ${i.contact || i.id.slice(-6)}` });
  const panel = $("tab-panel").content.firstElementChild.cloneNode(true);
  panel.id = `panel-${n}`;
  panel.setAttribute("aria-labelledby", tab.id);
  apply(panel);
  panel.querySelector(".p-channel").textContent = channelName(i.channel);
  panel.querySelector(".p-contact").textContent = i.contact || "—";
  panel.querySelector(".p-queue").textContent = i.queue;
  panel.querySelector(".p-why").textContent = (o.decision && o.decision.text) || (i.decision && i.decision.text) || "—";
  const tr = transferText(o.transfer);
  panel.querySelector(".p-transfer").hidden = !tr;
  panel.querySelector(".p-transfer").textContent = tr;
  historyItems(panel.querySelector(".p-history"), o.history);
  for (const [cls, input] of [["subject-label", "subject"], ["reply-label", "reply-text"], ["code-select-label", "code-select"],
    ["code-text-label", "code-text"], ["notes-label", "notes"], ["target-label", "target"], ["tnote-label", "tnote"]]) {
    label(panel, cls, input, `${input}-${n}`);
  }
  for (const r of panel.querySelectorAll("input[type=radio]")) r.name = `to-${n}`;
  const entry = { tab, panel, offer: o, seen: new Set() };
  tabs.set(i.id, entry);
  const list = panel.querySelector(".conversation");
  list.append(el("li", { class: "empty muted", text: t("conv.empty") }));
  for (const m of o.conversation) addMessage(entry, m);

  // Reply (not for calls), with typing sent while writing (web chat shows it).
  const isVoice = i.channel === Channel.CHANNEL_VOICE;
  const reply = panel.querySelector(".reply");
  reply.hidden = isVoice;
  panel.querySelector(".no-reply").hidden = !isVoice;
  panel.querySelector(".subject-field").hidden = i.channel !== Channel.CHANNEL_EMAIL;
  const text = panel.querySelector(".reply-text");
  let typingSent = 0, typingStop = null;
  text.addEventListener("input", () => {
    if (i.channel !== Channel.CHANNEL_CHAT) return;
    const now = Date.now();
    if (now - typingSent > 3000) {
      typingSent = now;
      desk("SetTyping", "SetTypingRequest", "SetTypingResponse", { interaction_id: i.id, typing: true }).catch(() => {});
    }
    clearTimeout(typingStop);
    typingStop = setTimeout(() => {
      typingSent = 0;
      desk("SetTyping", "SetTypingRequest", "SetTypingResponse", { interaction_id: i.id, typing: false }).catch(() => {});
    }, 4000);
  });
  reply.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = text.value.trim();
    if (!body) { text.focus(); return; }
    try {
      const sent = await desk("SendMessage", "SendMessageRequest", "ConversationMessage",
        { interaction_id: i.id, text: body, subject: panel.querySelector(".subject").value.trim() });
      clearTimeout(typingStop);
      typingSent = 0;
      addMessage(entry, sent);
      text.value = "";
      notice(t("reply.sent"));
      text.focus();
    } catch (e) { failed(e); }
  });

  // Complete: a code from the queue's list, or free text when the queue has none.
  const codes = o.wrap_up_codes || [];
  const select = panel.querySelector(".code-select");
  panel.querySelector(".code-select-field").hidden = !codes.length;
  panel.querySelector(".code-text-field").hidden = !!codes.length;
  for (const c of codes) select.append(el("option", { value: c, text: c }));
  if (o.default_wrap_up_code) select.value = o.default_wrap_up_code;
  panel.querySelector(".complete").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const code = codes.length ? select.value : panel.querySelector(".code-text").value.trim();
    try {
      await desk("Complete", "CompleteRequest", "Interaction",
        { interaction_id: i.id, wrap_up_code: code, notes: panel.querySelector(".notes").value });
      closeTab(i.id);
      notice(t("complete.done", { code: code || "—" }));
      refreshStatus();
      refreshMyDay();
    } catch (e) { failed(e); }
  });

  // Transfer to a queue or an agent, with a note; the field suggests my queues and my
  // colleagues with their state (fresh when the field is entered).
  panel.querySelector(".target").addEventListener("focus", refreshColleagues);
  panel.querySelector(".transfer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const target = panel.querySelector(".target").value.trim();
    if (!target) { panel.querySelector(".target").focus(); return; }
    const toAgent = panel.querySelector(".to-agent").checked;
    const req = { interaction_id: i.id, note: panel.querySelector(".tnote").value };
    if (toAgent) req.agent = target; else req.queue = target;
    try {
      await desk("Transfer", "TransferRequest", "Interaction", req);
      closeTab(i.id);
      notice(t("transfer.done"));
    } catch (e) { failed(e); }
  });

  // Warm transfer, holder's side: consult the target first, then complete or cancel.
  const consultButtons = (on) => {
    panel.querySelector(".consult-complete").hidden = !on;
    panel.querySelector(".consult-cancel").hidden = !on;
  };
  panel.querySelector(".consult").addEventListener("click", async () => {
    const target = panel.querySelector(".target").value.trim();
    if (!target) { panel.querySelector(".target").focus(); return; }
    const req = { interaction_id: i.id, note: panel.querySelector(".tnote").value };
    if (panel.querySelector(".to-agent").checked) req.agent = target; else req.queue = target;
    try {
      await desk("StartConsult", "StartConsultRequest", "Interaction", req);
      consultButtons(true);
      notice(t("consult.started"));
    } catch (e) { failed(e); }
  });
  panel.querySelector(".consult-complete").addEventListener("click", async () => {
    try {
      await desk("CompleteTransfer", "InteractionAction", "Interaction", { interaction_id: i.id });
      closeTab(i.id);
      notice(t("consult.done"));
    } catch (e) { failed(e); }
  });
  panel.querySelector(".consult-cancel").addEventListener("click", async () => {
    try {
      await desk("CancelConsult", "InteractionAction", "Interaction", { interaction_id: i.id });
      consultButtons(false);
      notice(t("consult.cancelled"));
    } catch (e) { failed(e); }
  });
  // Consulted agent's side: read only until the transfer is completed.
  entry.consulting = !!consulting;
  setConsulting(entry, entry.consulting, o);

  tab.addEventListener("click", () => selectTab(i.id));
  tab.addEventListener("keydown", (ev) => {
    const keys = [...tabs.keys()];
    const at = keys.indexOf(i.id);
    let next = null;
    if (ev.key === "ArrowRight") next = keys[(at + 1) % keys.length];
    if (ev.key === "ArrowLeft") next = keys[(at - 1 + keys.length) % keys.length];
    if (ev.key === "Home") next = keys[0];
    if (ev.key === "End") next = keys[keys.length - 1];
    if (next) { ev.preventDefault(); selectTab(next); tabs.get(next).tab.focus(); }
  });
  $("tabs").append(tab);
  $("panels").append(panel);
  $("work-none").hidden = true;
  selectTab(i.id);
  if (focus) (isVoice ? panel : text).focus();
}

// Shows a tab as a consultation (read only, with the colleague's note) or as work in hand.
function setConsulting(entry, on, o) {
  const p = entry.panel;
  const voice = entry.offer.interaction.channel === Channel.CHANNEL_VOICE;
  p.querySelector(".p-consult").hidden = !on;
  if (on && o) p.querySelector(".p-consult").textContent = consultText(o);
  p.querySelector(".reply").hidden = on || voice;
  p.querySelector(".complete").hidden = on;
  p.querySelector(".transfer").hidden = on;
  entry.consulting = on;
}

function closeTab(id) {
  const entry = tabs.get(id);
  if (!entry) return;
  entry.tab.remove();
  entry.panel.remove();
  tabs.delete(id);
  const first = tabs.keys().next();
  if (!first.done) selectTab(first.value);
  $("work-none").hidden = tabs.size > 0;
}

async function refreshStatus() {
  // Login is harmless once signed in to the router: it answers the status without change.
  if (!status || status.state.kind === Kind.KIND_OFFLINE) return;
  try { showStatus(await desk("Login", "LoginRequest", "AgentStatus", {})); } catch (_) { /* shown later */ }
}

// ---------- my day: my figures today and my satisfaction ----------
function minutesSeconds(secs) {
  const total = Math.round(Number(secs));
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`;
}

async function refreshMyDay() {
  try {
    const d = await desk("GetMyDay", "GetMyDayRequest", "MyDay", {});
    const rows = [
      ["day.handled", d.handled], ["day.offered", d.offered], ["day.accepted", d.accepted],
      ["day.declined", d.declined], ["day.missed", d.missed], ["day.transferred", d.transferred],
      ["day.handling", d.average_handling_secs == null ? t("day.none") : minutesSeconds(d.average_handling_secs)],
      ["day.wrap_up", d.average_wrap_up_secs == null ? t("day.none") : minutesSeconds(d.average_wrap_up_secs)],
    ];
    const dl = $("day-figures");
    dl.textContent = "";
    for (const [key, value] of rows) dl.append(el("dt", { text: t(key) }), el("dd", { text: String(value == null ? 0 : value) }));
  } catch (_) { /* the next refresh tries again */ }
  try {
    const s = await desk("GetMySatisfaction", "GetMySatisfactionRequest", "MySatisfaction", {});
    const answers = Number(s.answers || 0);
    $("day-satisfaction").textContent = answers
      ? t("day.satisfaction", { average: Number(s.average).toFixed(1), count: answers })
      : t("day.satisfaction.none");
  } catch (_) { /* the next refresh tries again */ }
}

// ---------- transfer targets: my queues and my colleagues' presence ----------
function colleagueState(st) {
  switch (st && st.kind) {
    case Kind.KIND_AVAILABLE: return t("state.available");
    case Kind.KIND_PAUSED: return t("state.paused");
    case Kind.KIND_WRAP_UP: return t("colleague.wrap_up");
    default: return t("state.offline");
  }
}

async function refreshColleagues() {
  try {
    const r = await desk("ListColleagues", "ListColleaguesRequest", "ListColleaguesResponse", {});
    const list = $("transfer-targets");
    list.textContent = "";
    for (const q of r.queues || []) list.append(el("option", { value: q, label: t("colleague.queue", { queue: q }) }));
    for (const c of r.colleagues || []) {
      list.append(el("option", { value: c.agent_id, label: `${c.name || c.agent_id} — ${colleagueState(c.state)}` }));
    }
  } catch (_) { /* the next refresh tries again */ }
}

// ---------- the offer stream ----------
let streamAbort = null;
async function follow() {
  let backoff = 1000;
  for (;;) {
    streamAbort = new AbortController();
    try {
      await session.stream("AgentDesktop", "Offers", "OffersRequest", "OfferUpdate", {}, (u) => {
        backoff = 1000;
        $("stream-state").textContent = t("stream.connected");
        switch (u.update) {
          case "offer": showOffer(u.offer); break;
          // A consultation accepted before a reconnect comes back held: a consultation tab.
          case "held": openTab(u.held, false, isConsult(u.held)); break;
          // What the colleague consulted on one of my interactions answered.
          case "consult":
            notice(t("consult.news." + u.consult.kind, { agent: u.consult.agent_id }));
            break;
          case "withdrawn": {
            const w = u.withdrawn;
            const entry = tabs.get(w.interaction_id);
            if (entry && w.reason === "consult_completed") {
              setConsulting(entry, false);
              notice(t("consult.yours"));
              break;
            }
            if (entry && w.reason === "transferred") { closeTab(w.interaction_id); break; }
            if (entry && entry.consulting && w.reason.startsWith("consult_")) {
              closeTab(w.interaction_id);
              notice(t("consult.ended", { reason: w.reason }));
              break;
            }
          }
            if (offer && offer.interaction.id === u.withdrawn.interaction_id) {
              hideOffer();
              notice(t("offer.withdrawn", { reason: u.withdrawn.reason }));
            }
            break;
          case "message": {
            const entry = tabs.get(u.message.interaction_id);
            if (entry) addMessage(entry, u.message);
            break;
          }
          case "typing": {
            const entry = tabs.get(u.typing.interaction_id);
            if (entry) entry.panel.querySelector(".typing").hidden = !u.typing.typing;
            break;
          }
          default: break; // heartbeat
        }
      }, streamAbort.signal);
    } catch (e) {
      if (e && e.name === "AbortError") return;
      if (e && e.code === Code.PERMISSION_DENIED) { failed(e); return; }
    }
    $("stream-state").textContent = t("stream.reconnecting");
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 30000);
  }
}

// ---------- start ----------
function showSignIn(message) {
  $("desktop").hidden = true;
  $("signin").hidden = false;
  $("who-item").hidden = true;
  $("signout-item").hidden = true;
  if (message) $("signin-error").textContent = message;
  $("login").focus();
}

function startDesktop(who) {
  $("signin").hidden = true;
  $("desktop").hidden = false;
  $("who").textContent = who.name && who.name !== who.login ? `${who.name} (${who.login})` : who.login;
  $("who-item").hidden = false;
  $("signout-item").hidden = false;
  const known = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
  if (known && known.kind && known.kind !== Kind.KIND_OFFLINE) refreshStatusFromLogin();
  renderState();
  setInterval(renderState, 5000);
  refreshMyDay();
  setInterval(refreshMyDay, 60000);
  refreshColleagues();
  setInterval(refreshColleagues, 30000);
  follow();
  $("main").focus();
}

async function refreshStatusFromLogin() {
  try { showStatus(await desk("Login", "LoginRequest", "AgentStatus", {})); } catch (e) { failed(e); }
}

function init() {
  apply();
  wireSwitch($("lang"), () => { renderState(); refreshMyDay(); if (offer) showOffer(offer); });
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    unlockSound(); // the click that browsers require before a page may play sound
    const login = $("login").value.trim(), password = $("password").value;
    const error = $("signin-error");
    error.textContent = "";
    if (!login || !password) {
      error.textContent = t("signin.wrong");
      (login ? $("password") : $("login")).focus();
      return;
    }
    $("signin-submit").disabled = true;
    $("signin-submit").textContent = t("signin.busy");
    try {
      const who = await session.signIn(login, password);
      $("password").value = "";
      if (who.role === "supervisor" || who.role === "admin") {
        if (!who.agent_id) { location.assign("/console/supervisor"); return; }
      }
      startDesktop(who);
    } catch (e) {
      error.textContent = e.code === Code.UNAUTHENTICATED ? t("signin.wrong") : (e.message || t("error.network"));
      $("password").focus();
    } finally {
      $("signin-submit").disabled = false;
      $("signin-submit").textContent = t("signin.submit");
    }
  });
  $("signout").addEventListener("click", async () => {
    if (streamAbort) streamAbort.abort();
    try { await session.signOut(); } catch (_) { /* ended anyway */ }
    location.assign("/console/?signedout=1");
  });
  $("go-available").addEventListener("click", goAvailable);
  $("go-offline").addEventListener("click", goOffline);
  $("pause-form").addEventListener("submit", (ev) => { ev.preventDefault(); goPause($("pause-reason").value); });
  $("accept").addEventListener("click", accept);
  $("decline").addEventListener("click", decline);
  $("sound").addEventListener("click", unlockSound);
  $("device-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      showStatus(await desk("SetDevice", "SetDeviceRequest", "AgentStatus", { device: $("device").value.trim() }));
      notice(t("device.saved"));
    } catch (e) { failed(e); }
  });

  const params = new URLSearchParams(location.search);
  const s = session.current();
  if (s) { startDesktop(s.who); return; }
  showSignIn(params.has("expired") ? t("signin.expired") : params.has("signedout") ? t("signin.signedout") : "");
}

init();
