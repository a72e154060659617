"""The console in real headless Chromium (Debian `chromium` + `chromium-driver`, Selenium from PyPI),
clicking like people, against the real server binary.

Run through tests/e2e/run.sh (which generates the gRPC client from proto/ and puts it on
PYTHONPATH; NODE_PATH finds npm's axe-core and lighthouse). The scenario:

1. a wrong password is refused with a clear message, nothing opened;
2. david signs in (the password the first start wrote), goes available;
3. an integrator creates an SMS over gRPC: the offer rings (announced once in the alert region),
   with channel, contact, why, deadline; david accepts, reads it, replies, completes with a code;
4. a visitor starts a chat in the widget (a second browser): the offer rings, david accepts,
   the visitor types (david sees it), sends a line; david replies (the visitor sees it) and
   completes with a code and notes; a second agent (amelie) takes an email sent over SMTP with
   a PDF, downloads the attachment through its signed link and transfers the email to david with
   a note, which his desktop shows with the offer;
5. axe-core is injected at each state (sign-in, offer ringing, chat, wrap-up): no serious or
   critical violation; Lighthouse 12 scores the sign-in and the desktop (signed in) at least 95
   for accessibility;
6. david opening the supervision page is refused with a clear message; the supervisor sees it;
7. an expired session sends david back to sign-in with a message saying so.

Screenshots in target/e2e-artifacts/console-*.png. Prints `console e2e: N passed, N failed`.
"""

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

import grpc
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from guichet.v1 import common_pb2 as common
from guichet.v1 import interactions_pb2 as interactions
from guichet.v1 import interactions_pb2_grpc as interactions_grpc

from test_python_client import TIMEOUT, Server, bearer

ARTIFACTS = os.path.join("target", "e2e-artifacts")
WAIT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(profile, debug_port=None, size="1280,900"):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={size}", f"--user-data-dir={profile}", "--lang=fr-FR",
                "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(arg)
    if debug_port:
        options.add_argument(f"--remote-debugging-port={debug_port}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def axe(driver, axe_source, label):
    """Injects axe-core and fails on any serious or critical violation."""
    driver.execute_script(axe_source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
        ".then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)})))))"
        ".catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}])));"
    )
    violations = json.loads(result)
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe at {label}: {bad}"
    return violations


def lighthouse(url, port, out):
    """Lighthouse 12 accessibility score (0-100) of `url` in the Chromium on `port`."""
    cli = os.path.join(os.environ.get("NODE_PATH", "target/e2e-node/node_modules"), "lighthouse", "cli", "index.js")
    subprocess.run(
        ["node", cli, url, f"--port={port}", "--disable-storage-reset", "--only-categories=accessibility",
         "--output=json", f"--output-path={out}", "--quiet", "--form-factor=desktop", "--screenEmulation.disabled"],
        check=True, timeout=180,
    )
    with open(out, encoding="utf-8") as f:
        report = json.load(f)
    failing = [a for a in report["audits"].values() if a.get("score") == 0 and a.get("scoreDisplayMode") == "binary"]
    return round(report["categories"]["accessibility"]["score"] * 100), [a["id"] for a in failing]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--skip-lighthouse", action="store_true")
    args = parser.parse_args()
    os.makedirs(ARTIFACTS, exist_ok=True)
    node_path = os.environ.get("NODE_PATH", "target/e2e-node/node_modules")
    with open(os.path.join(node_path, "axe-core", "axe.min.js"), encoding="utf-8") as f:
        axe_source = f.read()

    server = Server(args.bin, args.data_dir)
    base = f"http://{server.http_addr}"
    passwords = {}
    with open(os.path.join(args.data_dir, "console-passwords.txt"), encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#") and line.strip():
                login, password = line.split()[:2]
                passwords[login] = password
    channel = grpc.insecure_channel(server.addr)
    integrator = interactions_grpc.InteractionsStub(channel)
    integrator_token = server.token("integrator")
    profile = tempfile.mkdtemp(prefix="guichet-console-")
    visitor_profile = tempfile.mkdtemp(prefix="guichet-visitor-")
    port = free_port()
    agent = browser(profile, port)
    visitor = None
    wait = WebDriverWait(agent, WAIT)
    passed, failed = 0, 0
    state = {}

    def by_id(driver, element_id):
        return driver.find_element(By.ID, element_id)

    def until(driver, script, what, wait=WAIT):
        try:
            WebDriverWait(driver, wait).until(lambda d: d.execute_script("return " + script))
        except Exception as e:  # noqa: BLE001 - reported with the page's text
            text = driver.execute_script("return document.body.innerText")
            raise AssertionError(f"never saw {what}; page text: {text[:1500]!r}") from e

    def shot(driver, name):
        driver.save_screenshot(os.path.join(ARTIFACTS, f"console-{name}.png"))

    def sign_in(login, password, driver=None):
        driver = driver or agent
        driver.get(base + "/console/")
        until(driver, "!document.getElementById('signin').hidden", "the sign-in form")
        by_id(driver, "login").clear()
        by_id(driver, "login").send_keys(login)
        by_id(driver, "password").clear()
        by_id(driver, "password").send_keys(password, Keys.ENTER)

    @contextlib.contextmanager
    def colleague_available(login, prefix):
        """A second browser (its own profile) where `login` signs in and goes available."""
        profile = tempfile.mkdtemp(prefix=prefix)
        driver = browser(profile)
        try:
            sign_in(login, passwords[login], driver)
            until(driver, "!document.getElementById('desktop').hidden", f"{login}'s desktop")
            by_id(driver, "go-available").click()
            until(driver, "document.getElementById('state').dataset.kind === '2'", f"{login} available")
            yield driver
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)

    def wrong_password_refused():
        agent.get(base + "/console/")
        until(agent, "!document.getElementById('signin').hidden", "the sign-in form")
        # The language follows the browser; the header's button switches it (kept for the tabs).
        if agent.execute_script("return document.documentElement.lang") != "fr":
            by_id(agent, "lang").click()
        assert agent.execute_script("return document.documentElement.lang") == "fr"
        assert by_id(agent, "signin-submit").text == "Se connecter"
        by_id(agent, "lang").click()
        assert agent.execute_script("return document.documentElement.lang") == "en"
        assert by_id(agent, "signin-submit").text == "Sign in"
        by_id(agent, "lang").click()
        axe(agent, axe_source, "sign-in")
        shot(agent, "signin")
        sign_in("david", "not the password")
        until(agent, "document.getElementById('signin-error').textContent.length > 0", "the refusal")
        assert "incorrect" in by_id(agent, "signin-error").text, by_id(agent, "signin-error").text
        assert agent.execute_script("return localStorage.getItem('guichet.session')") is None
        assert agent.execute_script("return document.activeElement.id") == "password"

    def sign_in_and_go_available():
        sign_in("david", passwords["david"])
        until(agent, "!document.getElementById('desktop').hidden", "the desktop")
        assert "david" in by_id(agent, "who").text
        by_id(agent, "go-available").click()
        until(agent, "document.getElementById('state').dataset.kind === '2'", "state available")
        until(agent, "document.getElementById('stream-state').textContent.length > 0 || true", "stream")
        assert "Disponible" in by_id(agent, "state").text
        assert "depuis" in by_id(agent, "state-since").text

    def integrator_offer_rings_and_is_handled():
        created = integrator.Create(
            interactions.CreateRequest(
                spec=common.InteractionSpec(channel=common.CHANNEL_SMS, queue="general", contact="+33612345678",
                                            external_ref="console-e2e-sms-1"),
                message=interactions.InboundMessage(text="Bonjour, où en est mon dossier ?"),
            ),
            metadata=bearer(integrator_token), timeout=TIMEOUT,
        )
        state["sms"] = created.interaction.id
        until(agent, "!document.getElementById('offer').hidden", "the offer")
        alert = by_id(agent, "alert").text
        assert "+33612345678" in alert and "SMS" in alert, alert
        assert by_id(agent, "offer-channel").text == "SMS"
        assert by_id(agent, "offer-why").text, "why me is shown"
        assert by_id(agent, "offer-deadline").text
        assert agent.execute_script("return document.getElementById('offer-left').getAttribute('aria-hidden')") == "true"
        assert "mon dossier" in by_id(agent, "offer-preview").text
        axe(agent, axe_source, "offer ringing")
        shot(agent, "offer")
        by_id(agent, "accept").click()
        until(agent, "document.querySelectorAll('[role=tab]').length === 1", "the tab")
        until(agent, "document.querySelector('.conversation').innerText.includes('mon dossier')", "the SMS text")
        panel = agent.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
        text = panel.find_element(By.CSS_SELECTOR, ".reply-text")
        text.send_keys("Bonjour, votre dossier est en cours d'instruction.")
        panel.find_element(By.CSS_SELECTOR, ".reply button[type=submit]").click()
        until(agent, "document.querySelector('.conversation').innerText.includes('en cours d')", "the reply")
        code = panel.find_element(By.CSS_SELECTOR, ".code-text") if panel.find_element(By.CSS_SELECTOR, ".code-select-field").get_attribute("hidden") else None
        if code is not None:
            code.send_keys("renseigne")
        panel.find_element(By.CSS_SELECTOR, ".complete button[type=submit]").click()
        until(agent, "document.querySelectorAll('[role=tab]').length === 0", "the tab closed")
        # My day: the request just completed is counted among the day's figures.
        until(agent, "(() => { const dts = [...document.querySelectorAll('#day-figures dt')];"
              " const i = dts.findIndex((d) => d.textContent === 'Demandes traitées');"
              " return i >= 0 && dts[i].nextElementSibling.textContent === '1'; })()", "my day's figures")
        assert "Satisfaction sur 30 jours" in by_id(agent, "day-satisfaction").text
        got = integrator.Get(interactions.GetRequest(interaction_id=state["sms"]), metadata=bearer(integrator_token), timeout=TIMEOUT)
        assert got.phase in (common.PHASE_WRAP_UP, common.PHASE_ENDED), got.phase

    def chat_with_a_visitor():
        nonlocal visitor
        # Available again after the wrap-up.
        until(agent, "document.getElementById('state').dataset.kind !== '3'", "not paused")
        visitor = browser(visitor_profile, size="480,760")
        visitor.get(base + "/chat/widget?lang=en")
        WebDriverWait(visitor, WAIT).until(lambda d: d.execute_script("return !!document.getElementById('name')"))
        visitor.find_element(By.ID, "name").send_keys("Ana Visitor")
        visitor.find_element(By.ID, "email").send_keys("ana@example.org")
        visitor.find_element(By.ID, "first").send_keys("Hello, a question about my housing benefits.")
        # The widget asks for a topic: "another question" goes to the general queue, david's.
        Select(visitor.find_element(By.ID, "topic")).select_by_value("autre")
        visitor.find_element(By.ID, "start-button").click()
        until(agent, "!document.getElementById('offer').hidden", "the chat offer")
        assert by_id(agent, "offer-channel").text == "discussion"
        by_id(agent, "accept").click()
        until(agent, "document.querySelector('.conversation') && document.querySelector('.conversation').innerText.includes('housing benefits')", "the question")
        WebDriverWait(visitor, WAIT).until(lambda d: "joined the chat" in d.find_element(By.TAG_NAME, "body").text)
        panel = agent.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
        # The visitor types: the desktop shows it.
        visitor.find_element(By.ID, "text").send_keys("Thank you, I am waiting.")
        until(agent, "!document.querySelector('.tabpanel:not([hidden]) .typing').hidden", "the visitor typing")
        visitor.find_element(By.ID, "text").send_keys(Keys.ENTER)
        until(agent, "document.querySelector('.tabpanel:not([hidden]) .conversation').innerText.includes('I am waiting')", "the visitor's line")
        # David types: the widget shows it; then sends.
        text = panel.find_element(By.CSS_SELECTOR, ".reply-text")
        text.send_keys("Hello Ana, I am looking at your file.")
        WebDriverWait(visitor, WAIT).until(lambda d: "typing" in d.find_element(By.ID, "typing").text)
        axe(agent, axe_source, "chat")
        shot(agent, "chat")
        panel.find_element(By.CSS_SELECTOR, ".reply button[type=submit]").click()
        WebDriverWait(visitor, WAIT).until(
            lambda d: any("looking at your file" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#log li.agent")))
        visitor.save_screenshot(os.path.join(ARTIFACTS, "console-visitor.png"))
        # Wrap-up: a code and notes.
        if panel.find_element(By.CSS_SELECTOR, ".code-select-field").get_attribute("hidden"):
            panel.find_element(By.CSS_SELECTOR, ".code-text").send_keys("answered")
        panel.find_element(By.CSS_SELECTOR, ".notes").send_keys("Explained the housing file status.")
        axe(agent, axe_source, "wrap-up")
        shot(agent, "wrap-up")
        panel.find_element(By.CSS_SELECTOR, ".complete button[type=submit]").click()
        until(agent, "document.querySelectorAll('[role=tab]').length === 0", "the chat tab closed")
        assert "clôturée" in by_id(agent, "notice").text, by_id(agent, "notice").text

    def grpc_web_calls():
        import urllib.request
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(float(l.split()[-1]) for l in text.splitlines()
                   if l.startswith("guichet_http_requests_total") and 'adapter="guichet"' in l)

    def lighthouse_scores():
        if args.skip_lighthouse:
            return
        before = grpc_web_calls()
        score, failing = lighthouse(base + "/console/", port, os.path.join(ARTIFACTS, "lighthouse-desktop.json"))
        print(f"  lighthouse desktop (signed in): {score} {failing}")
        # Signed in: the page Lighthouse loaded opened its offer stream over gRPC-web.
        assert grpc_web_calls() > before, "Lighthouse saw the desktop signed in"
        
        assert score >= 95, f"desktop accessibility {score}: {failing}"
        # The sign-in page: a fresh profile (no session).
        other = browser(tempfile.mkdtemp(prefix="guichet-lh-"), free_port_holder[0])
        try:
            score, failing = lighthouse(base + "/console/", free_port_holder[0], os.path.join(ARTIFACTS, "lighthouse-signin.json"))
        finally:
            other.quit()
        print(f"  lighthouse sign-in: {score} {failing}")
        assert score >= 95, f"sign-in accessibility {score}: {failing}"

    def agent_refused_on_supervision():
        agent.get(base + "/console/supervisor")
        until(agent, "document.getElementById('refused').textContent.length > 0", "the refusal")
        text = by_id(agent, "refused").text
        assert "réservée aux superviseurs" in text and "david" in text, text
        assert agent.execute_script("return document.getElementById('view').hidden")
        assert agent.execute_script("return document.getElementById('sup-nav').hidden")
        shot(agent, "supervisor-refused")

    def expired_session_goes_back_to_sign_in():
        agent.get(base + "/console/")
        until(agent, "!document.getElementById('desktop').hidden", "the desktop")
        db = sqlite3.connect(os.path.join(args.data_dir, "guichet.db"), timeout=10)
        with db:
            db.execute("UPDATE sessions SET expires_at = 0 WHERE login = 'david'")
        db.close()
        # Within the credential cache's 5 s and the stream's 2 s checks, the open offer stream ends
        # as UNAUTHENTICATED and the page goes back to sign-in by itself, saying why.
        until(agent, "!document.getElementById('signin').hidden && document.getElementById('signin-error').textContent.includes('expiré')", "the expiry message")
        shot(agent, "expired")

    def second_agent_opens_an_email_attachment():
        import smtplib
        from email.message import EmailMessage
        with colleague_available("amelie", "guichet-amelie-") as amelie:
            msg = EmailMessage()
            msg["From"] = "Zoé Martin <zoe@example.org>"
            msg["To"] = "logement@service-public.example"
            msg["Subject"] = "Justificatif de domicile"
            msg.set_content("Bonjour, voici mon justificatif.")
            msg.add_attachment(b"%PDF-1.4 justificatif", maintype="application", subtype="pdf", filename="justificatif.pdf")
            host, smtp_port = server.smtp_addr.rsplit(":", 1)
            with smtplib.SMTP(host, int(smtp_port), timeout=TIMEOUT) as smtp:
                smtp.send_message(msg)
            until(amelie, "!document.getElementById('offer').hidden", "the email offer")
            assert "zoe@example.org" in amelie.find_element(By.ID, "offer-contact").text
            amelie.find_element(By.ID, "accept").click()
            until(amelie, "!!document.querySelector('.attachments a')", "the attachment link")
            link = amelie.find_element(By.CSS_SELECTOR, ".attachments a")
            assert "justificatif.pdf" in link.text, link.text
            fetched = amelie.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t]))).catch(e => done([0, String(e)]));",
                link.get_attribute("href"),
            )
            assert fetched == [200, "%PDF-1.4 justificatif"], fetched
            # An email reply may set its subject.
            assert amelie.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden]) .subject-field").get_attribute("hidden") is None
            amelie.save_screenshot(os.path.join(ARTIFACTS, "console-email.png"))
            # Transferred to david with a note: his desktop rings with it.
            panel = amelie.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
            panel.find_element(By.CSS_SELECTOR, ".to-agent").click()
            panel.find_element(By.CSS_SELECTOR, ".target").click()
            # The field suggests amelie's queues and her colleagues with their state.
            until(amelie, "[...document.querySelectorAll('#transfer-targets option')]"
                  ".some((o) => o.value === 'david' && /Disponible|Available/.test(o.label))", "david among the colleagues")
            panel.find_element(By.CSS_SELECTOR, ".target").send_keys("david")
            panel.find_element(By.CSS_SELECTOR, ".tnote").send_keys("Pièce reçue, à vérifier.")
            panel.find_element(By.CSS_SELECTOR, ".transfer button[type=submit]").click()
            until(amelie, "document.querySelectorAll('[role=tab]').length === 0", "amelie's tab closed")
            until(agent, "!document.getElementById('offer').hidden", "the transferred email at david's")
            note = by_id(agent, "offer-transfer").text
            assert "amelie" in note and "à vérifier" in note, note
            shot(agent, "transferred")
            by_id(agent, "accept").click()
            until(agent, "!!document.querySelector('.tabpanel:not([hidden]) .attachments a')", "the attachment at david's")
            panel = agent.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
            if panel.find_element(By.CSS_SELECTOR, ".code-select-field").get_attribute("hidden"):
                panel.find_element(By.CSS_SELECTOR, ".code-text").send_keys("answered")
            panel.find_element(By.CSS_SELECTOR, ".complete button[type=submit]").click()
            until(agent, "document.querySelectorAll('[role=tab]').length === 0", "david's tab closed")

    def warm_transfer_of_an_sms_to_david():
        # David's wrap-up of the previous request runs out (up to its full length, extensions
        # included): a consultation goes to an available colleague.
        by_id(agent, "go-available").click()
        until(agent, "document.getElementById('state').dataset.kind === '2'", "david available", wait=3 * WAIT)
        with colleague_available("amelie", "guichet-amelie-warm-") as amelie:
            integrator.Create(
                interactions.CreateRequest(
                    spec=common.InteractionSpec(channel=common.CHANNEL_SMS, queue="benefits", contact="+33698765432",
                                                external_ref="console-e2e-warm-1"),
                    message=interactions.InboundMessage(text="Bonjour, mon APL a baissé."),
                ),
                metadata=bearer(integrator_token), timeout=TIMEOUT,
            )
            until(amelie, "!document.getElementById('offer').hidden", "the SMS at amelie's")
            assert by_id(amelie, "offer-consult").get_attribute("hidden") is not None, "an ordinary offer"
            by_id(amelie, "accept").click()
            until(amelie, "document.querySelectorAll('[role=tab]').length === 1", "amelie's tab")
            panel = amelie.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
            panel.find_element(By.CSS_SELECTOR, ".to-agent").click()
            panel.find_element(By.CSS_SELECTOR, ".target").send_keys("david")
            panel.find_element(By.CSS_SELECTOR, ".tnote").send_keys("APL en baisse, à reprendre.")
            panel.find_element(By.CSS_SELECTOR, ".consult").click()
            until(amelie, "!document.querySelector('.tabpanel:not([hidden]) .consult-complete').hidden", "complete transfer offered")
            # David's offer is a consultation, shown apart, with the conversation so far.
            until(agent, "!document.getElementById('offer').hidden", "the consultation at david's")
            consult = by_id(agent, "offer-consult").text
            assert "amelie" in consult and "à reprendre" in consult, consult
            assert "APL a baissé" in by_id(agent, "offer-preview").text
            axe(agent, axe_source, "consultation offer")
            shot(agent, "consult-offer")
            by_id(agent, "accept").click()
            until(agent, "document.querySelectorAll('[role=tab]').length === 1", "david's consultation tab")
            until(agent, "!document.querySelector('.tabpanel:not([hidden]) .p-consult').hidden", "the consultation note")
            assert agent.execute_script("return document.querySelector('.tabpanel:not([hidden]) .reply').hidden"), "read only"
            # Amelie completes the transfer: her tab closes, david's becomes work in hand.
            amelie.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden]) .consult-complete").click()
            until(amelie, "document.querySelectorAll('[role=tab]').length === 0", "amelie's tab closed")
            until(agent, "!document.querySelector('.tabpanel:not([hidden]) .reply').hidden", "david may reply")
            panel = agent.find_element(By.CSS_SELECTOR, ".tabpanel:not([hidden])")
            panel.find_element(By.CSS_SELECTOR, ".reply-text").send_keys("Bonjour, je reprends votre demande.")
            panel.find_element(By.CSS_SELECTOR, ".reply button[type=submit]").click()
            until(agent, "document.querySelector('.tabpanel:not([hidden]) .conversation').innerText.includes('je reprends')", "david's reply")
            shot(agent, "consult-completed")
            if panel.find_element(By.CSS_SELECTOR, ".code-select-field").get_attribute("hidden"):
                panel.find_element(By.CSS_SELECTOR, ".code-text").send_keys("answered")
            panel.find_element(By.CSS_SELECTOR, ".complete button[type=submit]").click()
            until(agent, "document.querySelectorAll('[role=tab]').length === 0", "david's tab closed")

    def supervisor_sees_the_agents():
        sign_in("supervisor", passwords["supervisor"])
        until(agent, "location.pathname === '/console/supervisor'", "the supervision page")
        until(agent, "document.querySelectorAll('#wall-rows tr').length === 3", "the wallboard's queues")
        agent.get(base + "/console/supervisor/agents")
        until(agent, "document.querySelectorAll('#agents tr[data-agent]').length === 5", "the agents")
        shot(agent, "supervisor")

    free_port_holder = [free_port()]
    steps = [
        ("a wrong password is refused clearly, nothing opened", wrong_password_refused),
        ("david signs in and goes available", sign_in_and_go_available),
        ("an integrator's SMS rings, is accepted, answered and completed", integrator_offer_rings_and_is_handled),
        ("a widget chat: typing both ways, lines both ways, completed with a code", chat_with_a_visitor),
        ("Lighthouse: sign-in and desktop at least 95 for accessibility", lighthouse_scores),
        ("a second agent opens an email's attachment and transfers it to david with a note", second_agent_opens_an_email_attachment),
        ("a warm transfer: amelie consults david on an SMS, he accepts, she completes the transfer", warm_transfer_of_an_sms_to_david),
        ("an agent opening the supervision page is refused clearly", agent_refused_on_supervision),
        ("an expired session goes back to sign-in with a message", expired_session_goes_back_to_sign_in),
        ("the supervisor signs in and sees the agents", supervisor_sees_the_agents),
    ]
    try:
        for name, step in steps:
            try:
                step()
                passed += 1
                print(f"  ok   {name}")
            except Exception:  # noqa: BLE001 - report and go on
                failed += 1
                print(f"  FAIL {name}")
                traceback.print_exc()
                try:
                    shot(agent, "failure")
                except Exception:  # noqa: BLE001
                    pass
    finally:
        agent.quit()
        if visitor is not None:
            visitor.quit()
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(visitor_profile, ignore_errors=True)
    print(f"console e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
