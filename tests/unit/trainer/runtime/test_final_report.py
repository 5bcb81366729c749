"""The trainer's last report carries the whole progress, not only the outcome."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from agentcore.api.training import GRPOConfig, TrainerState
from agentcore.cost import DEFAULT_PRICES, CostMeter
from agentcore_trainer.runtime.budget import BudgetGuard
from agentcore_trainer.runtime.run import RunIdentity, RunInputs, TrainingRun


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[dict[str, Any], bool]] = []

    async def report(self, status: dict[str, Any], final: bool = False) -> None:
        self.reports.append((status, final))


async def test_the_final_report_repeats_the_iteration_reached() -> None:
    # If iteration 40's own report was lost (an apiserver restart), the outcome still brings it.
    run = TrainingRun(
        RunIdentity(job_id="j", name="job", namespace="ns", agent_id="a"),
        RunInputs(GRPOConfig(n_iterations=40), training=[]),
        repo=None,  # type: ignore[arg-type]
        checkpoints=SimpleNamespace(manifests=lambda: []),  # type: ignore[arg-type]
        sink=Sink(),
        stop=None,  # type: ignore[arg-type]
    )
    run.meter = CostMeter(DEFAULT_PRICES["builtin-cpu"], Decimal("0.02"))
    run.guard = BudgetGuard(Decimal("1"), Decimal("0.01"))
    run.last_checkpoint = SimpleNamespace(iteration=40)  # type: ignore[assignment]
    await run._finish(SimpleNamespace(iteration=40), TrainerState.COMPLETED)  # type: ignore[arg-type]
    ((status, final),) = run.sink.reports  # type: ignore[attr-defined]
    assert final and status["trainer"]["state"] == "Completed"
    assert status["currentIteration"] == 40 and status["progressPercent"] == 100.0
