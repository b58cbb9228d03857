"""Schemathesis against the gateway's own OpenAPI schema on the real stack: generated bodies
(generation routes exercised for real, with ``engine`` set and short outputs) get no 5xx.
Loading and unloading are left out: their bad inputs are in test_bad_inputs, and a generated
unload would only make every later request load its model again."""

from __future__ import annotations

import zlib
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.e2e.conftest import Stack
from tests.faults.conftest import DEMO, ENGINES, FIGURES

# Left out: load and unload (they would change the stack under the other tests), and /ready,
# which takes no input and whose 503 is its answer while no model is loaded.
SCHEMA = schemathesis.openapi.from_dict(create_app(GatewaySettings()).openapi()).exclude(
    path_regex="^/v1/models/(load|unload)$|^/ready$"
)
EXAMPLES = 25  # per operation
MAX_TOKENS = 16
GENERATING = ("completions", "/v1/responses", "/v1/messages")
SEEN = {"requests": 0, "server_errors": 0, "generated": 0}


def steer(body: Any, path: str = "") -> None:
    """Short outputs, an engine, and the demo model when the body names none."""
    if not isinstance(body, dict):
        return
    for field in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(body.get(field), int) and body[field] > MAX_TOKENS:
            body[field] = MAX_TOKENS
    responses = path == "/v1/responses"
    if not (responses or "prompt" in body or "messages" in body):
        return
    # Without a bound the random model writes to the end of its 8k context: seconds on a quiet
    # machine, past the test's timeout on a busy one, and nothing more to learn.
    if responses and body.get("max_output_tokens") is None:
        body["max_output_tokens"] = MAX_TOKENS
    elif not responses and body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = MAX_TOKENS
    body.setdefault("model", DEMO)
    if body.get("engine") is None:
        body["engine"] = ENGINES[zlib.crc32(repr(body).encode()) % len(ENGINES)]


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, fault_stack: Stack) -> None:
    steer(case.body, case.path)
    response = case.call(base_url=fault_stack.url, timeout=300)
    SEEN["requests"] += 1
    SEEN["server_errors"] += response.status_code >= 500
    SEEN["generated"] += response.status_code == 200 and case.path.endswith(GENERATING)
    case.validate_response(response, checks=[not_a_server_error])


def test_report_schemathesis(fault_stack: Stack) -> None:
    operations = len(list(SCHEMA.get_all_operations()))
    FIGURES.append(
        f"schemathesis: {SEEN['requests']} requests over {operations} operations ({SEEN['generated']} "
        f"completions generated), {SEEN['server_errors']} answered 5xx"
    )
    assert SEEN["server_errors"] == 0
