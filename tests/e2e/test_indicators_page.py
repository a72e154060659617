"""Renders the public quality indicators page of a real `guichet serve` in headless Chromium
and checks that the figures it shows are those of the JSON.

Run through tests/e2e/run.sh (which puts the client generated from proto/ on PYTHONPATH):

1. the server starts on a fresh data directory; an agent logs in; an integrator creates three
   interactions: one answered and completed, one cancelled, one left waiting;
2. `GET /indicators?period=day` (JSON) counts them;
3. Chromium (`--headless --no-sandbox --dump-dom`) renders `/indicators.html?lang=en` and
   `?lang=fr`: every indicator has a heading, an SVG chart with a title and a table; every table
   cell shows the JSON's figure, formatted as the page promises;
4. a screenshot is saved to target/e2e-artifacts/indicators.png (and indicators-fr.png).

Prints `indicators e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import urllib.request
from html.parser import HTMLParser

import grpc

from guichet.v1 import agent_desktop_pb2 as desktop
from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc
from guichet.v1 import common_pb2 as common
from guichet.v1 import interactions_pb2 as interactions
from guichet.v1 import interactions_pb2_grpc as interactions_grpc

from test_python_client import OfferStream, Server, bearer

TIMEOUT = 10
INDICATORS = ["requests", "average_wait", "within_delay", "abandonment", "satisfaction"]


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no chromium: apt-get install -y chromium")


def chromium(args, timeout=90):
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--hide-scrollbars"] + args
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


class Page(HTMLParser):
    """What the checks need from the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.lang = None
        self.h1 = 0
        self.h2_ids = []
        self.svgs = []  # (aria-labelledby, has title)
        self.tables = {}  # id -> list of (queue, channel, data-value, text)
        self._table = None
        self._row = None
        self._cell = None
        self._svg = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "h2":
            self.h2_ids.append(a.get("id"))
        elif tag == "svg":
            self._svg = [a.get("role"), a.get("aria-labelledby"), False]
        elif tag == "title" and self._svg is not None:
            self._svg[2] = True
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-queue" in a:
            self._row = [a.get("data-queue"), a.get("data-channel"), None, ""]
        elif tag == "td" and self._row is not None and "value" in (a.get("class") or ""):
            self._row[2] = a.get("data-value")
            self._cell = True

    def handle_endtag(self, tag):
        if tag == "svg" and self._svg is not None:
            self.svgs.append(tuple(self._svg))
            self._svg = None
        elif tag == "td":
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(tuple(self._row))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell and self._row is not None:
            self._row[3] += data


def fmt_rate(r, lang):
    if r is None:
        return "—"
    text = f"{r * 100:.1f} %"
    return text.replace(".", ",") if lang == "fr" else text


def fmt_wait(s):
    return "—" if s is None else f"{math.floor(s + 0.5)} s"


def fmt_score(s, lang):
    if s is None:
        return "—"
    text = f"{s:.1f} / 5"
    return text.replace(".", ",") if lang == "fr" else text


def expected_text(indicator, row, lang):
    if indicator == "requests":
        return str(row["requests"])
    if indicator == "average_wait":
        return fmt_wait(row["average_wait_secs"])
    if indicator == "within_delay":
        return fmt_rate(row["within_delay_rate"], lang)
    if indicator == "abandonment":
        return fmt_rate(row["abandonment_rate"], lang)
    n = row["satisfaction_answers"]
    if lang == "fr":
        answers = "réponse" if n <= 1 else "réponses"
    else:
        answers = "answer" if n == 1 else "answers"
    return f"{fmt_score(row['satisfaction_average'], lang)} ({n} {answers})"


def expected_value(indicator, row):
    return {
        "requests": row["requests"],
        "average_wait": row["average_wait_secs"],
        "within_delay": row["within_delay_rate"],
        "abandonment": row["abandonment_rate"],
        "satisfaction": row["satisfaction_average"],
    }[indicator]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--artifacts", default="target/e2e-artifacts")
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)

    passed, failed = 0, 0

    def check(name, fn):
        nonlocal passed, failed
        started = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.2f} s)")
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()

    server = Server(args.bin, args.data_dir)
    state = {}
    try:
        channel = grpc.insecure_channel(server.addr)
        desk = desktop_grpc.AgentDesktopStub(channel)
        inter = interactions_grpc.InteractionsStub(channel)

        def http_addr():
            state["http"] = server.http_addr
            assert state["http"], "no HTTP address"

        def traffic():
            agent = server.token("agent", agent="amelie")
            integrator = server.token("integrator")
            desk.Login(desktop.LoginRequest(), metadata=bearer(agent), timeout=TIMEOUT)
            stream = OfferStream(desk, agent)

            def create(ref, queue, ch):
                spec = common.InteractionSpec(channel=ch, queue=queue, contact=ref, external_ref=ref)
                return inter.Create(interactions.CreateRequest(spec=spec),
                                    metadata=bearer(integrator), timeout=TIMEOUT).interaction.id

            first = create("ind-1", "benefits", common.CHANNEL_CHAT)
            offer = stream.next_offer()
            assert offer.interaction.id == first
            time.sleep(1.2)  # a visible wait
            desk.Accept(desktop.InteractionAction(interaction_id=first), metadata=bearer(agent), timeout=TIMEOUT)
            desk.Complete(desktop.CompleteRequest(interaction_id=first, wrap_up_code="answered"),
                          metadata=bearer(agent), timeout=TIMEOUT)
            second = create("ind-2", "general", common.CHANNEL_EMAIL)
            inter.Cancel(interactions.CancelRequest(interaction_id=second),
                         metadata=bearer(integrator), timeout=TIMEOUT)
            create("ind-3", "tax", common.CHANNEL_VOICE)
            stream.close()

        def indicators_json():
            url = f"http://{state['http']}/indicators?period=day"
            deadline = time.monotonic() + 20
            while True:
                with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
                    data = json.load(resp)
                if data["total"]["requests"] == 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert data["total"]["requests"] == 3, data
            assert data["total"]["answered"] == 1, data
            chat = [r for r in data["rows"] if r["queue"] == "benefits" and r["channel"] == "chat"][0]
            assert chat["average_wait_secs"] >= 1.0, chat
            assert chat["within_delay_rate"] == 1.0, chat
            state["json"] = data

        def page(lang):
            def run():
                url = f"http://{state['http']}/indicators.html?period=day&date={state['json']['from']}&lang={lang}"
                dom = chromium(["--dump-dom", url])
                p = Page()
                p.feed(dom)
                assert p.lang == lang, p.lang
                assert p.h1 == 1, p.h1
                rows = state["json"]["rows"] + [state["json"]["total"]]
                for ind in INDICATORS:
                    assert f"h-{ind}" in p.h2_ids, (ind, p.h2_ids)
                    shown = p.tables.get(f"table-{ind}")
                    assert shown is not None, (ind, list(p.tables))
                    assert len(shown) == len(rows), (ind, shown)
                    for row, (queue, ch, value, text) in zip(rows, shown):
                        assert queue == (row["queue"] or ""), (queue, row)
                        assert ch == (row["channel"] or ""), (ch, row)
                        want = expected_value(ind, row)
                        if want is None:
                            assert value == "", (ind, value)
                        else:
                            assert math.isclose(float(value), float(want)), (ind, value, want)
                        assert text.strip() == expected_text(ind, row, lang), (ind, text, row)
                assert len(p.svgs) == len(INDICATORS), p.svgs
                for role, labelled, has_title in p.svgs:
                    assert role == "img" and labelled and has_title, (role, labelled, has_title)
                name = "indicators.png" if lang == "en" else f"indicators-{lang}.png"
                shot = os.path.abspath(os.path.join(args.artifacts, name))
                chromium([f"--screenshot={shot}", "--window-size=1100,3200", url])
                assert os.path.getsize(shot) > 10_000, os.path.getsize(shot)
                print(f"     screenshot: {shot}")
            return run

        check("the HTTP address is known", http_addr)
        check("traffic: answered, cancelled, waiting", traffic)
        check("GET /indicators counts them", indicators_json)
        check("the English page in Chromium shows the JSON's figures", page("en"))
        check("the French page in Chromium shows the JSON's figures", page("fr"))
    finally:
        code = server.stop()
        if code not in (0, None):
            print(f"FAIL the server exited with {code}")
            failed += 1
    print(f"indicators e2e: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
