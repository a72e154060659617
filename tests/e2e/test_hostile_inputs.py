"""Hostile inputs against a real server: each class of bad input sent to each listener.

Run through tests/e2e/run.sh (needs the Python client generated from proto/ on PYTHONPATH, and
grpcio). The server runs with the demo configuration plus a jambonz-style gateway, a generic
SIP secret and the SMS provider. For every case the suite checks:

- the answer: the expected status (4xx, gRPC INVALID_ARGUMENT/UNAUTHENTICATED, SMTP 5xx/421)
  or a closed connection;
- that no answer carries a file-system path, SQL text or Rust debug output;
- that the server stays healthy (`/healthz` answers 200 after every case);
- at the end, that nothing was stored: no interaction was created by any hostile request.

Prints `hostile inputs: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

import grpc

from guichet.v1 import agent_desktop_pb2 as desktop
from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc
from guichet.v1 import common_pb2 as common
from guichet.v1 import interactions_pb2 as interactions
from guichet.v1 import interactions_pb2_grpc as interactions_grpc
from guichet.v1 import supervisor_pb2 as supervisor
from guichet.v1 import supervisor_pb2_grpc as supervisor_grpc

# What must never appear in an answer: file paths, SQL, Rust debug output.
LEAKS = [
    re.compile(r"/(home|root|usr|tmp|var|work|src)/"),
    re.compile(r"\.rs:\d+"),
    re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|sqlite|rusqlite)\b", re.I),
    re.compile(r"panicked at|RUST_BACKTRACE|Some\(|None\b|\w+Error \{|\bOk\(|\bErr\("),
]


def leaks(text):
    return [p.pattern for p in LEAKS if p.search(text)]


def write_config(repo, directory):
    with open(os.path.join(repo, "config", "guichet.toml"), encoding="utf-8") as f:
        text = f.read()
    tree = os.path.join(repo, "config", "ivr", "demo_tree.json")
    text = text.replace('file = "ivr/demo_tree.json"', f'file = "{tree}"')
    text += (
        '\n[voice.jambonz]\naccount_sid = "jb"\nwebhook_secret = "jb-secret"\n'
        'api_key = "k"\napi_base = "http://127.0.0.1:9"\n'
        '\n[voice.sip]\nsecret = "sip-secret-0123456789"\ncontrol_url = "http://127.0.0.1:9/c"\n'
        '\n[limits]\nheader_read_timeout_secs = 3\nbody_read_timeout_secs = 3\n'
        'ws_start_timeout_secs = 3\n'
    )
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
             "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
             "--smtp-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.http = self.grpc = self.smtp = None
        self.log = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.monotonic() + 120
        for line in self.process.stdout:
            for name, pattern in [("grpc", r"serving gRPC on (\S+)"),
                                  ("http", r" and HTTP on (\S+)"),
                                  ("smtp", r" and SMTP on (\S+)")]:
                found = re.search(pattern, line)
                if found:
                    setattr(self, name, found.group(1))
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
        if not (self.http and self.grpc and self.smtp):
            self.stop()
            raise RuntimeError("the server did not print its addresses and `ready`")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.log.append(line)

    def admin_token(self):
        with open(os.path.join(self.data_dir, "admin.token"), encoding="utf-8") as f:
            return f.read().strip()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def http(server, method, path, body=b"", headers=None, timeout=10):
    """(status, text) of one HTTP request."""
    request = urllib.request.Request(f"http://{server.http}{path}", data=body or None,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def raw(server, data, timeout=8):
    """Sends raw bytes to the HTTP listener; returns what came back before it closed."""
    host, port = server.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        s.settimeout(timeout)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, OSError):
            pass
        return out.decode("utf-8", "replace")


def healthy(server):
    status, text = http(server, "GET", "/healthz", timeout=5)
    assert status == 200 and text == "ok\n", f"/healthz answered {status} {text!r}"


class Suite:
    def __init__(self, server):
        self.server = server
        self.passed = 0
        self.failed = 0

    def case(self, name, fn):
        try:
            answer = fn() or ""
            found = leaks(answer)
            assert not found, f"the answer leaks internals ({found}): {answer[:300]!r}"
            healthy(self.server)
            self.passed += 1
            print(f"  ok   {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then the next case runs
            self.failed += 1
            print(f"  FAIL {name}")
            traceback.print_exc()


def run(server):
    suite = Suite(server)
    admin = server.admin_token()
    meta = [("authorization", f"Bearer {admin}")]
    channel = grpc.insecure_channel(server.grpc)
    sup = supervisor_grpc.SupervisorStub(channel)
    inter = interactions_grpc.InteractionsStub(channel)
    desk = desktop_grpc.AgentDesktopStub(channel)
    def open_count():
        lines = sup.ListWaiting(supervisor.ListWaitingRequest(), metadata=meta).lines
        return sum(line.waiting_total + line.in_progress_total for line in lines)
    before = open_count()
    now = int(time.time())

    # --- HTTP webhooks ---------------------------------------------------------------------
    def flood_signature():
        header = f"t={now}" + ",v1=00" * 10_000
        text = raw(server, (f"POST /voice/jambonz/incoming HTTP/1.1\r\nhost: x\r\n"
                            f"jambonz-signature: {header}\r\ncontent-length: 2\r\n\r\n{{}}").encode())
        assert text == "" or text.startswith("HTTP/1.1 4"), text[:100]
        return text
    suite.case("jambonz: 10,000-entry signature refused", flood_signature)

    for path, header in [("/voice/jambonz/incoming", "jambonz-signature"),
                         ("/voice/sip/events", "guichet-signature")]:
        def nine(path=path, header=header):
            status, text = http(server, "POST", path, b"{}",
                                {header: f"t={now}" + ",v1=00" * 8})
            assert status == 403 and "too long" in text, (status, text)
            return text
        suite.case(f"{path}: nine signature entries refused", nine)

        def unsigned(path=path):
            status, text = http(server, "POST", path, b'{"call_sid":"x"}')
            assert status == 403, (status, text)
            return text
        suite.case(f"{path}: unsigned request refused", unsigned)

        def oversize(path=path, header=header):
            status, text = http(server, "POST", path, b"x" * (200 * 1024), {header: "t=1,v1=00"})
            assert status == 413, (status, text[:200])
            return text
        suite.case(f"{path}: oversize body gets 413", oversize)

    def bad_json_sip():
        # A valid signature over a body that is not JSON: 400 without parser details.
        import hashlib
        import hmac
        body = b"\x00\xff{not json"
        sig = hmac.new(b"sip-secret-0123456789", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        status, text = http(server, "POST", "/voice/sip/events", body,
                            {"guichet-signature": f"t={now},v1={sig}"})
        assert status == 400, (status, text)
        return text
    suite.case("sip: signed garbage body gets 400", bad_json_sip)

    def bad_call_id():
        import hashlib
        import hmac
        import json
        body = json.dumps({"event": "call.incoming", "call_id": "a b/" + "x" * 300,
                           "from": "+33600000000", "to": "+33100000000"}).encode()
        sig = hmac.new(b"sip-secret-0123456789", f"{now}.".encode() + body,
                       hashlib.sha256).hexdigest()
        status, text = http(server, "POST", "/voice/sip/events", body,
                            {"guichet-signature": f"t={now},v1={sig}"})
        assert status == 400 and "x" * 50 not in text, (status, text[:200])
        return text
    suite.case("sip: call id with spaces and 300 bytes refused, not echoed", bad_call_id)

    def sms_unsigned():
        status, text = http(server, "POST", "/sms/twilio", b"From=%2B336&Body=hello",
                            {"content-type": "application/x-www-form-urlencoded"})
        assert status in (403, 404), (status, text)
        return text
    suite.case("sms: unsigned webhook refused", sms_unsigned)

    def survey_garbage():
        status, text = http(server, "POST", "/survey/" + "A" * 5000, b"score=99&comment=\x00",
                            {"content-type": "application/x-www-form-urlencoded"})
        assert 400 <= status < 500, (status, text[:200])
        return text
    suite.case("survey: unknown token and bad score refused", survey_garbage)

    def email_webhook_unauthorised():
        status, text = http(server, "POST", "/email/inbound", b"from=a&to=b",
                            {"content-type": "application/x-www-form-urlencoded"})
        assert 400 <= status < 500, (status, text)
        return text
    suite.case("email webhook: without its token refused", email_webhook_unauthorised)

    def huge_header():
        text = raw(server, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: " + b"a" * 100_000 + b"\r\n\r\n")
        assert text == "" or text.startswith("HTTP/1.1 431") or text.startswith("HTTP/1.1 4"), text[:80]
        return text
    suite.case("http: 100 KB header refused", huge_header)

    def half_head():
        started = time.monotonic()
        text = raw(server, b"GET /healthz HTTP/1.1\r\nhost: x\r\n", timeout=15)
        assert time.monotonic() - started < 12, "a half-sent head was kept open"
        return text
    suite.case("http: half-sent head closed by the header timeout", half_head)

    def half_body():
        text = raw(server, b"POST /email/inbound HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\nab",
                   timeout=15)
        assert text.startswith("HTTP/1.1 408"), text[:80]
        return text
    suite.case("http: half-sent body gets 408", half_body)

    def not_http():
        text = raw(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
        assert text == "" or text.startswith("HTTP/1.1 400"), text[:80]
        return text
    suite.case("http: TLS hello on the plain listener", not_http)

    def websocket_without_start():
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        text = raw(server, (f"GET /chat/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                            f"connection: upgrade\r\nsec-websocket-key: {key}\r\n"
                            f"sec-websocket-version: 13\r\n\r\n").encode(), timeout=15)
        assert "101" in text.split("\r\n")[0], text[:80]
        assert "start_timeout" in text, text[-200:]
        return text.split("\r\n\r\n", 1)[0]
    suite.case("chat: WebSocket that never sends start is closed", websocket_without_start)

    # --- gRPC ------------------------------------------------------------------------------
    def grpc_case(call, code):
        try:
            call()
        except grpc.RpcError as e:
            assert e.code() == code, (e.code(), e.details())
            details = e.details() or ""
            assert len(details) < 400, f"{len(details)}-character error"
            return details
        raise AssertionError("accepted")

    suite.case("grpc: garbage token", lambda: grpc_case(
        lambda: sup.ListAgents(supervisor.ListAgentsRequest(),
                               metadata=[("authorization", "Bearer " + "z" * 15000)]),
        grpc.StatusCode.UNAUTHENTICATED))
    suite.case("grpc: 1 MB agent id not echoed", lambda: grpc_case(
        lambda: desk.Login(desktop.LoginRequest(agent_id="x" * 900_000), metadata=meta),
        grpc.StatusCode.INVALID_ARGUMENT))
    for bad in ["a b", "a/b", "a\x00b", "é"]:
        suite.case(f"grpc: agent id {bad!r}", lambda bad=bad: grpc_case(
            lambda: desk.Login(desktop.LoginRequest(agent_id=bad), metadata=meta),
            grpc.StatusCode.INVALID_ARGUMENT))
    suite.case("grpc: 10,000 preferred skills", lambda: grpc_case(
        lambda: inter.Create(interactions.CreateRequest(spec=common.InteractionSpec(
            channel=common.CHANNEL_EMAIL, queue="benefits",
            preferred=[f"s{i}" for i in range(10_000)])), metadata=meta),
        grpc.StatusCode.INVALID_ARGUMENT))
    suite.case("grpc: wrap_up_secs 2^64-1", lambda: grpc_case(
        lambda: sup.UpsertQueue(supervisor.UpsertQueueRequest(queue=common.Queue(
            id="hostile", wrap_up_secs=2**64 - 1)), metadata=meta),
        grpc.StatusCode.INVALID_ARGUMENT))

    def undecodable():
        call = channel.unary_unary("/guichet.v1.Supervisor/ListAgents",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        return grpc_case(lambda: call(b"\x00\x00\x00\xff\xff", metadata=meta),
                         grpc.StatusCode.INVALID_ARGUMENT)
    suite.case("grpc: undecodable protobuf", undecodable)

    # --- SMTP ------------------------------------------------------------------------------
    def smtp_session(lines):
        host, port = server.smtp.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            f = s.makefile("rwb")
            f.readline()
            for line in lines:
                f.write(line)
            f.flush()
            out = []
            s.settimeout(10)
            try:
                while True:
                    reply = f.readline()
                    if not reply:
                        break
                    out.append(reply.decode("utf-8", "replace"))
                    if reply.startswith(b"421") or reply.startswith(b"221"):
                        break
            except (socket.timeout, OSError):
                pass
            return out

    def smtp_nul():
        out = smtp_session([b"EHLO x\r\n", b"MAIL FROM:<a\x00b@x.example>\r\n", b"QUIT\r\n"])
        assert any(r.startswith("501") for r in out), out
        return "".join(out)
    suite.case("smtp: NUL in MAIL FROM refused", smtp_nul)

    def smtp_rcpt_flood():
        lines = [b"EHLO x\r\n", b"MAIL FROM:<a@x.example>\r\n"]
        lines += [f"RCPT TO:<n{i}@nowhere.example>\r\n".encode() for i in range(2000)]
        out = smtp_session(lines)
        assert any(r.startswith("421") for r in out), out[-3:]
        assert len(out) < 40, f"{len(out)} replies before 421"
        return "".join(out)
    suite.case("smtp: 2,000 unknown recipients end with 421", smtp_rcpt_flood)

    def smtp_garbage():
        out = smtp_session([b"\xff\xfe garbage\r\n" * 30])
        assert any(r.startswith("421") for r in out), out[-3:]
        return "".join(out)
    suite.case("smtp: garbage commands end with 421", smtp_garbage)

    def smtp_long_line():
        out = smtp_session([b"EHLO " + b"x" * 100_000 + b"\r\n", b"QUIT\r\n"])
        assert any(r.startswith("500") for r in out), out[:3]
        return "".join(out)
    suite.case("smtp: 100 KB command line refused", smtp_long_line)

    # --- nothing stored --------------------------------------------------------------------
    def nothing_stored():
        after = open_count()
        assert after == before, f"{after - before} interactions created by hostile requests"
        queues = sup.ListQueues(supervisor.ListQueuesRequest(), metadata=meta).queues
        assert all(q.id != "hostile" for q in queues)
        return ""
    suite.case("nothing was stored", nothing_stored)

    def log_clean():
        text = "".join(server.log)
        assert "panicked" not in text, "the server panicked"
        return ""
    suite.case("no panic in the server log", log_clean)
    return suite


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(args.data_dir, exist_ok=True)
    config = write_config(repo, args.data_dir)
    server = Server(os.path.abspath(args.bin), config, args.data_dir)
    try:
        suite = run(server)
    finally:
        server.stop()
    print(f"hostile inputs: {suite.passed} passed, {suite.failed} failed")
    sys.exit(1 if suite.failed else 0)


if __name__ == "__main__":
    main()
