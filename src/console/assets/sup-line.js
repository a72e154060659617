// The waiting line, live from Supervisor.WatchWaiting: each queue's waiting interactions in the
// order they will be served, then those held by agents. Choosing one opens its panel: Explain in
// plain words (Supervisor.Explain), change its priority (Reprioritise), move it to another queue
// (Move), or give it to one agent (ForceAssign). Rows are reused between updates so that the
// panel and the focus stay where they are.
import { $, el, field, t, sup, all, notice, failed, channelName, wait, Phase, scroller } from "./sup-util.js";
import * as session from "./session.js";

let lines = [];
let queues = [];
let agentIds = [];
let chosen = null; // the interaction id whose panel is open
const abort = new AbortController();

function queueName(id) {
  const q = queues.find((x) => x.id === id);
  return q && q.name && q.name !== id ? `${q.name} (${id})` : id;
}

function ref(i) { return i.reference || i.id.slice(-10); }

function row(i, position, now) {
  const manage = el("button", { type: "button", class: "small manage", "aria-label": t("sup.line.manage.of", { ref: ref(i) }), i18n: "sup.line.manage" });
  manage.addEventListener("click", () => open(i.id));
  const phase = i.phase === Phase.PHASE_WAITING ? "" : t("sup.line.phase." + i.phase, { agent: i.agent || i.target_agent || "" });
  return el("tr", { "data-interaction": i.id, class: chosen === i.id ? "chosen" : null },
    el("td", { class: "num", text: position ? String(position) : "—" }),
    el("th", { scope: "row", text: ref(i) }),
    el("td", { text: channelName(i.channel) }),
    el("td", { text: i.contact || "—" }),
    el("td", { class: "num priority", text: String(i.priority) }),
    el("td", { class: "num", text: wait(now - i.enqueued_at_unix_ms) }),
    el("td", { text: (i.target_agent ? t("sup.line.for", { agent: i.target_agent }) + " " : "") + phase }),
    el("td", {}, manage));
}

function render() {
  const root = $("lines");
  if (!root) return;
  const now = Date.now();
  // The rows are drawn again: a "Manage" button that had the focus gets it back.
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[data-interaction]") : null;
  const refocus = focused && root.contains(focused) ? focused.dataset.interaction : null;
  root.replaceChildren();
  let any = false;
  for (const line of lines) {
    if (!line.waiting_total && !line.in_progress_total) continue;
    any = true;
    const id = "line-" + line.queue.replace(/[^A-Za-z0-9_-]/g, "_");
    const body = el("tbody", {});
    line.waiting.forEach((i, n) => body.append(row(i, n + 1, now)));
    line.in_progress.forEach((i) => body.append(row(i, 0, now)));
    root.append(el("section", { "aria-labelledby": id, "data-queue": line.queue },
      el("h3", { id, text: t("sup.line.queue", { queue: queueName(line.queue), waiting: line.waiting_total, held: line.in_progress_total }) }),
      scroller("sup.line.lines", el("table", {},
        el("thead", {}, el("tr", {}, ...["sup.line.col.pos", "sup.line.col.ref", "sup.col.channel", "sup.line.col.contact",
          "sup.line.col.priority", "sup.line.col.waited", "sup.line.col.state", "sup.col.actions"].map((k) => el("th", { scope: "col", i18n: k })))),
        body))));
  }
  $("lines-none").hidden = any;
  if (refocus) {
    const again = root.querySelector(`tr[data-interaction="${CSS.escape(refocus)}"] .manage`);
    if (again) again.focus();
  }
  if (chosen) refreshPanelFacts();
}

function find(id) {
  for (const line of lines) {
    for (const i of line.waiting.concat(line.in_progress)) if (i.id === id) return i;
  }
  return null;
}

function refreshPanelFacts() {
  const i = find(chosen);
  const facts = $("panel-facts");
  if (!facts) return;
  if (!i) { facts.textContent = t("sup.line.gone"); return; }
  facts.textContent = t("sup.line.facts", { ref: ref(i), channel: channelName(i.channel), queue: queueName(i.queue), priority: i.priority });
}

async function explain(id) {
  try {
    const x = await sup("Explain", "ExplainRequest", "Explanation", { interaction_id: id });
    $("explain").textContent = x.text;
  } catch (e) { $("explain").textContent = ""; failed(e); }
}

function open(id) {
  chosen = id;
  const i = find(id);
  const panel = $("line-panel");
  panel.hidden = false;
  $("prio").value = i ? String(i.priority) : "0";
  $("move-to").value = i ? i.queue : "";
  refreshPanelFacts();
  for (const tr of document.querySelectorAll("tr[data-interaction]")) tr.classList.toggle("chosen", tr.dataset.interaction === id);
  explain(id);
  $("panel-title").focus();
}

async function act(method, req, body, done) {
  try {
    await sup(method, req, "Interaction", Object.assign({ interaction_id: chosen }, body));
    notice(done);
    await explain(chosen);
  } catch (e) { failed(e); }
}

function panel() {
  const prio = el("input", { id: "prio", type: "number", min: "0", max: "1000000", step: "1", inputmode: "numeric" });
  const moveTo = el("select", { id: "move-to" });
  const assignTo = el("select", { id: "assign-to" });
  const prioForm = el("form", { id: "prio-form", class: "inline" }, field("sup.line.priority", prio, "sup.line.priority.hint"),
    el("button", { type: "submit", i18n: "sup.line.reprioritise" }));
  const moveForm = el("form", { id: "move-form", class: "inline" }, field("sup.line.move", moveTo),
    el("button", { type: "submit", i18n: "sup.line.move.submit" }));
  const assignForm = el("form", { id: "assign-form", class: "inline" }, field("sup.line.assign", assignTo, "sup.line.assign.hint"),
    el("button", { type: "submit", i18n: "sup.line.assign.submit" }));
  prioForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = Math.floor(Number(prio.value));
    if (!Number.isFinite(p) || p < 0) { prio.focus(); notice(t("sup.line.priority.bad"), true); return; }
    act("Reprioritise", "ReprioritiseRequest", { priority: p }, t("sup.line.reprioritised", { priority: p }));
  });
  moveForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act("Move", "MoveRequest", { queue: moveTo.value }, t("sup.line.moved", { queue: moveTo.value }));
  });
  assignForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act("ForceAssign", "ForceAssignRequest", { agent_id: assignTo.value }, t("sup.line.assigned", { agent: assignTo.value }));
  });
  const close = el("button", { type: "button", i18n: "sup.close" });
  close.addEventListener("click", () => {
    const id = chosen;
    chosen = null;
    $("line-panel").hidden = true;
    const tr = document.querySelector(`tr[data-interaction="${CSS.escape(id)}"] .manage`);
    if (tr) tr.focus();
  });
  return el("section", { id: "line-panel", class: "panel", "aria-labelledby": "panel-title", hidden: true },
    el("h2", { id: "panel-title", tabindex: "-1", i18n: "sup.line.panel" }),
    el("p", { id: "panel-facts" }),
    el("h3", { i18n: "sup.line.explain" }),
    el("p", { id: "explain", class: "explain" }),
    el("div", { class: "three" }, prioForm, moveForm, assignForm),
    close);
}

async function follow() {
  let backoff = 1000;
  for (;;) {
    try {
      await session.stream("Supervisor", "WatchWaiting", "WatchWaitingRequest", "ListWaitingResponse",
        { min_interval_ms: 500, max_per_queue: 100 }, (m) => { backoff = 1000; $("line-state").textContent = ""; lines = m.lines; render(); }, abort.signal);
    } catch (e) {
      if (e && e.name === "AbortError") return;
      if (e && e.code === 7) return;
    }
    if (abort.signal.aborted) return;
    $("line-state").textContent = t("stream.reconnecting");
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 30000);
  }
}

export async function start(root) {
  root.append(
    el("p", { class: "muted", i18n: "sup.line.help" }),
    el("p", { id: "line-state", class: "muted" }),
    panel(),
    el("section", { "aria-labelledby": "lines-title" },
      el("h2", { id: "lines-title", i18n: "sup.line.lines" }),
      el("p", { id: "lines-none", class: "muted", i18n: "sup.line.none" }),
      el("div", { id: "lines" })));
  try {
    queues = await all("ListQueues", "ListQueuesRequest", "ListQueuesResponse", "queues");
    agentIds = (await all("ListAgents", "ListAgentsRequest", "ListAgentsResponse", "agents")).map((a) => a.agent.id);
  } catch (e) { failed(e); }
  $("move-to").replaceChildren(...queues.map((q) => el("option", { value: q.id, text: queueName(q.id) })));
  $("assign-to").replaceChildren(...agentIds.map((a) => el("option", { value: a, text: a })));
  follow();
  // The waits grow between updates.
  const tick = setInterval(render, 5000);
  return { refresh: render, stop: () => { abort.abort(); clearInterval(tick); } };
}
