// The queues: every queue (Supervisor.ListQueues) and one form to create a queue or edit one
// (UpsertQueue) or remove one (RemoveQueue): channels, requirements, default priority, strategy, announced delays per
// channel in seconds or working days, escalation steps, overflow, offer timeout, missed offers
// before a pause, wrap-up and its codes, whether the public page shows it. Editing starts from
// the queue as the server has it, so fields this form does not show are kept as they are.
import { $, el, field, t, sup, all, notice, failed, channelName, CHANNELS, CHANNEL_NUMBER, Strategy, scroller } from "./sup-util.js";

let queues = [];
let editing = null; // the Queue being edited (null: a new one)

const STRATEGIES = [["STRATEGY_MOST_COMPETENT", "most_competent"], ["STRATEGY_LONGEST_IDLE", "longest_idle"],
  ["STRATEGY_LEAST_OCCUPIED", "least_occupied"], ["STRATEGY_ROUND_ROBIN", "round_robin"]];
const OVERFLOWS = ["none", "queue", "voicemail", "callback", "message"];

function strategyName(n) {
  const s = STRATEGIES.find(([k]) => Strategy[k] === n);
  return t("sup.queues.strategy." + (s ? s[1] : "most_competent"));
}

function requirementsText(list) {
  return list.map((r) => `${r.skill}=${r.min_level}`).join(", ");
}

// "lang:fr=2, general=1" -> requirements; throws with a message naming the bad entry.
function parseRequirements(text) {
  const out = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*([1-5])$/.exec(part);
    if (!m) throw new Error(t("sup.queues.requirements.bad", { entry: part.slice(0, 80) }));
    out.push({ skill: m[1], min_level: Number(m[2]) });
  }
  return out;
}

function escalationText(steps) {
  return steps.map((s) => {
    if (s.action === "lower_level") return `${s.after_secs} lower_level ${s.lower_level.skill} ${s.lower_level.to_level}`;
    if (s.action === "drop_skill") return `${s.after_secs} drop_skill ${s.drop_skill}`;
    if (s.action === "widen_to") return `${s.after_secs} widen_to ${s.widen_to}`;
    return `${s.after_secs}`;
  }).join("\n");
}

function parseEscalation(text) {
  const out = [];
  for (const line of text.split("\n").map((s) => s.trim()).filter(Boolean)) {
    const w = line.split(/\s+/);
    const after = Number(w[0]);
    const bad = () => new Error(t("sup.queues.escalation.bad", { line: line.slice(0, 80) }));
    if (!Number.isInteger(after) || after < 0) throw bad();
    if (w[1] === "lower_level" && w.length === 4 && /^[1-5]$/.test(w[3])) out.push({ after_secs: after, lower_level: { skill: w[2], to_level: Number(w[3]) } });
    else if (w[1] === "drop_skill" && w.length === 3) out.push({ after_secs: after, drop_skill: w[2] });
    else if (w[1] === "widen_to" && w.length === 3) out.push({ after_secs: after, widen_to: w[2] });
    else throw bad();
  }
  return out;
}

function overflowOf(q) {
  const o = q.overflow;
  if (!o || !o.action) return { kind: "none", after: 0, queue: "" };
  return { kind: o.action, after: o.after_secs, queue: o.action === "queue" ? o.queue : "" };
}

function num(id, min, max, value) {
  return el("input", { id, type: "number", min: String(min), max: String(max), step: "1", inputmode: "numeric", value: String(value || 0) });
}

function render() {
  const body = $("queues");
  body.replaceChildren();
  for (const q of queues) {
    const edit = el("button", { type: "button", class: "small", "aria-label": t("sup.queues.edit.of", { queue: q.id }), i18n: "sup.edit" });
    edit.addEventListener("click", () => fill(q));
    const channels = q.channels.length ? q.channels.map(channelName).join(", ") : t("sup.queues.channels.all");
    body.append(el("tr", { "data-queue": q.id },
      el("th", { scope: "row", text: q.id }), el("td", { text: q.name }), el("td", { text: channels }),
      el("td", { text: requirementsText(q.requirements) || "—" }), el("td", { text: strategyName(q.strategy) }),
      el("td", { class: "num", text: String(q.default_priority) }), el("td", {}, edit)));
  }
}

function fill(q) {
  editing = q;
  const f = (id) => $(id);
  f("q-title").textContent = q ? t("sup.queues.edit.of", { queue: q.id }) : t("sup.queues.new");
  f("q-id").value = q ? q.id : "";
  f("q-id").readOnly = !!q;
  f("q-name").value = q ? q.name : "";
  for (const ch of CHANNELS) {
    f("q-ch-" + ch).checked = !q || !q.channels.length || q.channels.includes(CHANNEL_NUMBER[ch]);
    f("q-sla-" + ch).value = String(q && q.sla_target_secs ? q.sla_target_secs[ch] : 0);
    f("q-days-" + ch).value = String(q && q.sla_working_days ? q.sla_working_days[ch] : 0);
  }
  f("q-req").value = q ? requirementsText(q.requirements) : "";
  f("q-prio").value = String(q ? q.default_priority : 0);
  f("q-strategy").value = String(q && q.strategy ? q.strategy : Strategy.STRATEGY_MOST_COMPETENT);
  f("q-esc").value = q ? escalationText(q.escalation) : "";
  const o = overflowOf(q || {});
  f("q-of-kind").value = o.kind;
  f("q-of-after").value = String(o.after);
  f("q-of-queue").value = o.queue;
  f("q-offer").value = String(q ? q.offer_timeout_secs : 0);
  f("q-misses").value = q && q.max_misses !== undefined ? String(q.max_misses) : "";
  f("q-wrap").value = String(q ? q.wrap_up_secs : 0);
  f("q-codes").value = q ? q.wrap_up_codes.join(", ") : "";
  f("q-default-code").value = q ? q.default_wrap_up_code : "";
  f("q-public").checked = !q || q.public === undefined || q.public;
  f("q-remove").hidden = !q;
  $("q-form-section").hidden = false;
  f("q-title").focus();
}

function read() {
  const v = (id) => $(id).value.trim();
  const n = (id) => Math.max(0, Math.floor(Number($(id).value) || 0));
  const q = Object.assign({}, editing || {});
  q.id = v("q-id");
  if (!q.id) throw new Error(t("sup.queues.id.missing"));
  q.name = v("q-name") || q.id;
  const channels = CHANNELS.filter((ch) => $("q-ch-" + ch).checked);
  if (!channels.length) throw new Error(t("sup.queues.channels.none"));
  q.channels = channels.length === 4 ? [] : channels.map((ch) => CHANNEL_NUMBER[ch]);
  q.requirements = parseRequirements(v("q-req"));
  q.default_priority = n("q-prio");
  q.strategy = Number($("q-strategy").value);
  q.sla_target_secs = Object.fromEntries(CHANNELS.map((ch) => [ch, n("q-sla-" + ch)]));
  q.sla_working_days = Object.fromEntries(CHANNELS.map((ch) => [ch, n("q-days-" + ch)]));
  q.escalation = parseEscalation($("q-esc").value);
  const kind = $("q-of-kind").value;
  if (kind === "none") q.overflow = null;
  else if (kind === "queue") {
    if (!v("q-of-queue")) throw new Error(t("sup.queues.overflow.queue.missing"));
    q.overflow = { after_secs: n("q-of-after"), queue: v("q-of-queue") };
  } else q.overflow = { after_secs: n("q-of-after"), [kind]: true };
  q.offer_timeout_secs = n("q-offer");
  if (v("q-misses") === "") delete q.max_misses; else q.max_misses = n("q-misses");
  q.wrap_up_secs = n("q-wrap");
  q.wrap_up_codes = v("q-codes").split(",").map((s) => s.trim()).filter(Boolean);
  q.default_wrap_up_code = v("q-default-code");
  q.public = $("q-public").checked;
  // Decoded oneof markers are not fields.
  for (const k of Object.keys(q)) if (k.startsWith("_")) delete q[k];
  return q;
}

function form() {
  const strategy = el("select", { id: "q-strategy" }, ...STRATEGIES.map(([k, name]) => el("option", { value: String(Strategy[k]), text: t("sup.queues.strategy." + name) })));
  const ofKind = el("select", { id: "q-of-kind" }, ...OVERFLOWS.map((k) => el("option", { value: k, text: t("sup.queues.overflow." + k) })));
  const channels = el("fieldset", { class: "radios" }, el("legend", { i18n: "sup.queues.channels" }),
    ...CHANNELS.map((ch) => el("label", {}, el("input", { type: "checkbox", id: "q-ch-" + ch }), " ", channelName(ch))));
  const delays = el("fieldset", {}, el("legend", { i18n: "sup.queues.delays" }), el("p", { class: "muted", i18n: "sup.queues.delays.help" }),
    el("table", { class: "compact" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", i18n: "sup.col.channel" }), el("th", { scope: "col", i18n: "sup.queues.delay.secs" }), el("th", { scope: "col", i18n: "sup.queues.delay.days" }))),
      el("tbody", {}, ...CHANNELS.map((ch) => el("tr", {}, el("th", { scope: "row", text: channelName(ch) }),
        el("td", {}, (() => { const i = num("q-sla-" + ch, 0, 7776000, 0); i.setAttribute("aria-label", t("sup.queues.delay.secs.of", { channel: channelName(ch) })); return i; })()),
        el("td", {}, (() => { const i = num("q-days-" + ch, 0, 365, 0); i.setAttribute("aria-label", t("sup.queues.delay.days.of", { channel: channelName(ch) })); return i; })()))))));
  const f = el("form", { id: "q-form", class: "editor", novalidate: true },
    field("sup.col.id", el("input", { id: "q-id", maxlength: "64", required: true, autocomplete: "off", spellcheck: "false" })),
    field("sup.col.name", el("input", { id: "q-name", maxlength: "200" })),
    channels,
    field("sup.queues.requirements", el("input", { id: "q-req", maxlength: "2000", spellcheck: "false" }), "sup.queues.requirements.hint"),
    field("sup.queues.priority", num("q-prio", 0, 1000000, 0)),
    field("sup.queues.strategy", strategy),
    delays,
    field("sup.queues.escalation", el("textarea", { id: "q-esc", rows: "3", maxlength: "4000", spellcheck: "false" }), "sup.queues.escalation.hint"),
    el("fieldset", {}, el("legend", { i18n: "sup.queues.overflow" }),
      field("sup.queues.overflow.kind", ofKind), field("sup.queues.overflow.after", num("q-of-after", 0, 7776000, 0)),
      field("sup.queues.overflow.queue", el("input", { id: "q-of-queue", maxlength: "64", spellcheck: "false" }))),
    field("sup.queues.offer", num("q-offer", 0, 600, 0), "sup.queues.offer.hint"),
    field("sup.queues.misses", el("input", { id: "q-misses", type: "number", min: "0", max: "1000", step: "1", inputmode: "numeric" }), "sup.queues.misses.hint"),
    field("sup.queues.wrap", num("q-wrap", 0, 3600, 0)),
    field("sup.queues.codes", el("input", { id: "q-codes", maxlength: "4000", spellcheck: "false" }), "sup.queues.codes.hint"),
    field("sup.queues.default_code", el("input", { id: "q-default-code", maxlength: "64", spellcheck: "false" })),
    el("div", { class: "field radios" }, el("label", {}, el("input", { type: "checkbox", id: "q-public" }), " ", el("span", { i18n: "sup.queues.public" }))),
    el("div", { class: "buttons" }, el("button", { type: "submit", class: "primary", i18n: "sup.save" }),
      el("button", { type: "button", id: "q-cancel", i18n: "sup.cancel" }),
      el("button", { type: "button", id: "q-remove", class: "danger", i18n: "sup.queues.remove" })));
  f.querySelector("#q-remove").addEventListener("click", async () => {
    if (!editing || !window.confirm(t("sup.queues.remove.confirm", { queue: editing.id }))) return;
    try {
      // Refused while interactions wait in it, another queue or an active tree names it: the
      // server's message says which.
      await sup("RemoveQueue", "RemoveQueueRequest", "RemoveResponse", { queue_id: editing.id });
      notice(t("sup.queues.removed", { queue: editing.id }));
      queues = await all("ListQueues", "ListQueuesRequest", "ListQueuesResponse", "queues");
      render();
      $("q-form-section").hidden = true;
      $("q-new").focus();
    } catch (e) { failed(e); }
  });
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let q;
    try { q = read(); } catch (e) { notice(e.message, true); return; }
    try {
      const saved = await sup("UpsertQueue", "UpsertQueueRequest", "Queue", { queue: q });
      notice(t("sup.queues.saved", { queue: saved.id }));
      queues = await all("ListQueues", "ListQueuesRequest", "ListQueuesResponse", "queues");
      render();
      $("q-form-section").hidden = true;
      const again = document.querySelector(`tr[data-queue="${CSS.escape(saved.id)}"] button`);
      if (again) again.focus();
    } catch (e) { failed(e); }
  });
  f.querySelector("#q-cancel").addEventListener("click", () => { $("q-form-section").hidden = true; $("q-new").focus(); });
  return f;
}

export async function start(root) {
  const create = el("button", { type: "button", id: "q-new", class: "primary", i18n: "sup.queues.new" });
  create.addEventListener("click", () => fill(null));
  root.append(
    el("div", { class: "buttons" }, create),
    el("section", { id: "q-form-section", class: "panel", "aria-labelledby": "q-title", hidden: true },
      el("h2", { id: "q-title", tabindex: "-1" }), form()),
    el("section", { "aria-labelledby": "queues-title" },
      el("h2", { id: "queues-title", i18n: "sup.nav.queues" }),
      scroller("sup.nav.queues", el("table", {},
        el("thead", {}, el("tr", {}, ...["sup.col.id", "sup.col.name", "sup.queues.channels", "sup.queues.requirements", "sup.queues.strategy", "sup.queues.priority", "sup.col.actions"]
          .map((k) => el("th", { scope: "col", i18n: k })))),
        el("tbody", { id: "queues" })))));
  try { queues = await all("ListQueues", "ListQueuesRequest", "ListQueuesResponse", "queues"); } catch (e) { failed(e); }
  render();
  return { refresh: render };
}
