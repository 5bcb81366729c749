"""`agentcore check`: probe a running API server from outside, as a user's client would (the Helm
chart's `helm test` hook runs it in a pod against the API Service).

Each check is one HTTP request and what its answer must be; none needs a token, so the probe holds
no credential: health and readiness, the Exports API's OpenAPI document, and both APIs refusing an
anonymous caller in their documented shapes (which proves the routes and the auth layer answer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_BODY = 1 << 20  # answers of these routes are small; a larger one is itself a failure


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Check:
    name: str
    method: str
    path: str
    expect: Callable[[Answer], str | None]  # None: as expected; else what is wrong
    body: bytes | None = None


def _status(code: int) -> Callable[[Answer], str | None]:
    return lambda a: None if a.status == code else f"HTTP {a.status}, want {code}"


def _openapi(a: Answer) -> str | None:
    if a.status != 200:
        return f"HTTP {a.status}, want 200"
    doc = a.json()
    return None if doc.get("openapi", "").startswith("3.") and doc.get("paths") else "not an OpenAPI document"


def _rpc_refused(want: int) -> Callable[[Answer], str | None]:
    def expect(a: Answer) -> str | None:
        code = (a.json().get("error") or {}).get("code")
        ok = a.status == 401 and code == want
        return None if ok else f"HTTP {a.status} error {code}, want 401 error {want}"

    return expect


def _rest_refused(a: Answer) -> str | None:
    code = a.json().get("error_code")
    return None if a.status == 401 and code == "UNAUTHORIZED" else f"HTTP {a.status} {code}, want 401"


_RPC_CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "training.list_jobs", "params": {}}).encode()


def checks() -> tuple[Check, ...]:
    # Imported here: the server's modules take seconds to load, and every `agentcore` command
    # builds this command's parser.
    from agentcore.server.app import RPC_PATH
    from agentcore.server.jsonrpc.errors import UNAUTHORIZED
    from agentcore.server.rest.openapi import BASE, OPENAPI_PATH

    return (
        Check("liveness", "GET", "/healthz", _status(200)),
        Check("readiness (watch cache synced)", "GET", "/readyz", _status(200)),
        Check("Exports API OpenAPI document", "GET", OPENAPI_PATH, _openapi),
        Check("JSON-RPC refuses an anonymous call", "POST", RPC_PATH, _rpc_refused(UNAUTHORIZED), _RPC_CALL),
        Check("Exports REST refuses an anonymous call", "GET", BASE, _rest_refused),
    )


def fetch(url: str, method: str, body: bytes | None, timeout: float) -> Answer:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(MAX_BODY))


def run_checks(base_url: str, timeout: float = 10.0) -> list[tuple[Check, str | None]]:
    results = []
    for check in checks():
        try:
            answer = fetch(base_url.rstrip("/") + check.path, check.method, check.body, timeout)
            problem = check.expect(answer)
        except (OSError, ValueError) as exc:  # unreachable, timed out, or not JSON
            problem = f"{type(exc).__name__}: {exc}"
        results.append((check, problem))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("AGENTCORE_API_URL"),
        help="the API server's base URL (default: $AGENTCORE_API_URL)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")


def run(args: argparse.Namespace) -> int:
    if not args.url:
        print("agentcore check: --url or AGENTCORE_API_URL is required", file=sys.stderr)
        return 2
    results = run_checks(args.url, args.timeout)
    for check, problem in results:
        print(f"{'ok  ' if problem is None else 'FAIL'} {check.name}" + (f": {problem}" if problem else ""))
    return 0 if all(problem is None for _, problem in results) else 1
