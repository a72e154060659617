// The supervisor console's shell: every page under /console/supervisor is this document; the
// path names the view (wallboard, agents, line, queues, ivr, satisfaction), loaded from its own
// module (sup-<view>.js) once the server has accepted the session as a supervisor's. The server
// decides who may see it: an agent's session is refused (PERMISSION_DENIED) on every Supervisor
// call, and the page says so without showing anything.
import { Code } from "./grpcweb.js";
import * as session from "./session.js";
import { t, apply, wireSwitch, add } from "./i18n.js";
import { TEXTS } from "./sup-texts.js";
import { $, sup } from "./sup-util.js";

add(TEXTS);

const VIEWS = { "": "wallboard", agents: "agents", line: "line", queues: "queues", ivr: "ivr", satisfaction: "satisfaction" };
const view = VIEWS[location.pathname.replace(/^\/console\/supervisor\/?/, "").replace(/\/$/, "")] || "wallboard";
let current = null;

function titles() {
  const name = t("sup.nav." + view);
  $("title").textContent = name;
  document.title = t("sup.page.title", { page: name });
}

async function load() {
  const s = session.current();
  if (!s) {
    $("refused").replaceChildren(t("sup.signin") + " ");
    const a = document.createElement("a");
    a.href = "/console/";
    a.textContent = t("signin.title");
    $("refused").append(a);
    return;
  }
  $("signout-item").hidden = false;
  $("who").textContent = s.who.login;
  $("who-item").hidden = false;
  try {
    // One cheap call first: nothing is shown unless the server accepts this session here.
    await sup("ListQueues", "ListQueuesRequest", "ListQueuesResponse", { page_size: 1 });
  } catch (e) {
    if (e.code === Code.PERMISSION_DENIED) {
      $("refused").textContent = t("sup.refused", { role: t("role." + s.who.role), login: s.who.login });
    } else {
      $("refused").textContent = t("error.generic", { message: e.message });
    }
    return;
  }
  $("sup-nav").hidden = false;
  const module = await import(`./sup-${view}.js`);
  $("view").hidden = false;
  current = await module.start($("view"));
}

apply();
titles();
for (const a of document.querySelectorAll("#sup-nav a")) {
  if (a.dataset.view === view) a.setAttribute("aria-current", "page");
}
wireSwitch($("lang"), () => {
  titles();
  if (current && current.refresh) current.refresh();
});
$("signout").addEventListener("click", async () => {
  if (current && current.stop) current.stop();
  try { await session.signOut(); } catch (_) { /* ended anyway */ }
  location.assign("/console/?signedout=1");
});
load();
