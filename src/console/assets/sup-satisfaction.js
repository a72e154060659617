// Satisfaction: survey answers per agent and the newest comments (Supervisor.GetSatisfaction)
// over the last 1, 7 or 30 days, and a link to the public indicators page.
import { $, el, field, t, sup, failed, channelName } from "./sup-util.js";

const DAY = 86400000;

async function load() {
  const days = Number($("sat-days").value) || 30;
  try {
    const s = await sup("GetSatisfaction", "GetSatisfactionRequest", "Satisfaction",
      { from_unix_ms: Date.now() - days * DAY, max_comments: 50 });
    $("sat-total").textContent = s.answers ? t("sup.sat.total", { answers: s.answers, average: s.average.toFixed(2) }) : t("sup.sat.none");
    const body = $("sat-agents");
    body.replaceChildren(...s.agents.map((a) => el("tr", {},
      el("th", { scope: "row", text: a.agent_id || t("sup.sat.noagent") }),
      el("td", { class: "num", text: String(a.answers) }),
      el("td", { class: "num", text: a.average.toFixed(2) }))));
    const list = $("sat-comments");
    list.replaceChildren(...s.comments.map((c) => el("li", { class: "comment" },
      el("p", { class: "meta muted", text: [new Date(c.at_unix_ms).toLocaleString(), c.agent_id || "—", c.queue, channelName(c.channel), t("sup.sat.score", { score: c.score })].join(" · ") }),
      el("blockquote", { text: c.comment }))));
    $("sat-comments-none").hidden = s.comments.length > 0;
  } catch (e) { failed(e); }
}

export async function start(root) {
  const days = el("select", { id: "sat-days" },
    ...[1, 7, 30].map((d) => el("option", { value: String(d), text: t(d === 1 ? "sup.sat.day" : "sup.sat.days", { days: d }) })));
  days.value = "30";
  days.addEventListener("change", load);
  root.append(
    el("p", {}, el("a", { href: "/indicators.html", i18n: "sup.wall.public" })),
    field("sup.sat.period", days),
    el("p", { id: "sat-total", role: "status" }),
    el("section", { "aria-labelledby": "sat-agents-title" },
      el("h2", { id: "sat-agents-title", i18n: "sup.sat.agents" }),
      el("table", {}, el("thead", {}, el("tr", {}, ...["sup.col.agent", "sup.sat.answers", "sup.sat.average"].map((k) => el("th", { scope: "col", i18n: k })))),
        el("tbody", { id: "sat-agents" }))),
    el("section", { "aria-labelledby": "sat-comments-title" },
      el("h2", { id: "sat-comments-title", i18n: "sup.sat.comments" }),
      el("p", { id: "sat-comments-none", class: "muted", i18n: "sup.sat.comments.none" }),
      el("ul", { id: "sat-comments", class: "plain" })));
  await load();
  return { refresh: load };
}
