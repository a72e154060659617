"""The citizen's side in headless Chromium driven by Selenium, while an agent works over gRPC.

Run through tests/e2e/run.sh (which generates the gRPC client from proto/ and puts it on
PYTHONPATH). Needs selenium (PyPI), Debian's chromium and chromium-driver, and axe-core and
lighthouse@12 from npm under target/e2e-node (or --node-modules). The scenario, on a server with
one agent (zoe, one chat at a time) and two queues, `general` and `tax` (closed today: today is
one of its holidays):

1. two warm-up chats are accepted six seconds apart, so that the queue's pace (the interval
   between acceptances, from which the expected wait is computed) is known;
2. zoe pauses; visitors A and B start chats, then visitor C: C reads "number 3 in the queue"
   with an expected wait; zoe takes A then B; C's place goes 3 -> 2 -> 1 and its expected
   wait shrinks;
3. keyboard only (Tab, arrows, Enter, typing): a visitor fills the form, chooses a topic and
   starts; the focus is then in the message box;
4. the `tax` topic shows that the service is closed and its opening hours; a message left
   there (with the email address) is acknowledged with a reference, on a page with its own
   title;
5. axe-core finds no violation in each state (form, waiting, chatting, closed, message left,
   accessibility statement, survey page, indicators page);
6. Lighthouse 12 scores 100 for accessibility and at least 95 for best practices on every
   public page (the widget in French and English, the accessibility statement, the survey
   page, the indicators page).

Prints `citizen e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import datetime
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zoneinfo

import grpc
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from guichet.v1 import agent_desktop_pb2 as desktop
from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc
from guichet.v1 import common_pb2 as common

from test_python_client import TIMEOUT, OfferStream, Server, bearer
from test_chat_widget import next_update

ARTIFACTS = os.path.join("target", "e2e-artifacts")


def config_text():
    """One agent, two queues; `tax` is closed today (a holiday) and shows its hours."""
    today = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date().isoformat()
    return f"""
[[queues]]
id = "general"
name = "Accueil général / General enquiries"
channels = ["chat", "email"]
requirements = [{{ skill = "general", min_level = 1 }}]

[[queues]]
id = "tax"
name = "Impôts / Income tax"
channels = ["chat", "email"]
requirements = [{{ skill = "general", min_level = 1 }}]

[[agents]]
id = "zoe"
name = "Zoé Martin"
skills = {{ general = 3, "lang:fr" = 5, "lang:en" = 4 }}
capacity = {{ voice = 0, email = 0, sms = 0, chat = 1 }}

[chat]
default_queue = "general"
topics = {{ accueil = "general", impots = "tax" }}

[chat.topic_labels]
accueil = {{ fr = "Accueil", en = "General enquiries" }}
impots = {{ fr = "Impôts", en = "Income tax" }}

[surveys]
enabled = true

[email.inbound]
listen = "127.0.0.1:0"

[email.inbound.recipients]
"@mairie.example" = "general"

[email.outbound]
relay_host = "127.0.0.1"
relay_port = 9
tls = "none"
from_address = "accueil@mairie.example"

[citizen.hours.tax]
time_zone = "Europe/Paris"
schedule = {{ mon = ["08:30-12:00", "13:30-17:00"], tue = ["08:30-12:00"], wed = ["08:30-12:00"], thu = ["08:30-12:00"], fri = ["08:30-12:00"], sat = ["09:00-12:00"], sun = ["10:00-11:00"] }}
holidays = ["{today}"]
"""


class Browser:
    """Headless Chromium through Debian's chromedriver (Selenium downloads nothing)."""

    def __init__(self, chromium, chromedriver):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=520,900"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        self.driver.set_script_timeout(60)

    def tab(self, url):
        self.driver.switch_to.new_window("tab")
        self.driver.get(url)
        return self.driver.current_window_handle

    def to(self, handle):
        self.driver.switch_to.window(handle)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script, what, timeout=TIMEOUT * 3):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))
        except Exception as e:
            text = self.driver.execute_script("return document.body.innerText")
            raise AssertionError(f"never {what}; page text: {text!r}") from e

    def start_chat(self, name, topic, question):
        self.js("document.getElementById('name').value = arguments[0]", name)
        self.js("document.getElementById('topic').value = arguments[0];"
                "document.getElementById('topic').dispatchEvent(new Event('change'))", topic)
        self.js("document.getElementById('first').value = arguments[0]", question)
        self.js("document.getElementById('start-button').click()")

    def axe(self, axe_source, what):
        """Runs axe-core in the page: no violation allowed."""
        self.js(axe_source)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))})))).catch(e => done([{id: 'error', help: String(e)}]));"
        )
        assert result == [], f"axe violations in {what}: {json.dumps(result, indent=1)}"

    def close(self):
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 - closing anyway
            pass


def lighthouse(node_modules, url, chromium, out_dir, name):
    """Lighthouse 12's accessibility and best-practices scores of `url` (0 to 100)."""
    report = os.path.join(out_dir, f"lighthouse-{name}.json")
    cli = os.path.join(node_modules, "lighthouse", "cli", "index.js")
    env = dict(os.environ, CHROME_PATH=chromium)
    subprocess.run(
        ["node", cli, url, "--only-categories=accessibility,best-practices", "--output=json",
         f"--output-path={report}", "--quiet", "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage"],
        check=True, env=env, timeout=300,
    )
    with open(report, encoding="utf-8") as f:
        data = json.load(f)
    scores = {k: round((v["score"] or 0) * 100) for k, v in data["categories"].items()}
    failing = {
        cat: [a["id"] for a in (data["audits"][r["id"]] for r in c["auditRefs"]) if a.get("score") not in (None, 1)]
        for cat, c in data["categories"].items()
    }
    return scores, failing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the guichet binary")
    parser.add_argument("--data-dir", required=True, help="a fresh data directory")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--node-modules", default=os.path.join("target", "e2e-node", "node_modules"))
    parser.add_argument("--no-lighthouse", action="store_true", help="skip the Lighthouse runs (while iterating)")
    args = parser.parse_args()
    for path in (args.chromium, args.chromedriver):
        if not shutil.which(path):
            print(f"citizen e2e: {path} is missing (apt-get install chromium chromium-driver)", file=sys.stderr)
            return 1
    axe_path = os.path.join(args.node_modules, "axe-core", "axe.min.js")
    if not os.path.exists(axe_path):
        print(f"citizen e2e: no {axe_path} (npm install axe-core lighthouse@12 --prefix target/e2e-node)", file=sys.stderr)
        return 1
    with open(axe_path, encoding="utf-8") as f:
        axe_source = f.read()
    os.makedirs(ARTIFACTS, exist_ok=True)

    config_dir = tempfile.mkdtemp(prefix="guichet-citizen-config-")
    config = os.path.join(config_dir, "guichet.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(config_text())
    server = Server(args.bin, args.data_dir, config)
    base = f"http://{server.http_addr}"
    browser = None
    passed = failed = 0
    state = {}

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()

    try:
        token = server.token("agent", "zoe")
        channel = grpc.insecure_channel(server.addr)
        desk = desktop_grpc.AgentDesktopStub(channel)
        desk.Login(desktop.LoginRequest(), metadata=bearer(token), timeout=TIMEOUT)
        stream = OfferStream(desk, token)
        browser = Browser(args.chromium, args.chromedriver)
        widget = f"{base}/chat/widget?lang=en"

        def take(expected_name=None):
            """Accepts the next offer, then completes it (the agent is free again at once)."""
            offer = next_update(stream, "offer")
            desk.Accept(desktop.InteractionAction(interaction_id=offer.interaction.id), metadata=bearer(token), timeout=TIMEOUT)
            desk.Complete(desktop.CompleteRequest(interaction_id=offer.interaction.id), metadata=bearer(token), timeout=TIMEOUT)
            return offer

        def form_state_is_accessible():
            state["w1"] = browser.tab(widget)
            assert browser.js("return document.documentElement.lang") == "en"
            assert browser.js("return document.getElementById('topic').value") == "", "no topic preselected"
            labels = browser.js("return Array.from(document.getElementById('topic').options).map(o => o.text)")
            assert labels == ["Choose a topic", "General enquiries", "Income tax"], labels
            browser.axe(axe_source, "the start form")

        def warm_up_the_queue_pace():
            # Two acceptances six seconds apart: the expected wait is then about 6 s a place.
            browser.start_chat("Warm One", "accueil", "First question")
            take()
            time.sleep(6)
            state["w2"] = browser.tab(widget)
            browser.start_chat("Warm Two", "accueil", "Second question")
            take()

        def position_goes_from_3_to_1_and_the_wait_shrinks():
            desk.SetState(
                desktop.SetStateRequest(state=common.AgentState.KIND_PAUSED, pause_reason="briefing"),
                metadata=bearer(token), timeout=TIMEOUT,
            )
            for name in ("Visitor A", "Visitor B"):
                browser.tab(widget)
                browser.start_chat(name, "accueil", f"Question from {name}")
                browser.wait("return document.body.innerText.includes('Reference')", f"{name} queued")
            state["c"] = browser.tab(widget)
            browser.start_chat("Visitor C", "accueil", "Question from C")
            seen = {}

            def place():
                return browser.js(
                    "const w = document.getElementById('wait');"
                    "return w.hidden ? null : [Number(w.getAttribute('data-position')), w.getAttribute('data-wait-secs'), w.textContent]"
                )

            browser.wait("const w = document.getElementById('wait'); return !w.hidden && w.getAttribute('data-position') === '3'",
                         "position 3")
            seen[3] = place()
            browser.driver.save_screenshot(os.path.join(ARTIFACTS, "citizen-waiting.png"))
            browser.axe(axe_source, "the waiting chat")
            desk.SetState(desktop.SetStateRequest(state=common.AgentState.KIND_AVAILABLE), metadata=bearer(token), timeout=TIMEOUT)
            # A is offered: C is second; zoe takes A, then B is offered: C is next.
            browser.wait("return document.getElementById('wait').getAttribute('data-position') === '2'", "position 2")
            seen[2] = place()
            take()
            browser.wait("return document.getElementById('wait').getAttribute('data-position') === '1'", "position 1")
            seen[1] = place()
            print(f"  positions and expected waits seen by C: {seen}")
            assert seen[3][1] and seen[1][1], f"the expected wait is known: {seen}"
            assert int(seen[1][1]) < int(seen[3][1]), f"the expected wait shrinks: {seen}"
            assert "number 3 in the queue" in seen[3][2] and "next in the queue" in seen[1][2], seen
            assert "Expected wait" in seen[3][2], seen
            # The status line announced the place once per change at most (not each second).
            take()  # B
            offer = next_update(stream, "offer")  # C
            desk.Accept(desktop.InteractionAction(interaction_id=offer.interaction.id), metadata=bearer(token), timeout=TIMEOUT)
            state["c_id"] = offer.interaction.id
            browser.wait("return document.getElementById('wait').hidden && document.body.innerText.includes('joined the chat')",
                         "the agent joining C")
            browser.axe(axe_source, "the chat with the agent")
            desk.Complete(desktop.CompleteRequest(interaction_id=offer.interaction.id), metadata=bearer(token), timeout=TIMEOUT)

        def keyboard_only_reaches_the_message_box():
            browser.tab(widget)
            d = browser.driver
            WebDriverWait(d, TIMEOUT).until(lambda d: d.switch_to.active_element.get_attribute("id") == "name")
            active = d.switch_to.active_element
            active.send_keys("Keyboard Visitor")
            active.send_keys(Keys.TAB)  # email
            d.switch_to.active_element.send_keys("kb@example.org", Keys.TAB)  # topic
            assert d.switch_to.active_element.get_attribute("id") == "topic"
            d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)  # General enquiries
            d.switch_to.active_element.send_keys(Keys.TAB)  # question
            assert d.switch_to.active_element.get_attribute("id") == "first"
            d.switch_to.active_element.send_keys("Typed with the keyboard only.", Keys.TAB)
            assert d.switch_to.active_element.get_attribute("id") == "start-button"
            d.switch_to.active_element.send_keys(Keys.ENTER)
            browser.wait("return document.activeElement && document.activeElement.id === 'text'",
                         "the focus in the message box right after start")
            # The focus ring around the message box: at least 3:1 against the white page.
            style = browser.js("const s = getComputedStyle(document.activeElement);"
                               "return [s.outlineStyle, s.outlineWidth, s.outlineColor]")
            print(f"  focus ring: {style}")
            assert style[0] == "solid" and float(style[1].rstrip("px")) >= 2, style
            rgb = [int(v) for v in style[2][style[2].index("(") + 1:style[2].index(")")].split(",")[:3]]

            def luminance(c):
                c = c / 255
                return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

            lum = 0.2126 * luminance(rgb[0]) + 0.7152 * luminance(rgb[1]) + 0.0722 * luminance(rgb[2])
            ratio = 1.05 / (lum + 0.05)
            print(f"  focus ring contrast against white: {ratio:.1f}:1")
            assert ratio >= 3, ratio
            take()

        def closed_queue_shows_the_hours():
            browser.tab(widget)
            browser.js("document.getElementById('topic').value = 'impots';"
                       "document.getElementById('topic').dispatchEvent(new Event('change'))")
            browser.wait("return !document.getElementById('availability').hidden", "the availability notice")
            text = browser.js("return document.getElementById('availability').innerText")
            assert "closed" in text and "Opening hours" in text and "Monday: 08:30–12:00, 13:30–17:00" in text, text
            assert browser.js("return document.getElementById('start-button').textContent") == "Send my message"
            browser.driver.save_screenshot(os.path.join(ARTIFACTS, "citizen-closed.png"))
            browser.axe(axe_source, "the closed queue")
            # Left as a message: a page with its own title and the reference.
            browser.js("document.getElementById('name').value = 'Closed Visitor';"
                       "document.getElementById('email').value = 'closed@example.org';"
                       "document.getElementById('first').value = 'When do you open?';")
            browser.js("document.getElementById('start-button').click()")
            browser.wait("return document.title === 'Message sent'", "the message page")
            assert "reference" in browser.js("return document.body.innerText")
            browser.axe(axe_source, "the message-left page")

        def statement_survey_and_indicators_have_no_violation():
            browser.tab(f"{base}/accessibility?lang=fr")
            assert browser.js("return document.title").startswith("Déclaration d'accessibilité")
            browser.axe(axe_source, "the accessibility statement")
            db = sqlite3.connect(os.path.join(args.data_dir, "guichet.db"))
            row = db.execute("SELECT token FROM survey_questions WHERE answered_at IS NULL LIMIT 1").fetchone()
            db.close()
            assert row, "a survey question was asked after a completed chat"
            state["survey"] = f"{base}/survey/{row[0]}?lang=en"
            browser.driver.get(state["survey"])
            body = browser.js("return document.getElementById('rated-request').innerText")
            assert "General enquiries" in body and "Reference" in body, body
            labels = browser.js("return Array.from(document.querySelectorAll('.choice label')).map(l => l.textContent.trim())")
            assert labels[0] == "1 – not at all satisfied" and labels[4] == "5 – very satisfied", labels
            browser.axe(axe_source, "the survey page")
            browser.driver.get(f"{base}/indicators.html?lang=en")
            browser.axe(axe_source, "the indicators page")
            browser.driver.get(f"{base}/survey/no-such-token?lang=en")
            assert browser.js("return document.title") == "Survey link not valid"

        def lighthouse_scores():
            pages = {
                "widget-fr": f"{base}/chat/widget?lang=fr",
                "widget-en": widget,
                "accessibility": f"{base}/accessibility?lang=en",
                "survey": state["survey"],
                "indicators": f"{base}/indicators.html?lang=fr",
            }
            low = []
            for name, url in pages.items():
                scores, failing = lighthouse(args.node_modules, url, args.chromium, ARTIFACTS, name)
                print(f"  lighthouse {name}: {scores}")
                if scores.get("accessibility") != 100 or scores.get("best-practices", 0) < 95:
                    low.append((name, scores, failing))
            assert not low, f"Lighthouse below 100 / 95: {low}"

        check("the start form: English labels, no topic preselected, no axe violation", form_state_is_accessible)
        check("two acceptances set the queue's pace", warm_up_the_queue_pace)
        check("a visitor behind two others sees its place go 3 -> 1 and its wait shrink", position_goes_from_3_to_1_and_the_wait_shrinks)
        check("keyboard only: the focus is in the message box right after start", keyboard_only_reaches_the_message_box)
        check("a closed queue shows its hours and takes a message", closed_queue_shows_the_hours)
        check("statement, survey and indicators pages: no axe violation", statement_survey_and_indicators_have_no_violation)
        if not args.no_lighthouse:
            check("Lighthouse 12: accessibility 100, best practices >= 95 on every public page", lighthouse_scores)
    except Exception:  # noqa: BLE001
        failed += 1
        traceback.print_exc()
    finally:
        if browser:
            browser.close()
        code = server.stop()
        if code not in (0, None):
            print(f"server exited with {code}")
    print(f"citizen e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
