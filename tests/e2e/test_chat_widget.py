"""Drives the web chat widget in headless Chromium while an agent answers over gRPC.

Run through tests/e2e/run.sh (which generates the gRPC client from proto/ and puts it on
PYTHONPATH). Chromium is driven through its DevTools protocol over a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4),
so nothing but the standard library and grpcio is needed. The scenario:

1. the visitor opens /chat/widget?lang=en, fills in name, email and question with the keyboard
   and starts the chat; the agent (david) gets the offer with the question and accepts;
2. the widget shows that the agent joined and, after SetTyping, that the agent is typing;
3. the visitor types (the agent's offer stream gets the typing notice) and sends with Enter;
   the line reaches the agent's stream; the agent's reply appears in the widget;
4. a screenshot is kept in target/e2e-artifacts/chat-widget.png;
5. the visitor asks for the transcript and ends the chat; the widget says it ended and the
   conversation holds the transcript addressed to the visitor;
6. surveys are on (the demo configuration plus `[surveys] enabled = true`): the widget shows the
   satisfaction question with a labelled 1-to-5 scale; the visitor chooses 4, writes a comment
   and sends; the widget thanks them and the survey page then says it was answered
   (screenshot target/e2e-artifacts/chat-widget-survey.png).

Prints `chat e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

from guichet.v1 import agent_desktop_pb2 as desktop
from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc

import grpc

from test_python_client import TIMEOUT, OfferStream, Server, bearer

ARTIFACTS = os.path.join("target", "e2e-artifacts")


class Chromium:
    """Headless Chromium driven over the DevTools pipe; one page, attached with a session."""

    def __init__(self, binary, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        args = [
            binary,
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--window-size=480,760",
            f"--user-data-dir={profile}",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # CI runs as root
        args.append("about:blank")
        self.process = subprocess.Popen(
            args, preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()

    def call(self, method, params=None, session=False):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT * 3
        with self._cond:
            while self._next_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no DevTools reply to {method}")
                self._cond.wait(left)
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def js(self, expression):
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, session=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what):
        """Polls `expression` in the page until it is truthy."""
        deadline = time.monotonic() + TIMEOUT * 2
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"the widget never showed {what}; page text: {self.js('document.body.innerText')!r}")

    def type_into(self, element_id, text):
        """Focuses an element and types text as a user would (input events fire)."""
        self.js(f"document.getElementById({json.dumps(element_id)}).focus()")
        self.call("Input.insertText", {"text": text}, session=True)

    def press_enter(self):
        for kind in ("rawKeyDown", "char", "keyUp"):
            params = {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
            if kind == "char":
                params["text"] = "\r"
            self.call("Input.dispatchKeyEvent", params, session=True)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def next_update(stream, kind, match=lambda u: True):
    """The next update of `kind` ("offer", "message", "typing", "withdrawn") on the stream."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} on the offer stream within {TIMEOUT} s")
        try:
            update = stream.updates.get(timeout=left)
        except queue.Empty:
            continue
        if isinstance(update, Exception):
            raise update
        if update.WhichOneof("update") == kind and match(getattr(update, kind)):
            return getattr(update, kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the guichet binary")
    parser.add_argument("--data-dir", required=True, help="a fresh data directory")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"), help="the Chromium binary")
    args = parser.parse_args()
    chromium_bin = shutil.which(args.chromium)
    if not chromium_bin:
        print(f"chat e2e: no Chromium at {args.chromium!r} (apt-get install chromium)", file=sys.stderr)
        return 1
    os.makedirs(ARTIFACTS, exist_ok=True)

    # The demo configuration with satisfaction surveys on (its IVR tree file next to it).
    config_dir = tempfile.mkdtemp(prefix="guichet-chat-config-")
    os.makedirs(os.path.join(config_dir, "ivr"))
    shutil.copy(os.path.join("config", "ivr", "demo_tree.json"), os.path.join(config_dir, "ivr"))
    config = os.path.join(config_dir, "guichet.toml")
    with open(os.path.join("config", "guichet.toml"), encoding="utf-8") as demo, open(config, "w", encoding="utf-8") as out:
        out.write(demo.read() + "\n[surveys]\nenabled = true\n")
    server = Server(args.bin, args.data_dir, config)
    profile = tempfile.mkdtemp(prefix="guichet-chromium-")
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
            return False
        return True

    try:
        token = server.token("agent", "david")
        channel = grpc.insecure_channel(server.addr)
        desk = desktop_grpc.AgentDesktopStub(channel)
        desk.Login(desktop.LoginRequest(), metadata=bearer(token), timeout=TIMEOUT)
        stream = OfferStream(desk, token)
        browser = Chromium(chromium_bin, profile)
        url = f"http://{server.http_addr}/chat/widget?lang=en"

        def widget_is_accessible():
            browser.call("Page.navigate", {"url": url}, session=True)
            browser.wait_for("document.readyState === 'complete' && !!document.getElementById('name')", "the form")
            assert browser.js("document.documentElement.lang") == "en"
            unlabelled = browser.js(
                "Array.from(document.querySelectorAll('input:not([type=hidden]),textarea,select'))"
                ".filter(e => !document.querySelector('label[for=\"' + e.id + '\"]')).map(e => e.id)"
            )
            assert unlabelled == [], f"fields without a label: {unlabelled}"
            assert browser.js("document.getElementById('log').getAttribute('aria-live')") == "polite"
            assert browser.js("document.activeElement.id") == "name", "the name field has the focus"

        def visitor_starts_and_agent_gets_the_offer():
            browser.type_into("name", "Ana Visitor")
            browser.type_into("email", "ana@example.org")
            browser.type_into("first", "Hello, I have a question about my housing benefits.")
            # No topic is preselected: the visitor chooses one (the demo's "autre" goes to the
            # general queue, which david serves).
            browser.js("document.getElementById('topic').value = 'autre'; "
                       "document.getElementById('topic').dispatchEvent(new Event('change'))")
            browser.js("document.getElementById('start-button').click()")
            offer = next_update(stream, "offer")
            texts = [m.text for m in offer.conversation]
            assert texts == ["Hello, I have a question about my housing benefits."], texts
            state["id"] = offer.interaction.id
            desk.Accept(desktop.InteractionAction(interaction_id=state["id"]), metadata=bearer(token), timeout=TIMEOUT)
            browser.wait_for("document.body.innerText.includes('joined the chat')", "the agent joining")

        def typing_both_ways():
            reply = desk.SetTyping(
                desktop.SetTypingRequest(interaction_id=state["id"], typing=True), metadata=bearer(token), timeout=TIMEOUT
            )
            assert reply.delivered
            browser.wait_for("document.getElementById('typing').textContent.includes('is typing')", "the agent typing")
            browser.type_into("text", "Thank you, I am waiting.")
            notice = next_update(stream, "typing", lambda t: t.interaction_id == state["id"])
            assert notice.typing

        def lines_both_ways():
            browser.press_enter()
            line = next_update(stream, "message", lambda m: m.direction == "inbound" and m.text == "Thank you, I am waiting.")
            assert line.interaction_id == state["id"]
            desk.SendMessage(
                desktop.SendMessageRequest(interaction_id=state["id"], text="Hello Ana, I am looking at your file."),
                metadata=bearer(token),
                timeout=TIMEOUT,
            )
            browser.wait_for(
                "Array.from(document.querySelectorAll('#log li.agent')).some(li => li.textContent.includes('looking at your file'))",
                "the agent's reply",
            )
            assert browser.js("document.getElementById('typing').textContent") == ""
            browser.screenshot(os.path.join(ARTIFACTS, "chat-widget.png"))

        def transcript_and_end():
            assert browser.js("document.getElementById('transcript-email').value") == "ana@example.org"
            browser.js("document.getElementById('transcript-button').click()")
            browser.wait_for("document.body.innerText.includes('transcript will be sent to ana@example.org')", "the transcript")
            browser.js("document.getElementById('end').click()")
            browser.wait_for("document.body.innerText.includes('The chat has ended.')", "the end of the chat")
            browser.screenshot(os.path.join(ARTIFACTS, "chat-widget-ended.png"))
            messages = desk.GetConversation(
                desktop.GetConversationRequest(interaction_id=state["id"]), metadata=bearer(token), timeout=TIMEOUT
            ).messages
            transcripts = [m for m in messages if m.subject.startswith("Transcript of your chat")]
            assert len(transcripts) == 1, messages
            transcript = transcripts[0]
            assert transcript.to == "ana@example.org", transcript
            assert transcript.subject.startswith("Transcript of your chat"), transcript.subject
            assert "looking at your file" in transcript.text

        def survey_in_the_widget():
            browser.wait_for("!document.getElementById('survey').hidden", "the survey question")
            question = browser.js("document.getElementById('survey-question').textContent")
            assert question.startswith("Are you satisfied"), question
            unlabelled = browser.js(
                "Array.from(document.querySelectorAll('#survey input,#survey textarea'))"
                ".filter(e => !document.querySelector('label[for=\"' + e.id + '\"]')).map(e => e.id)"
            )
            assert unlabelled == [], f"survey fields without a label: {unlabelled}"
            assert browser.js("document.querySelectorAll('#survey input[name=score]').length") == 5
            assert browser.js("document.activeElement.id") == "survey-score-1", "the scale has the focus"
            browser.js("document.getElementById('survey-score-4').click()")
            browser.type_into("survey-comment", "Clear answer, thanks.")
            browser.js("document.getElementById('survey-send').click()")
            browser.wait_for("document.body.innerText.includes('Thank you for your opinion!')", "the thanks")
            browser.screenshot(os.path.join(ARTIFACTS, "chat-widget-survey.png"))
            body = urllib.request.urlopen(f"http://{server.http_addr}/indicators", timeout=TIMEOUT).read()
            report = json.loads(body)
            assert report["total"]["satisfaction_answers"] == 1, report["total"]
            assert report["total"]["satisfaction_average"] == 4.0, report["total"]

        for name, fn in [
            ("the widget is labelled, in English, focus on the first field", widget_is_accessible),
            ("the visitor starts a chat; the agent gets the offer and accepts", visitor_starts_and_agent_gets_the_offer),
            ("typing shows both ways", typing_both_ways),
            ("lines go both ways; screenshot kept", lines_both_ways),
            ("transcript asked, chat ended by the visitor", transcript_and_end),
            ("the survey is asked and answered in the widget; the indicators count it", survey_in_the_widget),
        ]:
            if not check(name, fn):
                break
    finally:
        if browser:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)
        server.stop()
        shutil.rmtree(config_dir, ignore_errors=True)
    print(f"chat e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
