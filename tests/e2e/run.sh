#!/usr/bin/env bash
# End-to-end check that the protos stand alone: generates a Python client from proto/ with
# grpcio-tools (into a temporary directory, nothing is committed), then drives the real server
# binary with it (tests/e2e/test_python_client.py).
#
# Also sends mail with smtplib to the SMTP listener (tests/e2e/test_email_smtp.py), then renders
# the public quality indicators page in headless Chromium and checks its figures
# against the JSON (tests/e2e/test_indicators_page.py), and drives the web chat widget in headless
# Chromium while an agent answers over gRPC (tests/e2e/test_chat_widget.py); screenshots in
# target/e2e-artifacts/.
#
# Also drives the console (sign-in, agent desktop) with Selenium, axe-core and Lighthouse
# (tests/e2e/test_console.py), and the supervisor console (tests/e2e/test_supervisor.py).
#
# Also signs Twilio-style webhooks with the `twilio` package (tests/e2e/test_twilio_signature.py),
# and sends hostile inputs to every listener (tests/e2e/test_hostile_inputs.py).
#
# Interoperability judged by the other side's code (tests/e2e/test_interop.py): calls through every
# IVR node type on jambonz and Twilio, each jambonz answer checked by `validate()` of the npm package
# `@jambonz/verb-specifications` (tests/e2e/jambonz_validate.js; NODE_PATH must find it), each TwiML
# document rebuilt by the `twilio` library; services listed by `grpcio-reflection`; `/metrics`
# checked by `promtool check metrics` when promtool is installed.
#
# Needs: python3 with grpcio, grpcio-tools, grpcio-reflection, twilio and selenium, node with
# @jambonz/verb-specifications on NODE_PATH and axe-core and lighthouse@12 in target/e2e-node,
# chromium and chromium-driver
# (Debian package `chromium`), and the server built by `cargo test` or `cargo build`
# (target/debug/guichet; another one with GUICHET_BIN).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin="${GUICHET_BIN:-target/debug/guichet}"
if [[ ! -x "$bin" ]]; then
    echo "no server binary at $bin: run \`cargo build\` (or set GUICHET_BIN)" >&2
    exit 1
fi
python="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gen"

# The client is generated from the .proto files alone: no Rust, no server reflection.
"$python" -m grpc_tools.protoc -Iproto \
    --python_out="$work/gen" --grpc_python_out="$work/gen" \
    proto/guichet/v1/*.proto

PYTHONPATH="$work/gen" "$python" tests/e2e/test_python_client.py \
    --bin "$bin" --data-dir "$work/data"

PYTHONPATH="$work/gen" "$python" tests/e2e/test_indicators_page.py \
    --bin "$bin" --data-dir "$work/data-indicators" --artifacts target/e2e-artifacts
# Mail from Python's standard smtplib to the SMTP listener (no third-party package).
"$python" tests/e2e/test_email_smtp.py --bin "$bin" --data-dir "$work/email-data"
# The web chat widget in headless Chromium (Debian `chromium`) while an agent answers over gRPC;
# screenshots go to target/e2e-artifacts/.
PYTHONPATH="$work/gen:tests/e2e" "$python" tests/e2e/test_chat_widget.py \
    --bin "$bin" --data-dir "$work/chat-data"
# The citizen's side with Selenium (PyPI) and Debian's chromium-driver: place in line and expected
# wait, keyboard-only start, a closed queue's hours, axe-core in each state, Lighthouse 12 scores
# (npm axe-core and lighthouse@12 under target/e2e-node).
PYTHONPATH="$work/gen:tests/e2e" "$python" tests/e2e/test_citizen.py \
    --bin "$bin" --data-dir "$work/citizen-data"
# Twilio-style webhooks signed by the Python `twilio` package's RequestValidator (pip install twilio).
"$python" tests/e2e/test_twilio_signature.py --bin "$bin" --work "$work/twilio"
# Hostile inputs to every listener (HTTP webhooks, chat, gRPC, SMTP): each refused with a clear
# status, nothing stored, the server healthy, no internal details in any answer.
PYTHONPATH="$work/gen" "$python" tests/e2e/test_hostile_inputs.py \
    --bin "$bin" --data-dir "$work/hostile-data"
# The console (agent desktop) in headless Chromium through Selenium (Debian chromium-driver),
# axe-core injected at each step and Lighthouse 12 scores (npm, on NODE_PATH); screenshots in
# target/e2e-artifacts/console-*.png.
PYTHONPATH="$work/gen:tests/e2e" "$python" tests/e2e/test_console.py \
    --bin "$bin" --data-dir "$work/console-data"
# The supervisor console (wallboard, agents, waiting line, queues, IVR versions, satisfaction) in
# headless Chromium through Selenium, with integrators, agents and Twilio webhooks played at the
# same time; axe-core at each state, Lighthouse 12 on the wallboard, agents and IVR pages;
# screenshots in target/e2e-artifacts/supervisor-*.png.
PYTHONPATH="$work/gen:tests/e2e" "$python" tests/e2e/test_supervisor.py \
    --bin "$bin" --data-dir "$work/supervisor-data"
# Interoperability: jambonz's validator, the twilio library, grpcio-reflection, promtool.
PYTHONPATH="$work/gen" "$python" tests/e2e/test_interop.py \
    --bin "$bin" --work "$work/interop" --validator tests/e2e/jambonz_validate.js
