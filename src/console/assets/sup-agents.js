// The agents: live state and what each holds (Supervisor.ListAgents, read again every 3 s
// without touching a form being edited); skills and levels, capacity and name edited in place
// (SetAgentSkills, SetCapacity, UpsertAgent: routing re-matches at once); pause or log out an
// agent (AgentDesktop.SetState / Logout naming the agent, as supervisors may); add an agent
// (UpsertAgent) and remove one (RemoveAgent, refused while it holds interactions).
import { $, el, field, t, sup, desk, all, notice, failed, stateText, channelName, CHANNELS, Kind, scroller } from "./sup-util.js";

let agents = new Map(); // id -> AgentStatus
let timer = null;
let counter = 0;
const REASONS = ["break", "lunch", "meeting", "training", "admin"];

function levelSelect(id, value, labelText) {
  const s = el("select", { id, "aria-label": labelText });
  for (let l = 1; l <= 5; l++) s.append(el("option", { value: String(l), text: String(l) }));
  s.value = String(value || 1);
  return s;
}

// An editable list of skills: each a name and a level (1-5), a remove button, an add row.
function skillsEditor(prefix, skills) {
  const box = el("fieldset", { class: "skills-editor" }, el("legend", { i18n: "sup.agents.skills" }));
  const list = el("ul", { class: "plain" });
  const addRow = (skill, level) => {
    const n = ++counter;
    const li = el("li", { class: "skill-row", "data-skill": skill });
    const name = el("span", { class: "skill-name", id: `${prefix}-skill-${n}`, text: skill });
    const select = levelSelect(`${prefix}-level-${n}`, level, t("sup.agents.level.of", { skill }));
    select.classList.add("skill-level");
    const remove = el("button", { type: "button", class: "small", "aria-label": t("sup.agents.skill.remove", { skill }), i18n: "sup.agents.skill.remove.short" });
    remove.addEventListener("click", () => { li.remove(); });
    li.append(name, " ", select, " ", remove);
    list.append(li);
  };
  for (const s of skills) addRow(s.skill, s.level);
  const n = ++counter;
  const newName = el("input", { id: `${prefix}-new-skill-${n}`, maxlength: "64", autocomplete: "off", spellcheck: "false" });
  const newLevel = levelSelect(`${prefix}-new-level-${n}`, 3, t("sup.agents.new.level"));
  const add = el("button", { type: "button", i18n: "sup.agents.skill.add" });
  add.addEventListener("click", () => {
    const skill = newName.value.trim();
    if (!skill) { newName.focus(); return; }
    const existing = [...list.querySelectorAll(".skill-row")].find((li) => li.dataset.skill === skill);
    if (existing) existing.querySelector("select").value = newLevel.value;
    else addRow(skill, Number(newLevel.value));
    newName.value = "";
    newName.focus();
  });
  box.append(list, el("div", { class: "inline-row" }, field("sup.agents.new.skill", newName), newLevel, add));
  box.read = () => [...list.querySelectorAll(".skill-row")].map((li) => ({ skill: li.dataset.skill, level: Number(li.querySelector("select").value) }));
  return box;
}

function capacityEditor(prefix, capacity) {
  const box = el("fieldset", { class: "capacity-editor" }, el("legend", { i18n: "sup.agents.capacity" }));
  const inputs = {};
  for (const ch of CHANNELS) {
    inputs[ch] = el("input", { id: `${prefix}-cap-${ch}`, type: "number", min: "0", max: "100", step: "1", inputmode: "numeric", value: String(capacity ? capacity[ch] : 0) });
    box.append(el("div", { class: "field small-field" }, el("label", { for: inputs[ch].id, text: channelName(ch) }), inputs[ch]));
  }
  box.read = () => Object.fromEntries(CHANNELS.map((ch) => [ch, Math.max(0, Math.floor(Number(inputs[ch].value) || 0))]));
  return box;
}

function holdings(a) {
  const parts = [];
  for (const ch of CHANNELS) if (a.load && a.load[ch]) parts.push(`${channelName(ch)} ${a.load[ch]}`);
  return parts.length ? parts.join(" · ") : t("sup.agents.holds.none");
}

function capacityText(c) {
  return c ? CHANNELS.map((ch) => `${channelName(ch)} ${c[ch]}`).join(" · ") : "—";
}

function skillsText(skills) {
  return skills.length ? skills.map((s) => `${s.skill} ${s.level}`).join(", ") : "—";
}

function fillRow(tr, a) {
  tr.querySelector(".c-name").textContent = a.agent.name || a.agent.id;
  const st = tr.querySelector(".c-state");
  st.textContent = stateText(a.state);
  st.dataset.kind = String(a.state ? a.state.kind : Kind.KIND_OFFLINE);
  tr.querySelector(".c-holds").textContent = holdings(a) + (a.work.length ? ` (${a.work.map((w) => w.slice(-6)).join(", ")})` : "");
  tr.querySelector(".c-skills").textContent = skillsText(a.agent.skills);
  tr.querySelector(".c-capacity").textContent = capacityText(a.agent.capacity);
}

function editor(a, tr) {
  const prefix = "edit-" + a.agent.id.replace(/[^A-Za-z0-9_-]/g, "_");
  const name = el("input", { id: `${prefix}-name`, maxlength: "200", value: a.agent.name });
  const skills = skillsEditor(prefix, a.agent.skills);
  const capacity = capacityEditor(prefix, a.agent.capacity);
  const form = el("form", { class: "editor", "aria-label": t("sup.agents.edit.of", { agent: a.agent.id }) },
    field("sup.col.name", name), skills, capacity,
    el("div", { class: "buttons" },
      el("button", { type: "submit", class: "primary", i18n: "sup.save" }),
      el("button", { type: "button", class: "cancel", i18n: "sup.cancel" }),
      el("button", { type: "button", class: "remove danger", i18n: "sup.agents.remove" })));
  const row = el("tr", { class: "editor-row", "data-editor": a.agent.id }, el("td", { colspan: "7" }, form));
  const close = () => { row.remove(); tr.querySelector(".edit").setAttribute("aria-expanded", "false"); tr.querySelector(".edit").focus(); };
  form.querySelector(".cancel").addEventListener("click", close);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = a.agent.id;
    try {
      const latest = agents.get(id) || a;
      if (name.value.trim() && name.value.trim() !== latest.agent.name) {
        await sup("UpsertAgent", "UpsertAgentRequest", "AgentStatus", { agent: Object.assign({}, latest.agent, { name: name.value.trim() }) });
      }
      await sup("SetAgentSkills", "SetAgentSkillsRequest", "AgentStatus", { agent_id: id, skills: skills.read() });
      const status = await sup("SetCapacity", "SetCapacityRequest", "AgentStatus", { agent_id: id, capacity: capacity.read() });
      agents.set(id, status);
      fillRow(tr, status);
      close();
      notice(t("sup.agents.saved", { agent: id }));
    } catch (e) { failed(e); }
  });
  form.querySelector(".remove").addEventListener("click", async () => {
    if (!window.confirm(t("sup.agents.remove.confirm", { agent: a.agent.id }))) return;
    try {
      await sup("RemoveAgent", "RemoveAgentRequest", "RemoveResponse", { agent_id: a.agent.id });
      row.remove(); tr.remove(); agents.delete(a.agent.id);
      notice(t("sup.agents.removed", { agent: a.agent.id }));
      $("agents-title").focus();
    } catch (e) { failed(e); }
  });
  return row;
}

function agentRow(a) {
  const id = a.agent.id;
  const edit = el("button", { type: "button", class: "edit small", "aria-expanded": "false", "aria-label": t("sup.agents.edit.of", { agent: id }), i18n: "sup.edit" });
  const reason = el("select", { class: "pause-reason", "aria-label": t("sup.agents.reason.of", { agent: id }) },
    ...REASONS.map((r) => el("option", { value: r, text: t("reason." + r) })));
  const pause = el("button", { type: "button", class: "pause small", "aria-label": t("sup.agents.pause.of", { agent: id }), i18n: "state.go.pause" });
  const logout = el("button", { type: "button", class: "logout small", "aria-label": t("sup.agents.logout.of", { agent: id }), i18n: "sup.agents.logout" });
  const tr = el("tr", { "data-agent": id },
    el("th", { scope: "row", text: id }),
    el("td", { class: "c-name" }), el("td", { class: "c-state state-cell" }), el("td", { class: "c-holds" }),
    el("td", { class: "c-skills" }), el("td", { class: "c-capacity" }),
    el("td", { class: "actions" }, edit, " ", reason, " ", pause, " ", logout));
  fillRow(tr, a);
  edit.addEventListener("click", () => {
    const open = document.querySelector(`tr[data-editor="${CSS.escape(id)}"]`);
    if (open) { open.remove(); edit.setAttribute("aria-expanded", "false"); return; }
    const row = editor(agents.get(id) || a, tr);
    tr.after(row);
    edit.setAttribute("aria-expanded", "true");
    row.querySelector("input").focus();
  });
  pause.addEventListener("click", async () => {
    try {
      const s = await desk("SetState", "SetStateRequest", "AgentStatus", { agent_id: id, state: Kind.KIND_PAUSED, pause_reason: reason.value });
      agents.set(id, s); fillRow(tr, s);
      notice(t("sup.agents.paused", { agent: id }));
    } catch (e) { failed(e); }
  });
  logout.addEventListener("click", async () => {
    try {
      const s = await desk("Logout", "LogoutRequest", "AgentStatus", { agent_id: id });
      agents.set(id, s); fillRow(tr, s);
      notice(t("sup.agents.loggedout", { agent: id }));
    } catch (e) { failed(e); }
  });
  return tr;
}

async function refresh() {
  let list;
  try { list = await all("ListAgents", "ListAgentsRequest", "ListAgentsResponse", "agents"); } catch (e) { failed(e); return; }
  const body = $("agents");
  const seen = new Set();
  for (const a of list) {
    seen.add(a.agent.id);
    agents.set(a.agent.id, a);
    const tr = body.querySelector(`tr[data-agent="${CSS.escape(a.agent.id)}"]`);
    if (tr) fillRow(tr, a); else body.append(agentRow(a));
  }
  for (const tr of body.querySelectorAll("tr[data-agent]")) {
    if (!seen.has(tr.dataset.agent)) {
      const ed = body.querySelector(`tr[data-editor="${CSS.escape(tr.dataset.agent)}"]`);
      if (ed) ed.remove();
      tr.remove();
      agents.delete(tr.dataset.agent);
    }
  }
}

function addForm() {
  const id = el("input", { id: "new-agent-id", maxlength: "64", required: true, autocomplete: "off", spellcheck: "false" });
  const name = el("input", { id: "new-agent-name", maxlength: "200" });
  const skills = skillsEditor("new-agent", []);
  const capacity = capacityEditor("new-agent", { voice: 1, email: 5, sms: 3, chat: 3 });
  const form = el("form", { id: "add-agent", class: "editor" },
    field("sup.col.id", id, "sup.agents.id.hint"), field("sup.col.name", name), skills, capacity,
    el("button", { type: "submit", class: "primary", i18n: "sup.agents.add" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const agentId = id.value.trim();
    if (!agentId) { id.focus(); notice(t("sup.agents.id.missing"), true); return; }
    if (agents.has(agentId)) { id.focus(); notice(t("sup.agents.exists", { agent: agentId }), true); return; }
    try {
      await sup("UpsertAgent", "UpsertAgentRequest", "AgentStatus",
        { agent: { id: agentId, name: name.value.trim() || agentId, skills: skills.read(), capacity: capacity.read() } });
      notice(t("sup.agents.added", { agent: agentId }));
      id.value = ""; name.value = "";
      await refresh();
    } catch (e) { failed(e); }
  });
  return form;
}

export async function start(root) {
  root.append(
    el("section", { "aria-labelledby": "agents-title" },
      el("h2", { id: "agents-title", tabindex: "-1", i18n: "sup.agents" }),
      scroller("sup.agents", el("table", { id: "agents-table" },
        el("thead", {}, el("tr", {}, ...["sup.col.id", "sup.col.name", "sup.col.state", "sup.agents.holds", "sup.agents.skills", "sup.agents.capacity", "sup.col.actions"]
          .map((k) => el("th", { scope: "col", i18n: k })))),
        el("tbody", { id: "agents" })))),
    el("details", { class: "panel" }, el("summary", { i18n: "sup.agents.add.title" }),
      el("p", { class: "muted", i18n: "sup.agents.add.help" }), addForm()),
  );
  await refresh();
  timer = setInterval(refresh, 3000);
  // A language switch draws the rows again (their buttons' names are in the language).
  return { refresh: () => { $("agents").replaceChildren(); refresh(); }, stop: () => clearInterval(timer) };
}
