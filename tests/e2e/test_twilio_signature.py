"""Signs Twilio-style webhooks with the Python `twilio` package and sends them to a real server.

Run through tests/e2e/run.sh. The request signer is Twilio's own helper library
(`twilio.request_validator.RequestValidator.compute_signature`), not Guichet's code, so this
checks that Guichet accepts what Twilio sends:

1. the server starts with the demo configuration plus a `[voice.twilio]` account;
2. an incoming call to the demo number, signed with the account's auth token, is answered 200
   with TwiML (well-formed XML, a `Response` with a `Gather` waiting for a key);
3. the caller's key press, posted to the Gather's action URL (which carries a query string),
   signed the same way, is answered 200 with TwiML;
4. the same request with one parameter changed after signing is refused with 403;
5. Guichet's own signature of a request validates with `RequestValidator.validate`.

Prints `twilio e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import os
import re
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

from twilio.request_validator import RequestValidator

ACCOUNT = "ACe2e00000000000000000000000000000"
TOKEN = "e2e-auth-token"
NUMBER = "+33100000000"


def write_config(repo, directory):
    """The demo configuration with a Twilio account; the tree file by absolute path."""
    with open(os.path.join(repo, "config", "guichet.toml"), encoding="utf-8") as f:
        text = f.read()
    tree = os.path.join(repo, "config", "ivr", "demo_tree.json")
    text = text.replace('file = "ivr/demo_tree.json"', f'file = "{tree}"')
    text += f'\n[voice.twilio]\naccount_sid = "{ACCOUNT}"\nauth_token = "{TOKEN}"\n'
    path = os.path.join(directory, "guichet.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class Server:
    """`guichet serve` on loopback ports chosen by the system; reads the HTTP address it prints."""

    def __init__(self, binary, config, data_dir):
        self.process = subprocess.Popen(
            [binary, "serve", "--config", config, "--data-dir", data_dir,
             "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
        )
        self.http = None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            print(f"  server: {line.rstrip()}")
            found = re.search(r" and HTTP on (\S+)", line)
            if found:
                self.http = found.group(1)
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
        if self.http is None:
            self.stop()
            raise RuntimeError("the server did not print its HTTP address and `ready`")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def post(url, params, signature):
    body = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--work", required=True, help="a fresh working directory")
    args = parser.parse_args()
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    os.makedirs(args.work, exist_ok=True)
    config = write_config(repo, args.work)
    server = Server(args.bin, config, os.path.join(args.work, "data"))
    validator = RequestValidator(TOKEN)
    base = f"http://{server.http}"
    passed, failed = 0, 0
    state = {}

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()

    def incoming():
        url = f"{base}/voice/twilio/incoming"
        params = {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "CallSid": "CAe2e1",
                  "CallStatus": "ringing", "Direction": "inbound", "From": "+33612345678",
                  "To": NUMBER, "Caller": "+33612345678", "Called": NUMBER}
        status, body = post(url, params, validator.compute_signature(url, params))
        assert status == 200, (status, body)
        root = ET.fromstring(body)
        assert root.tag == "Response", body
        gathers = root.findall("Gather")
        assert gathers, body
        state["action"] = gathers[0].get("action")
        assert "?" in state["action"], state["action"]

    def key_press():
        url = state["action"]
        params = {"AccountSid": ACCOUNT, "CallSid": "CAe2e1", "Digits": "1", "FinishedOnKey": ""}
        status, body = post(url, params, validator.compute_signature(url, params))
        assert status == 200, (status, body)
        assert ET.fromstring(body).tag == "Response", body

    def tampered():
        url = f"{base}/voice/twilio/incoming"
        params = {"AccountSid": ACCOUNT, "CallSid": "CAe2e2", "From": "+33612345678", "To": NUMBER}
        signature = validator.compute_signature(url, params)
        params["From"] = "+33699999999"
        status, body = post(url, params, signature)
        assert status == 403, (status, body)

    def validator_agrees():
        url = f"{base}/voice/twilio/status?x=1"
        params = {"CallSid": "CAe2e3", "CallStatus": "completed"}
        signature = validator.compute_signature(url, params)
        assert validator.validate(url, params, signature)
        status, body = post(url, params, signature)
        assert status == 200, (status, body)

    try:
        check("incoming call signed by twilio's RequestValidator gets TwiML", incoming)
        check("gather action (URL with a query string) signed the same way", key_press)
        check("a parameter changed after signing gets 403", tampered)
        check("a status callback signed over a URL with a query string", validator_agrees)
    finally:
        server.stop()
    print(f"twilio e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
