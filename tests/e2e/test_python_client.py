"""Drives a real `guichet serve` with a Python client generated from proto/ alone.

Run through tests/e2e/run.sh, which generates the client (grpcio-tools) into a temporary
directory and puts it on PYTHONPATH. The scenario is what an integrator and an agent desktop
written in another language would do:

1. the server starts on a fresh data directory and writes an admin token;
2. `guichet token create` makes an agent token (amelie) and an integrator token;
3. the agent logs in and opens its Offers stream;
4. the integrator creates a chat interaction; the offer arrives on the stream, with its
   deadline and the reason it was chosen; the agent accepts and completes it with notes;
5. a second interaction of the same contact arrives with the first in its history;
6. creating again with the same external reference is idempotent;
7. calls without a token, or with a bad one, get UNAUTHENTICATED; an agent token may read the
   interaction it is offered but creating one gets PERMISSION_DENIED.

Prints `python e2e: N passed, N failed` and exits non-zero on any failure.
"""

import argparse
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

import grpc

from guichet.v1 import agent_desktop_pb2 as desktop
from guichet.v1 import agent_desktop_pb2_grpc as desktop_grpc
from guichet.v1 import common_pb2 as common
from guichet.v1 import interactions_pb2 as interactions
from guichet.v1 import interactions_pb2_grpc as interactions_grpc

TIMEOUT = 10  # seconds for any one call or expected message


class Server:
    """`guichet serve` on a loopback port chosen by the system."""

    def __init__(self, binary, data_dir, config=None):
        self.binary = binary
        self.data_dir = data_dir
        extra = ["--config", config] if config else []
        self.process = subprocess.Popen(
            [binary, "serve", *extra, "--data-dir", data_dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--smtp-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
        )
        self.addr = None
        self.http_addr = None
        self.smtp_addr = None
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            print(f"  server: {line.rstrip()}")
            found = re.search(r"serving gRPC on (\S+)", line)
            if found:
                self.addr = found.group(1)
            found = re.search(r"and HTTP on (\S+)", line)
            if found:
                self.http_addr = found.group(1)
            found = re.search(r"and SMTP on (\S+)", line)
            if found:
                self.smtp_addr = found.group(1)
            if line.strip() == "ready":
                break
            if time.monotonic() > deadline:
                break
        if self.addr is None:
            self.stop()
            raise RuntimeError("the server did not print its address and `ready`")
        # Keep draining stdout so that the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for _ in self.process.stdout:
            pass

    def token(self, role, agent=None):
        args = [self.binary, "token", "create", "--role", role, "--data-dir", self.data_dir]
        if agent:
            args += ["--agent", agent]
        done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
        return done.stdout.strip()

    def admin_token(self):
        with open(os.path.join(self.data_dir, "admin.token"), encoding="utf-8") as f:
            return f.read().strip()

    def stop(self):
        """SIGTERM, then the exit code (a graceful shutdown exits 0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


def bearer(token):
    return [("authorization", f"Bearer {token}")]


class OfferStream:
    """An agent's Offers stream, read on a thread into a queue."""

    def __init__(self, stub, token):
        self.call = stub.Offers(desktop.OffersRequest(), metadata=bearer(token))
        self.updates = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for update in self.call:
                self.updates.put(update)
        except grpc.RpcError as e:
            self.updates.put(e)

    def next_offer(self):
        """The next new offer (withdrawals are skipped), or fails after TIMEOUT."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no offer arrived on the stream")
            update = self.updates.get(timeout=left)
            if isinstance(update, grpc.RpcError):
                raise AssertionError(f"the offer stream ended: {update.code()} {update.details()}")
            if update.WhichOneof("update") == "offer":
                return update.offer

    def close(self):
        self.call.cancel()


def expect_error(code, call, *args, **kwargs):
    try:
        call(*args, timeout=TIMEOUT, **kwargs)
    except grpc.RpcError as e:
        assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
        return e.details()
    raise AssertionError(f"expected {code}, the call succeeded")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the guichet binary")
    parser.add_argument("--data-dir", required=True, help="a fresh data directory")
    args = parser.parse_args()

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
    channel = grpc.insecure_channel(server.addr)
    desk = desktop_grpc.AgentDesktopStub(channel)
    inter = interactions_grpc.InteractionsStub(channel)
    state = {}

    def tokens():
        assert server.admin_token(), "admin.token is empty"
        state["agent"] = server.token("agent", agent="amelie")
        state["integrator"] = server.token("integrator")
        assert state["agent"] and state["integrator"]

    def login():
        status = desk.Login(desktop.LoginRequest(), metadata=bearer(state["agent"]), timeout=TIMEOUT)
        assert status.agent.id == "amelie", status
        assert status.state.kind == common.AgentState.KIND_AVAILABLE, status.state
        state["stream"] = OfferStream(desk, state["agent"])

    def create(external_ref):
        spec = common.InteractionSpec(
            channel=common.CHANNEL_CHAT,
            queue="benefits",
            contact="visitor-42",
            external_ref=external_ref,
            attributes=[common.Attribute(key="topic", value="housing aid")],
        )
        reply = inter.Create(
            interactions.CreateRequest(spec=spec),
            metadata=bearer(state["integrator"]),
            timeout=TIMEOUT,
        )
        return reply

    def first_offer():
        created = create("py-e2e-1")
        assert created.created, created
        interaction_id = created.interaction.id
        assert len(interaction_id) == 26, interaction_id
        offer = state["stream"].next_offer()
        assert offer.interaction.id == interaction_id, (offer.interaction.id, interaction_id)
        assert offer.interaction.phase == common.PHASE_OFFERED, offer.interaction
        assert offer.interaction.agent == "amelie", offer.interaction
        assert offer.interaction.queue == "benefits"
        assert offer.deadline_unix_ms > time.time() * 1000, offer.deadline_unix_ms
        assert "amelie" in offer.decision.text, offer.decision
        assert offer.decision.rule, offer.decision
        assert list(offer.history) == [], offer.history  # a first contact
        state["first"] = interaction_id

    def accept_and_complete():
        md = bearer(state["agent"])
        accepted = desk.Accept(
            desktop.InteractionAction(interaction_id=state["first"]), metadata=md, timeout=TIMEOUT
        )
        assert accepted.phase == common.PHASE_ASSIGNED, accepted
        done = desk.Complete(
            desktop.CompleteRequest(
                interaction_id=state["first"],
                wrap_up_code="answered",
                notes="explained the housing aid form",
            ),
            metadata=md,
            timeout=TIMEOUT,
        )
        # The benefits queue has a wrap-up time: the interaction is in wrap-up with the agent.
        assert done.phase in (common.PHASE_WRAP_UP, common.PHASE_ENDED), done
        # Setting itself available ends the wrap-up early.
        status = desk.SetState(
            desktop.SetStateRequest(state=common.AgentState.KIND_AVAILABLE),
            metadata=md,
            timeout=TIMEOUT,
        )
        assert status.state.kind == common.AgentState.KIND_AVAILABLE, status.state

    def second_offer_with_history():
        created = create("py-e2e-2")
        assert created.created, created
        offer = state["stream"].next_offer()
        assert offer.interaction.id == created.interaction.id
        history = list(offer.history)
        assert len(history) == 1, history
        entry = history[0]
        assert entry.interaction_id == state["first"], entry
        assert entry.outcome == "completed", entry
        assert entry.agent == "amelie", entry
        assert entry.wrap_up_code == "answered", entry
        assert entry.notes == "explained the housing aid form", entry
        state["second"] = created.interaction.id

    def idempotent_create():
        again = create("py-e2e-2")
        assert not again.created, again
        assert again.interaction.id == state["second"], again

    def unauthenticated():
        expect_error(grpc.StatusCode.UNAUTHENTICATED, desk.Login, desktop.LoginRequest())
        expect_error(
            grpc.StatusCode.UNAUTHENTICATED,
            inter.Get,
            interactions.GetRequest(interaction_id=state["second"]),
            metadata=bearer("not-a-token"),
        )

    def permission_denied():
        # An agent may read what it is offered (its desktop's context after a reconnect)...
        mine = inter.Get(
            interactions.GetRequest(interaction_id=state["second"]),
            metadata=bearer(state["agent"]),
            timeout=TIMEOUT,
        )
        assert mine.agent == "amelie", mine
        # ...but not create work as an integrator does.
        expect_error(
            grpc.StatusCode.PERMISSION_DENIED,
            inter.Create,
            interactions.CreateRequest(spec=common.InteractionSpec(
                channel=common.CHANNEL_CHAT, queue="benefits", contact="visitor-43",
                external_ref="agent-made")),
            metadata=bearer(state["agent"]),
        )
        # Nothing changed: the interaction is still offered to amelie.
        got = inter.Get(
            interactions.GetRequest(interaction_id=state["second"]),
            metadata=bearer(state["integrator"]),
            timeout=TIMEOUT,
        )
        assert got.phase == common.PHASE_OFFERED and got.agent == "amelie", got

    def cancel_and_logout():
        inter.Cancel(
            interactions.CancelRequest(interaction_id=state["second"]),
            metadata=bearer(state["integrator"]),
            timeout=TIMEOUT,
        )
        status = desk.Logout(desktop.LogoutRequest(), metadata=bearer(state["agent"]), timeout=TIMEOUT)
        assert status.state.kind == common.AgentState.KIND_OFFLINE, status.state
        state["stream"].close()

    try:
        for name, fn in [
            ("tokens from `guichet token create`", tokens),
            ("agent logs in and opens its offer stream", login),
            ("integrator creates; the offer arrives with deadline and decision", first_offer),
            ("agent accepts and completes with a wrap-up code and notes", accept_and_complete),
            ("the next offer carries the contact's history", second_offer_with_history),
            ("creating again with the same external_ref is idempotent", idempotent_create),
            ("no token or a bad token: UNAUTHENTICATED", unauthenticated),
            ("agent token on Interactions: PERMISSION_DENIED, nothing changed", permission_denied),
            ("cancel, log out, close the stream", cancel_and_logout),
        ]:
            if failed and name != "cancel, log out, close the stream":
                # Later steps depend on earlier ones: report them as failed without running.
                failed += 1
                print(f"SKIP {name} (an earlier step failed)")
                continue
            check(name, fn)
    finally:
        channel.close()
        code = server.stop()
    if code != 0:
        failed += 1
        print(f"FAIL the server exited with {code} after SIGTERM (expected 0)")
    else:
        passed += 1
        print("ok   the server shuts down cleanly on SIGTERM")
    print(f"python e2e: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
