"""The seam between ``training.evaluate`` and whatever runs evaluations.

An :class:`Evaluator` gets the full TrainingJob resource (datasets included), the checkpoint to
evaluate (None: the best one) and optional custom queries (snake_case TrainingQuery dicts), and
returns the spec's result: ``checkpoint_id``, ``metrics`` {success_rate, avg_reward, avg_steps,
tool_accuracy}, ``baseline_comparison``, ``queries_evaluated``, ``evaluation_duration_ms``. It must
not block the event loop (run the work in a process pool or a Kubernetes Job). Raising
:class:`EvaluationError` reports -40004 with its message; any other exception -40004 with a
generic message.
"""

from __future__ import annotations

from typing import Any, Protocol


class EvaluationError(Exception):
    """The evaluation could not run or failed; the message is shown to the caller."""


class Evaluator(Protocol):
    async def evaluate(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]: ...


class UnconfiguredEvaluator:
    """The default until the trainer's evaluation backend is wired in."""

    async def evaluate(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        raise EvaluationError("evaluation backend not configured on this server")
