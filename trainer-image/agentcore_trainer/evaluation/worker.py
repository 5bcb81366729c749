"""The evaluation worker: one `training.evaluate` in its own process.

    python -m agentcore_trainer.evaluation.worker < request.json > result.json

The request is one JSON object: ``config`` (GRPOConfig, snake_case), ``queries`` (TrainingQuery
list), ``checkpoint_id`` and ``checkpoint_path`` (a file holding the saved trainer state). The
result body goes to stdout as JSON; exit code 0. A bad request or a failed evaluation exits 1 with
``{"error": "..."}`` on stdout. The API server starts this with a scrubbed environment and reads
the checkpoint for it, so user reward functions run with no credentials at all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from agentcore.api.training import GRPOConfig, TrainingQuery
from agentcore_trainer.evaluation.checkpoint import evaluate_state


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: GRPOConfig
    queries: list[TrainingQuery]
    checkpoint_id: str
    checkpoint_path: Path


def run(raw: str) -> tuple[int, dict[str, Any]]:
    try:
        request = EvaluationRequest.model_validate_json(raw)
    except ValidationError as exc:
        return 1, {"error": f"bad evaluation request: {exc.errors(include_url=False)[0]['msg']}"}
    try:
        blob = request.checkpoint_path.read_bytes()
        queries = [q.to_api() for q in request.queries]
        return 0, evaluate_state(blob, request.checkpoint_id, request.config, queries)
    except (OSError, ValueError) as exc:
        return 1, {"error": f"{type(exc).__name__}: {exc}"}


def main() -> int:
    code, body = run(sys.stdin.read())
    sys.stdout.write(json.dumps(body))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
