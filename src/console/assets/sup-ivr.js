// The IVR trees: every stored version with its author, date and comment
// (Supervisor.ListIvrVersions); a version viewed as a diagram (GetIvrVersion: the tree drawn as
// nested lists from its entry node, each node with what leads where); a version edited or a new
// one uploaded as JSON, validated first (ValidateIvrTree) with every problem shown at the node at
// fault, then stored (PutIvrVersion, optionally activated); a version activated
// (ActivateIvrVersion) and a tree rolled back (RollbackIvr).
import { $, el, field, t, sup, all, notice, failed, scroller } from "./sup-util.js";

let versions = [];

function when(ms) {
  return ms ? new Date(ms).toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "fr-FR", { dateStyle: "short", timeStyle: "short" }) : "—";
}

// ---------- the diagram ----------
// The edges of a node: every string naming another node, labelled by where it is in the node
// ("next", "open", "options 1", "rules 1 goto"...).
function edges(node, nodes) {
  const out = [];
  const walk = (value, label) => {
    if (typeof value === "string") { if (Object.prototype.hasOwnProperty.call(nodes, value) && label !== "type") out.push([label, value]); return; }
    if (Array.isArray(value)) { value.forEach((v, i) => walk(v, `${label} ${i + 1}`)); return; }
    if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) if (k !== "prompt" && k !== "text") walk(v, label ? `${label} ${k}` : k);
    }
  };
  walk(node, "");
  return out;
}

function summary(node) {
  const parts = [node.type || "?"];
  for (const k of ["queue", "skill", "min_level", "language", "priority", "key", "value", "number", "to"]) {
    if (node[k] !== undefined && typeof node[k] !== "object") parts.push(`${k} ${node[k]}`);
  }
  const prompt = node.prompt && node.prompt.text ? Object.values(node.prompt.text)[0] : null;
  if (typeof prompt === "string") parts.push(`« ${prompt.slice(0, 90)}${prompt.length > 90 ? "…" : ""} »`);
  return parts.join(" · ");
}

/** Draws `tree` (parsed JSON) as nested lists; `problems` by node id are shown at their node. */
export function diagram(tree, problems) {
  const nodes = (tree && tree.nodes && typeof tree.nodes === "object") ? tree.nodes : {};
  const byNode = new Map();
  for (const p of problems || []) {
    if (!byNode.has(p.node)) byNode.set(p.node, []);
    byNode.get(p.node).push(p.reason);
  }
  const seen = new Set();
  const item = (id, label) => {
    const li = el("li", { "data-node": id });
    const head = el("p", { class: "node" }, label ? el("span", { class: "edge", text: label + " → " }) : null, el("code", { text: id }));
    li.append(head);
    const node = nodes[id];
    if (!node) { li.append(el("p", { class: "error", text: t("sup.ivr.missing", { node: id }) })); return li; }
    if (seen.has(id)) { head.append(" ", el("span", { class: "muted", i18n: "sup.ivr.above" })); return li; }
    seen.add(id);
    head.append(" ", el("span", { text: summary(node) }));
    const faults = byNode.get(id);
    if (faults) {
      li.classList.add("fault");
      for (const r of faults) li.append(el("p", { class: "error fault-reason" }, el("strong", { i18n: "sup.ivr.problem" }), " " + r));
    }
    const children = edges(node, nodes);
    if (children.length) {
      const ul = el("ul", {});
      for (const [l, target] of children) ul.append(item(target, l));
      li.append(ul);
    }
    return li;
  };
  const box = el("div", { class: "diagram" });
  const general = byNode.get("") || [];
  for (const r of general) box.append(el("p", { class: "error fault-reason" }, el("strong", { i18n: "sup.ivr.problem" }), " " + r));
  box.append(el("p", {}, el("strong", { i18n: "sup.ivr.entry" }), " ", el("code", { text: String(tree && tree.entry || "—") })));
  const root = el("ul", { class: "tree" });
  if (tree && tree.entry) root.append(item(tree.entry, ""));
  box.append(root);
  const unreachable = Object.keys(nodes).filter((id) => !seen.has(id));
  if (unreachable.length) {
    box.append(el("h4", { i18n: "sup.ivr.unreachable" }));
    const ul = el("ul", { class: "tree" });
    for (const id of unreachable) if (!seen.has(id)) ul.append(item(id, ""));
    box.append(ul);
  }
  // Problems at nodes the drawing does not contain (a missing node, for example).
  for (const [node, reasons] of byNode) {
    if (node && !Object.prototype.hasOwnProperty.call(nodes, node)) {
      for (const r of reasons) box.append(el("p", { class: "error fault-reason", "data-node": node }, el("strong", {}, el("code", { text: node })), " " + r));
    }
  }
  return box;
}

// ---------- the list ----------
function renderList() {
  const body = $("ivr-versions");
  body.replaceChildren();
  const names = [...new Set(versions.map((v) => v.name))];
  for (const v of versions) {
    const view = el("button", { type: "button", class: "small", "aria-label": t("sup.ivr.view.of", { name: v.name, version: v.version }), i18n: "sup.ivr.view" });
    view.addEventListener("click", () => show(v.name, v.version));
    const cells = [view];
    if (!v.active) {
      const activate = el("button", { type: "button", class: "small", "aria-label": t("sup.ivr.activate.of", { name: v.name, version: v.version }), i18n: "sup.ivr.activate" });
      activate.addEventListener("click", async () => {
        try {
          await sup("ActivateIvrVersion", "ActivateIvrVersionRequest", "IvrVersion", { name: v.name, version: v.version });
          notice(t("sup.ivr.activated", { name: v.name, version: v.version }));
          await reload();
        } catch (e) { failed(e); }
      });
      cells.push(" ", activate);
    }
    body.append(el("tr", { "data-version": `${v.name}@${v.version}`, class: v.active ? "active" : null },
      el("th", { scope: "row", text: `${v.name} v${v.version}` }),
      el("td", { text: v.active ? t("sup.ivr.active") : "" }),
      el("td", { text: when(v.created_at_unix_ms) }), el("td", { text: v.author || "—" }), el("td", { text: v.comment || "—" }),
      el("td", {}, ...cells)));
  }
  const rb = $("ivr-rollbacks");
  rb.replaceChildren();
  for (const name of names) {
    const b = el("button", { type: "button", "data-tree": name, text: t("sup.ivr.rollback.of", { name }) });
    b.addEventListener("click", async () => {
      try {
        const v = await sup("RollbackIvr", "RollbackIvrRequest", "IvrVersion", { name });
        notice(t("sup.ivr.rolledback", { name, version: v.version }));
        await reload();
      } catch (e) { failed(e); }
    });
    rb.append(b);
  }
}

async function reload() {
  try { versions = await all("ListIvrVersions", "ListIvrVersionsRequest", "ListIvrVersionsResponse", "versions", { name: "" }); } catch (e) { failed(e); return; }
  renderList();
}

async function show(name, version) {
  try {
    const v = await sup("GetIvrVersion", "GetIvrVersionRequest", "IvrVersionTree", { name, version });
    $("ivr-json").value = v.tree_json;
    $("ivr-comment").value = "";
    $("ivr-shown").textContent = t("sup.ivr.shown", { name, version: v.version.version, author: v.version.author || "—", date: when(v.version.created_at_unix_ms) });
    draw([]);
    $("ivr-diagram-title").focus();
  } catch (e) { failed(e); }
}

function parsed() {
  try { return JSON.parse($("ivr-json").value); } catch (_) { return null; }
}

function draw(problems, warnings) {
  const tree = parsed();
  const box = $("ivr-diagram");
  box.replaceChildren();
  if (!tree) { box.append(el("p", { class: "error", i18n: "sup.ivr.json.bad" })); return; }
  box.append(diagram(tree, (problems || []).concat((warnings || []).map((w) => ({ node: w.node, reason: t("sup.ivr.warning") + " " + w.reason })))));
}

function report(answer) {
  const list = $("ivr-problems");
  list.replaceChildren();
  for (const p of answer.problems) list.append(el("li", { class: "error" }, el("code", { text: p.node || t("sup.ivr.tree") }), " : " + p.reason));
  for (const w of answer.warnings) list.append(el("li", {}, el("code", { text: w.node || t("sup.ivr.tree") }), " : " + t("sup.ivr.warning") + " " + w.reason));
  draw(answer.problems, answer.warnings);
}

async function validate() {
  const json = $("ivr-json").value;
  if (!json.trim()) { notice(t("sup.ivr.json.empty"), true); $("ivr-json").focus(); return null; }
  try {
    const answer = await sup("ValidateIvrTree", "ValidateIvrTreeRequest", "ValidateIvrTreeResponse", { tree_json: json });
    report(answer);
    $("ivr-result").textContent = answer.valid ? t("sup.ivr.valid") : t("sup.ivr.invalid", { count: answer.problems.length });
    $("ivr-result").className = answer.valid ? "notice" : "error";
    return answer;
  } catch (e) { failed(e); return null; }
}

async function put(activate) {
  const answer = await validate();
  if (!answer || !answer.valid) { $("ivr-result").focus(); return; }
  try {
    const v = await sup("PutIvrVersion", "PutIvrVersionRequest", "IvrVersion",
      { tree_json: $("ivr-json").value, activate, comment: $("ivr-comment").value.trim() });
    notice(t(activate ? "sup.ivr.stored.active" : "sup.ivr.stored", { name: v.name, version: v.version }));
    await reload();
  } catch (e) { failed(e); }
}

export async function start(root) {
  const json = el("textarea", { id: "ivr-json", rows: "16", spellcheck: "false", maxlength: "1000000", class: "code" });
  const comment = el("input", { id: "ivr-comment", maxlength: "1000" });
  const file = el("input", { id: "ivr-file", type: "file", accept: ".json,application/json" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    if (f.size > 1000000) { notice(t("sup.ivr.file.big"), true); return; }
    json.value = await f.text();
    $("ivr-shown").textContent = t("sup.ivr.file.loaded", { file: f.name });
    draw([]);
  });
  const validateButton = el("button", { type: "button", id: "ivr-validate", i18n: "sup.ivr.validate" });
  const save = el("button", { type: "button", id: "ivr-put", i18n: "sup.ivr.put" });
  const saveActive = el("button", { type: "button", id: "ivr-put-active", class: "primary", i18n: "sup.ivr.put.active" });
  validateButton.addEventListener("click", validate);
  save.addEventListener("click", () => put(false));
  saveActive.addEventListener("click", () => put(true));
  json.addEventListener("change", () => draw([]));
  root.append(
    el("section", { "aria-labelledby": "ivr-list-title" },
      el("h2", { id: "ivr-list-title", i18n: "sup.ivr.versions" }),
      scroller("sup.ivr.versions", el("table", {},
        el("thead", {}, el("tr", {}, ...["sup.ivr.col.version", "sup.ivr.col.active", "sup.ivr.col.date", "sup.ivr.col.author", "sup.ivr.col.comment", "sup.col.actions"]
          .map((k) => el("th", { scope: "col", i18n: k })))),
        el("tbody", { id: "ivr-versions" }))),
      el("div", { id: "ivr-rollbacks", class: "buttons" })),
    el("div", { class: "two" },
      el("section", { "aria-labelledby": "ivr-edit-title" },
        el("h2", { id: "ivr-edit-title", i18n: "sup.ivr.edit" }),
        el("p", { class: "muted", i18n: "sup.ivr.edit.help" }),
        field("sup.ivr.file", file),
        field("sup.ivr.json", json),
        field("sup.ivr.comment", comment),
        el("div", { class: "buttons" }, validateButton, save, saveActive),
        el("p", { id: "ivr-result", tabindex: "-1", role: "status" }),
        el("ul", { id: "ivr-problems" })),
      el("section", { "aria-labelledby": "ivr-diagram-title" },
        el("h2", { id: "ivr-diagram-title", tabindex: "-1", i18n: "sup.ivr.diagram" }),
        el("p", { id: "ivr-shown", class: "muted" }),
        el("div", { id: "ivr-diagram" }))),
  );
  await reload();
  const active = versions.find((v) => v.active);
  if (active) await show(active.name, active.version);
  return { refresh: () => { renderList(); draw([]); } };
}
