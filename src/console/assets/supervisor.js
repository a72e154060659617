// The supervision page: for now the agents and their states (Supervisor.ListAgents). The server
// decides who may see it: an agent's session is refused (PERMISSION_DENIED) and the page says so.
import { enums, Code } from "./grpcweb.js";
import * as session from "./session.js";
import { t, apply, wireSwitch } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const Kind = enums["guichet.v1.AgentState.Kind"];

function stateText(st) {
  switch (st && st.kind) {
    case Kind.KIND_AVAILABLE: return t("state.available");
    case Kind.KIND_PAUSED: return st.pause_reason ? t("state.paused.reason", { reason: st.pause_reason }) : t("state.paused");
    case Kind.KIND_WRAP_UP: return t("state.wrap_up", { time: new Date(st.wrap_up_until_unix_ms).toLocaleTimeString() });
    default: return t("state.offline");
  }
}

async function load() {
  const s = session.current();
  if (!s) { $("refused").textContent = t("sup.signin"); return; }
  $("signout-item").hidden = false;
  try {
    const answer = await session.call("Supervisor", "ListAgents", "ListAgentsRequest", "ListAgentsResponse", {});
    const body = $("agents");
    body.replaceChildren();
    for (const a of answer.agents) {
      const tr = document.createElement("tr");
      const load = a.load ? a.load.voice + a.load.email + a.load.sms + a.load.chat : 0;
      for (const v of [a.agent.id, a.agent.name, stateText(a.state), String(load)]) {
        const td = document.createElement("td"); td.textContent = v; tr.append(td);
      }
      body.append(tr);
    }
    $("agents-section").hidden = false;
  } catch (e) {
    if (e.code === Code.PERMISSION_DENIED) {
      $("refused").textContent = t("sup.refused", { role: t("role." + s.who.role), login: s.who.login });
    } else {
      $("refused").textContent = t("error.generic", { message: e.message });
    }
  }
}

apply();
wireSwitch($("lang"), load);
$("signout").addEventListener("click", async () => {
  try { await session.signOut(); } catch (_) { /* ended anyway */ }
  location.assign("/console/?signedout=1");
});
load();
