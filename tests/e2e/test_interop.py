"""Interoperability checked by the other side's own code.

Run through tests/e2e/run.sh. A real `guichet serve` is driven as the gateways and tools drive it,
and every answer is judged by the other side's own code, not by Guichet's:

1. phone calls walk an IVR tree that holds every node type (business hours, say, play, set
   language, set attribute, set requirement, set priority, condition, collect, menu with speech,
   queue, voicemail, callback offer, transfer, hang up), on the jambonz and on the Twilio webhooks,
   signed as each gateway signs; every branch is followed: no input, the hold loop, an agent's
   acceptance bridged through the gateway's live call control (a local stand-in of the REST API
   receives the update, and its hook is followed), a callback placed when an agent accepts it
   (offered by the IVR, or asked with the hold loop's key), a number no tree answers (the
   refusal's spoken apology); on jambonz the voicemail's `listen` (WebSocket URL, `wsAuth`,
   nested `transcribe`) and its transcription hook;
2. every jambonz answer (webhook answers and the `app_json` of originated calls) is written to a
   file that tests/e2e/jambonz_validate.js checks with `validate()` of the npm package
   `@jambonz/verb-specifications` (the checks a jambonz feature server applies);
3. every TwiML answer is rebuilt through the `twilio` library's `VoiceResponse` (an unknown verb,
   attribute or nesting fails there) and compared with what Guichet sent;
4. Python's `grpcio-reflection` client (which speaks reflection v1alpha) lists the services;
5. `/metrics` after that traffic passes `promtool check metrics` when promtool is installed.

Prints `interop e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

NUMBER = "+33100000077"
TWILIO_SID = "ACinterop000000000000000000000000"
TWILIO_TOKEN = "interop-auth-token"
JAMBONZ_SECRET = "interop-webhook-secret"
TIMEOUT = 15

TREE = {
    "name": "interop",
    "languages": ["fr-FR", "en-GB"],
    "default_language": "fr-FR",
    "timezone": "Europe/Paris",
    "entry": "hours",
    "nodes": {
        "hours": {
            "type": "business_hours",
            "schedule": {d: ["00:00-23:59"] for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            "open": "welcome", "closed": "welcome",
        },
        "welcome": {"type": "say", "prompt": {"text": {"fr-FR": "Bienvenue.", "en-GB": "Welcome."}},
                    "next": "jingle"},
        "jingle": {"type": "play", "url": "https://media.example.org/jingle.wav", "next": "lang"},
        "lang": {"type": "set_language", "language": "fr-FR", "next": "topic"},
        "topic": {"type": "set_attribute", "key": "topic", "value": "interop", "next": "req"},
        "req": {"type": "set_requirement", "skill": "lang:fr", "min_level": 1, "next": "prio"},
        "prio": {"type": "set_priority", "priority": 5, "next": "cond"},
        "cond": {"type": "condition",
                 "rules": [{"when": {"caller_starts_with": "+3399"}, "goto": "bye"}],
                 "otherwise": "file"},
        "file": {"type": "collect", "prompt": {"text": {"fr-FR": "Tapez votre numéro de dossier.",
                                                         "en-GB": "Type your file number."}},
                 "attribute": "file_number", "min_digits": 4, "max_digits": 4,
                 "next": "menu", "on_fail": "menu"},
        "menu": {"type": "menu",
                 "prompt": {"text": {"fr-FR": "Conseiller 1, message 2, rappel 3, transfert 4, fin 5.",
                                     "en-GB": "Adviser 1, message 2, callback 3, transfer 4, end 5."}},
                 "options": {"1": "queue", "2": "voicemail", "3": "callback", "4": "transfer", "5": "bye"},
                 "speech": {"conseiller": "queue", "adviser": "queue"},
                 "invalid_prompt": {"text": {"fr-FR": "Choix non valide.", "en-GB": "Not valid."}},
                 "on_fail": "bye"},
        "queue": {"type": "queue", "queue": "benefits"},
        "voicemail": {"type": "voicemail",
                      "prompt": {"text": {"fr-FR": "Laissez un message.", "en-GB": "Leave a message."}},
                      "max_length_secs": 60, "queue": "general"},
        "callback": {"type": "callback_offer",
                     "prompt": {"text": {"fr-FR": "Pour être rappelé, tapez 1.",
                                         "en-GB": "To be called back, press 1."}},
                     "queue": "general",
                     "confirmation": {"text": {"fr-FR": "C'est noté.", "en-GB": "Noted."}},
                     "declined": "bye"},
        "transfer": {"type": "transfer", "number": "+33170000099",
                     "prompt": {"text": {"fr-FR": "Je vous transfère.", "en-GB": "Transferring you."}}},
        "bye": {"type": "hangup", "prompt": {"text": {"fr-FR": "Au revoir.", "en-GB": "Goodbye."}}},
    },
}


class StandIn:
    """The gateways' REST APIs (live call update, originate), recording every request."""

    def __init__(self):
        self.requests = queue.Queue()
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                received.put((self.command, self.path, self.headers.get("content-type", ""), body))
                data = json.dumps({"sid": "stand-in-call"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_GET = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_request(self, needle):
        """The next request whose path holds `needle` (others are dropped)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                request = self.requests.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if needle in request[1]:
                return request
        raise AssertionError(f"the stand-in got no request to {needle}")


def write_config(repo, directory, standin):
    with open(os.path.join(repo, "config", "guichet.toml"), encoding="utf-8") as f:
        demo = f.read()
    base = demo.split("# ---------------------------------------------------------------- phone channel")[0]
    # No after-call work, so that the one agent takes each next offer at once.
    base = re.sub(r"wrap_up_secs = \d+", "wrap_up_secs = 0", base)
    tree = os.path.join(directory, "interop.json")
    with open(tree, "w", encoding="utf-8") as f:
        json.dump(TREE, f, ensure_ascii=False)
    text = base + f"""
[[voice.trees]]
file = "{tree}"

[[voice.numbers]]
number = "{NUMBER}"
tree = "interop"

[voice.hold]
poll_secs = 1
announce_every_secs = 1

[voice.twilio]
account_sid = "{TWILIO_SID}"
auth_token = "{TWILIO_TOKEN}"
api_base = "{standin}"

[voice.jambonz]
account_sid = "jb-interop"
webhook_secret = "{JAMBONZ_SECRET}"
api_key = "jb-key"
api_base = "{standin}"
listen_secret = "interop-listen-secret-0123"
transcribe_voicemail = true

[voice.jambonz.speech]
tts_vendor = "google"
stt_vendor = "google"

[voice.jambonz.speech.languages."fr-FR"]
tts_voice = "fr-FR-Neural2-A"
"""
    path = os.path.join(directory, "guichet.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class Server:
    def __init__(self, binary, config, data_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [binary, "serve", "--config", config, "--data-dir", data_dir,
             "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
        )
        self.grpc_addr = None
        self.http = None
        for line in self.process.stdout:
            found = re.search(r"serving gRPC on (\S+)", line)
            if found:
                self.grpc_addr = found.group(1)
            found = re.search(r"and HTTP on (\S+)", line)
            if found:
                self.http = "http://" + found.group(1)
            if line.strip() == "ready":
                break
        if not (self.grpc_addr and self.http):
            self.stop()
            raise RuntimeError("the server did not print its addresses and `ready`")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def token(self, role, agent=None):
        args = [self.binary, "token", "create", "--role", role, "--data-dir", self.data_dir]
        if agent:
            args += ["--agent", agent]
        return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


class Jambonz:
    """Plays jambonz: JSON webhooks signed `t=<now>,v1=<HMAC-SHA256 of "t.body">`."""

    name = "jambonz"

    def __init__(self, base):
        self.base = base
        self.answers = []

    def send(self, url, sid, **fields):
        url = urllib.parse.urljoin(self.base + "/", url)
        body = json.dumps({"call_sid": sid, "account_sid": "jb-interop", **fields}).encode()
        t = str(int(time.time()))
        mac = hmac.new(JAMBONZ_SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        status, text = post(url, body, {"content-type": "application/json",
                                        "jambonz-signature": f"t={t},v1={mac}"})
        assert status == 200, f"{url}: {status} {text}"
        verbs = json.loads(text)
        self.answers.append({"name": f"{sid} {urllib.parse.urlparse(url).path}", "verbs": verbs})
        return verbs

    def incoming(self, sid, caller):
        return self.send(f"{self.base}/voice/jambonz/incoming", sid, **{"from": caller, "to": NUMBER,
                                                                     "direction": "inbound"})

    def refused(self, sid, to):
        """A call to a number no tree answers: 404, with the spoken apology as verbs."""
        url = f"{self.base}/voice/jambonz/incoming"
        body = json.dumps({"call_sid": sid, "from": "+33600000000", "to": to}).encode()
        t = str(int(time.time()))
        mac = hmac.new(JAMBONZ_SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        status, text = post(url, body, {"content-type": "application/json",
                                        "jambonz-signature": f"t={t},v1={mac}"})
        assert status == 404, f"{url}: {status} {text}"
        self.answers.append({"name": f"{sid} refused", "verbs": json.loads(text)})

    @staticmethod
    def hook(verbs, verb=None):
        for v in reversed(verbs):
            if (verb is None or v["verb"] == verb) and "actionHook" in v:
                hook = v["actionHook"]
                return hook["url"] if isinstance(hook, dict) else hook
        raise AssertionError(f"no actionHook in {verbs}")

    def digits(self, verbs, sid, digits):
        return self.send(self.hook(verbs, "gather"), sid, digits=digits, reason="dtmfDetected")

    def no_input(self, verbs, sid):
        return self.send(self.hook(verbs, "gather"), sid, reason="timeout")

    def follow(self, verbs, sid):
        return self.send(self.hook(verbs), sid)

    def recording(self, verbs, sid):
        listen = next(v for v in verbs if v["verb"] == "listen")
        # The audio goes to Guichet's own WebSocket, with per-call Basic credentials, and a
        # transcription to its hook (tests/voice_jambonz_voicemail.rs plays that socket).
        assert listen["url"].startswith("ws://") and f"/voice/jambonz/listen/{sid}" in listen["url"], listen
        assert listen["wsAuth"]["username"] == "guichet" and len(listen["wsAuth"]["password"]) == 64, listen
        assert listen["sampleRate"] == 8000 and listen["mixType"] == "mono", listen
        assert listen["transcribe"]["recognizer"]["vendor"] == "google", listen
        self.send(listen["transcribe"]["transcriptionHook"], sid,
                  speech={"is_final": True, "alternatives": [{"transcript": "Rappelez-moi."}]})
        return self.send(self.hook(verbs, "listen"), sid)

    def hang_up(self, sid):
        self.send(f"{self.base}/voice/jambonz/status", sid, call_status="completed")

    @staticmethod
    def kinds(verbs):
        return [v["verb"] for v in verbs]


class Twilio:
    """Plays Twilio: form webhooks signed by the `twilio` library's RequestValidator."""

    name = "twilio"

    def __init__(self, base):
        self.base = base
        self.validator = RequestValidator(TWILIO_TOKEN)
        self.answers = []

    def send(self, url, sid, **fields):
        url = urllib.parse.urljoin(self.base + "/", url)
        params = {"CallSid": sid, "AccountSid": TWILIO_SID, **fields}
        signature = self.validator.compute_signature(url, params)
        status, text = post(url, urllib.parse.urlencode(params).encode(),
                            {"content-type": "application/x-www-form-urlencoded",
                             "x-twilio-signature": signature})
        assert status == 200, f"{url}: {status} {text}"
        self.answers.append({"name": f"{sid} {urllib.parse.urlparse(url).path}", "twiml": text})
        return ET.fromstring(text)

    def incoming(self, sid, caller):
        return self.send(f"{self.base}/voice/twilio/incoming", sid, From=caller, To=NUMBER,
                         CallStatus="ringing", Direction="inbound")

    def refused(self, sid, to):
        """A call to a number no tree answers: 404, with the spoken apology as TwiML."""
        url = f"{self.base}/voice/twilio/incoming"
        params = {"CallSid": sid, "AccountSid": TWILIO_SID, "From": "+33600000000", "To": to}
        signature = self.validator.compute_signature(url, params)
        status, text = post(url, urllib.parse.urlencode(params).encode(),
                            {"content-type": "application/x-www-form-urlencoded",
                             "x-twilio-signature": signature})
        assert status == 404, f"{url}: {status} {text}"
        self.answers.append({"name": f"{sid} refused", "twiml": text})

    @staticmethod
    def hook(root, verb=None):
        for element in reversed(list(root)):
            if verb is not None and element.tag != verb:
                continue
            if element.tag == "Redirect":
                return element.text.strip()
            if element.get("action"):
                return element.get("action")
        raise AssertionError(f"no action in {ET.tostring(root, encoding='unicode')}")

    def digits(self, root, sid, digits):
        return self.send(self.hook(root, "Gather"), sid, Digits=digits)

    def no_input(self, root, sid):
        for element in reversed(list(root)):
            if element.tag == "Redirect":
                return self.send(element.text.strip(), sid)
        raise AssertionError("no redirect after the gather")

    def follow(self, root, sid):
        return self.send(self.hook(root), sid)

    def recording(self, root, sid):
        return self.send(self.hook(root, "Record"), sid, RecordingUrl="https://api.twilio.com/rec/RE1",
                         RecordingDuration="7")

    def hang_up(self, sid):
        self.send(f"{self.base}/voice/twilio/status", sid, CallStatus="completed")

    @staticmethod
    def kinds(root):
        return [e.tag.lower() for e in root]


def walk(gateway, server, standin, desk_stub, token, offers):
    """Every branch of the interop tree on one gateway."""
    g = gateway
    n = g.name
    # Caller matching the condition: hung up at once.
    answer = g.incoming(f"{n}-cond", "+33990000000")
    assert "hangup" in g.kinds(answer), g.kinds(answer)

    # Speech and no input on the menu, then a transfer.
    sid = f"{n}-transfer"
    answer = g.incoming(sid, "+33611111111")
    answer = g.digits(answer, sid, "1234")
    answer = g.no_input(answer, sid)
    answer = g.digits(answer, sid, "4")
    assert "dial" in g.kinds(answer), g.kinds(answer)
    g.follow(answer, sid)

    # Hang up from the menu.
    sid = f"{n}-bye"
    answer = g.incoming(sid, "+33611111112")
    answer = g.digits(answer, sid, "1234")
    answer = g.digits(answer, sid, "5")
    assert "hangup" in g.kinds(answer), g.kinds(answer)

    # Voicemail: the prompt, the recording, then its end.
    sid = f"{n}-voicemail"
    answer = g.incoming(sid, "+33611111113")
    answer = g.digits(answer, sid, "1234")
    answer = g.digits(answer, sid, "2")
    g.recording(answer, sid)
    # The message is an interaction of its own: taken and completed.
    accept_next(desk_stub, token, offers, "general")
    complete_all(desk_stub, token)

    # Callback offered and accepted; an agent's acceptance places the call.
    sid = f"{n}-callback"
    answer = g.incoming(sid, "+33611111114")
    answer = g.digits(answer, sid, "1234")
    answer = g.digits(answer, sid, "3")
    answer = g.digits(answer, sid, "1")
    assert "hangup" in g.kinds(answer), g.kinds(answer)
    g.hang_up(sid)
    accept_next(desk_stub, token, offers, "general")
    method, path, content_type, body = standin.next_request("/Calls")
    if n == "jambonz":
        app = json.loads(body)["app_json"]
        g.answers.append({"name": f"{sid} originate app_json", "verbs": json.loads(app)})
    else:
        twiml = urllib.parse.parse_qs(body)["Twiml"][0]
        g.answers.append({"name": f"{sid} originate Twiml", "twiml": twiml})
    complete_all(desk_stub, token)

    # Queue, then the hold loop's callback key: the caller keeps the place, hangs up, and an
    # agent's acceptance places the call back.
    sid = f"{n}-holdcb"
    answer = g.incoming(sid, "+33611111116")
    answer = g.digits(answer, sid, "1234")
    answer = g.digits(answer, sid, "1")
    answer = g.follow(answer, sid)
    answer = g.digits(answer, sid, "9")
    assert "hangup" in g.kinds(answer), g.kinds(answer)
    g.hang_up(sid)
    accept_next(desk_stub, token, offers, "benefits")
    method, path, content_type, body = standin.next_request("/Calls")
    if n == "jambonz":
        app = json.loads(body)["app_json"]
        g.answers.append({"name": f"{sid} originate app_json", "verbs": json.loads(app)})
    else:
        twiml = urllib.parse.parse_qs(body)["Twiml"][0]
        g.answers.append({"name": f"{sid} originate Twiml", "twiml": twiml})
    complete_all(desk_stub, token)

    # A number no tree answers: refused with a spoken apology, in the gateway's format.
    g.refused(f"{n}-nowhere", "+33100000000")

    # Queue: the hold loop twice, then an agent accepts and the call is bridged.
    sid = f"{n}-queue"
    answer = g.incoming(sid, "+33611111115")
    answer = g.digits(answer, sid, "1234")
    answer = g.digits(answer, sid, "1")
    answer = g.follow(answer, sid)
    answer = g.follow(answer, sid)
    accept_next(desk_stub, token, offers, "benefits")
    method, path, content_type, body = standin.next_request(sid)
    if n == "jambonz":
        # jambonz's live call update names a hook; its answer bridges the call.
        answer = g.send(json.loads(body)["call_hook"]["url"], sid)
        assert "dial" in g.kinds(answer), g.kinds(answer)
    else:
        # Twilio's live call update carries the TwiML itself.
        twiml = urllib.parse.parse_qs(body)["Twiml"][0]
        g.answers.append({"name": f"{sid} live update Twiml", "twiml": twiml})
        assert "<Dial" in twiml, twiml
    g.hang_up(sid)
    complete_all(desk_stub, token)


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def accept_next(stub, token, offers, queue_id):
    from guichet.v1 import agent_desktop_pb2 as desktop
    deadline = time.monotonic() + TIMEOUT
    while True:
        update = offers.get(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(update, Exception):
            raise update
        if update.HasField("offer"):
            assert update.offer.interaction.queue == queue_id, update.offer.interaction
            stub.Accept(desktop.InteractionAction(interaction_id=update.offer.interaction.id),
                        metadata=bearer(token), timeout=TIMEOUT)
            return update.offer.interaction.id


def complete_all(stub, token):
    """Completes the interaction the agent holds, so that the next offer can come (a call that
    ended may already be closed: that refusal is fine)."""
    from guichet.v1 import agent_desktop_pb2 as desktop
    try:
        stub.Complete(desktop.CompleteRequest(interaction_id=HELD[-1], wrap_up_code="answered"),
                      metadata=bearer(token), timeout=TIMEOUT)
    except grpc.RpcError as e:
        if e.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            raise


HELD = []


def twiml_rebuilt(text):
    """The TwiML rebuilt with the twilio library: every element through the library's own
    builder method, every attribute through its keyword; then serialised by the library."""
    root = ET.fromstring(text)
    assert root.tag == "Response", root.tag
    response = VoiceResponse()

    def snake(name):
        name = re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        return name[0].lower() + name[1:]

    def add(parent, element):
        method = getattr(parent, snake(element.tag), None)
        if method is None:
            raise AssertionError(f"the twilio library has no <{element.tag}> inside <{type(parent).__name__}>")
        kwargs = {snake(k): v for k, v in element.attrib.items()}
        text = (element.text or "").strip() or None
        child = method(text, **kwargs) if text is not None else method(**kwargs)
        for sub in element:
            add(child, sub)

    for element in root:
        add(response, element)
    return response.to_xml()


def same_xml(a, b):
    def canon(e):
        return (e.tag, sorted(e.attrib.items()), (e.text or "").strip(), [canon(c) for c in e])
    return canon(ET.fromstring(a)) == canon(ET.fromstring(b))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--validator", required=True, help="tests/e2e/jambonz_validate.js")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(args.work, exist_ok=True)
    standin = StandIn()
    config = write_config(repo, args.work, standin.url)
    server = Server(args.bin, config, os.path.join(args.work, "data"))
    passed, failed = 0, 0

    def check(name, f):
        nonlocal passed, failed
        try:
            f()
            print(f"ok   {name}")
            passed += 1
        except Exception:
            print(f"FAIL {name}")
            traceback.print_exc()
            failed += 1

    try:
        from guichet.v1 import agent_desktop_pb2 as desktop
        from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc
        channel = grpc.insecure_channel(server.grpc_addr)
        stub = desktop_grpc.AgentDesktopStub(channel)
        token = server.token("agent", "amelie")
        stub.Login(desktop.LoginRequest(), metadata=bearer(token), timeout=TIMEOUT)
        offers = queue.Queue()

        def read():
            try:
                for update in stub.Offers(desktop.OffersRequest(), metadata=bearer(token)):
                    if update.HasField("offer"):
                        HELD.append(update.offer.interaction.id)
                    offers.put(update)
            except grpc.RpcError as e:
                offers.put(e)
        threading.Thread(target=read, daemon=True).start()

        jambonz = Jambonz(server.http)
        twilio = Twilio(server.http)
        check("jambonz: every node type, hold loop, bridge and callback walked",
              lambda: walk(jambonz, server, standin, stub, token, offers))
        check("twilio: every node type, hold loop, bridge and callback walked",
              lambda: walk(twilio, server, standin, stub, token, offers))

        def validate_jambonz():
            path = os.path.join(args.work, "jambonz-answers.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(jambonz.answers, f, ensure_ascii=False, indent=1)
            assert len(jambonz.answers) >= 15, len(jambonz.answers)
            done = subprocess.run(["node", args.validator, path], capture_output=True, text=True, timeout=60)
            print(done.stdout, end="")
            assert done.returncode == 0, done.stderr + done.stdout
        check("jambonz: @jambonz/verb-specifications validate() accepts every answer", validate_jambonz)

        def rebuild_twiml():
            assert len(twilio.answers) >= 15, len(twilio.answers)
            for answer in twilio.answers:
                rebuilt = twiml_rebuilt(answer["twiml"])
                assert same_xml(answer["twiml"], rebuilt), (
                    f"{answer['name']}:\n guichet: {answer['twiml']}\n twilio:  {rebuilt}")
            print(f"  {len(twilio.answers)} TwiML documents rebuilt by VoiceResponse, identical")
        check("twilio: every TwiML document rebuilt by the twilio library", rebuild_twiml)

        def reflection():
            from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
                ProtoReflectionDescriptorDatabase)
            db = ProtoReflectionDescriptorDatabase(grpc.insecure_channel(server.grpc_addr))
            services = set(db.get_services())
            for name in ["guichet.v1.AgentDesktop", "guichet.v1.Supervisor", "guichet.v1.Interactions"]:
                assert name in services, services
            # The descriptors resolve, so tools can build requests.
            db.FindFileContainingSymbol("guichet.v1.Interactions")
        check("grpcio-reflection lists the services", reflection)

        def promtool():
            tool = shutil.which("promtool")
            if tool is None:
                print("  promtool not installed: skipped (tests/obs_metrics.rs checks HELP and TYPE)")
                return
            with urllib.request.urlopen(server.http + "/metrics", timeout=TIMEOUT) as r:
                text = r.read()
            done = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, timeout=60)
            assert done.returncode == 0, (done.stdout + done.stderr).decode()
        check("promtool check metrics", promtool)
    finally:
        server.stop()
    print(f"interop e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
