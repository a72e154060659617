"""Sends mail to a real `guichet serve` with Python's standard smtplib (no third-party package).

Run through tests/e2e/run.sh. The scenario is what a mail relay and a citizen's mail client do:

1. the server starts on a fresh data directory with the SMTP listener on a free loopback port;
2. a multipart/alternative message (Latin-1 text part, HTML part, a PDF attachment) is accepted
   with 250 once stored, in the queue its recipient maps to, and acknowledged;
3. a reply carrying the acknowledgement's `[#REFERENCE]` joins the same interaction;
4. an unknown recipient is refused with 550 5.1.1, an announced size over the limit with
   552 5.3.4, and nothing of them is stored;
5. SIGTERM stops the server cleanly.

The journal is read with the standard sqlite3 module. Prints `email e2e: N passed, N failed`
and exits non-zero on any failure.
"""

import argparse
import json
import re
import signal
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from email.message import EmailMessage

BENEFITS = "logement@service-public.example"
TIMEOUT = 20


class Server:
    def __init__(self, binary, data_dir):
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [binary, "serve", "--config", "config/guichet.toml", "--data-dir", data_dir,
             "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
             "--smtp-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
        self.smtp = None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            print(f"  server: {line.rstrip()}")
            found = re.search(r" and SMTP on (\S+)", line)
            if found:
                host, port = found.group(1).rsplit(":", 1)
                self.smtp = (host, int(port))
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
        if self.smtp is None:
            self.stop()
            raise RuntimeError("the server did not print its SMTP address and `ready`")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode

    def rows(self, sql, *args):
        db = sqlite3.connect(f"file:{self.data_dir}/guichet.db?mode=ro", uri=True)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()


def client(server):
    smtp = smtplib.SMTP(*server.smtp, timeout=TIMEOUT)
    smtp.ehlo("citizen.example")
    return smtp


def check_multipart_message_is_stored_and_acknowledged(server, state):
    msg = EmailMessage()
    msg["From"] = "Zoé Martin <zoe@example.org>"
    msg["To"] = BENEFITS
    msg["Subject"] = "Aide au logement : où en suis-je ?"
    msg["Message-ID"] = "<py1@example.org>"
    msg.set_content("Bonjour, où en est mon dossier ? Zoé", charset="iso-8859-1")
    msg.add_alternative("<p>Bonjour, o&ugrave; en est mon dossier ?</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="justificatif.pdf")
    with client(server) as smtp:
        refused = smtp.send_message(msg)
    assert refused == {}, refused
    rows = server.rows("SELECT interaction, payload FROM journal WHERE message = ?",
                       "email:py1@example.org")
    assert len(rows) == 1, rows
    interaction, payload = rows[0]
    message = json.loads(payload)["message"]
    assert "où en est mon dossier" in message["text"], message["text"]
    assert message["attachments"][0]["name"] == "justificatif.pdf", message["attachments"]
    acks = [json.loads(p)["message"] for (p,) in server.rows(
        "SELECT payload FROM journal WHERE interaction = ? AND kind = 'message_added'",
        interaction)][1:]
    assert acks and "within 5 working days" in acks[0]["text"], acks
    state["interaction"] = interaction
    state["ack_subject"] = acks[0]["subject"]


def check_reply_with_reference_joins_the_interaction(server, state):
    msg = EmailMessage()
    msg["From"] = "zoe@example.org"
    msg["To"] = BENEFITS
    msg["Subject"] = "Re: " + state["ack_subject"]
    msg["Message-ID"] = "<py2@example.org>"
    msg.set_content("Voici un complément.")
    with client(server) as smtp:
        smtp.send_message(msg)
    rows = server.rows("SELECT interaction FROM journal WHERE message = ?",
                       "email:py2@example.org")
    assert rows == [(state["interaction"],)], rows


def check_refusals_store_nothing(server, state):
    before = server.rows("SELECT count(*) FROM journal")[0][0]
    with client(server) as smtp:
        try:
            smtp.sendmail("zoe@example.org", ["nobody@elsewhere.example"], "Subject: x\r\n\r\nx\r\n")
            raise AssertionError("an unknown recipient was accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["nobody@elsewhere.example"]
            assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        try:
            smtp.sendmail("zoe@example.org", [BENEFITS], "Subject: x\r\n\r\nx\r\n",
                          mail_options=["SIZE=99999999"])
            raise AssertionError("an oversized message was accepted")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 552 and e.smtp_error.startswith(b"5.3.4"), e
    after = server.rows("SELECT count(*) FROM journal")[0][0]
    assert after == before, (before, after)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    server = Server(args.bin, args.data_dir)
    passed = failed = 0
    state = {}
    try:
        for check in (check_multipart_message_is_stored_and_acknowledged,
                      check_reply_with_reference_joins_the_interaction,
                      check_refusals_store_nothing):
            try:
                check(server, state)
                passed += 1
                print(f"ok   {check.__name__}")
            except Exception:
                failed += 1
                print(f"FAIL {check.__name__}")
                traceback.print_exc()
    finally:
        code = server.stop()
        if code != 0:
            failed += 1
            print(f"FAIL the server exited with {code} on SIGTERM")
    print(f"email e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
