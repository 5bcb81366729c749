"""The trainer reports its exact cost: the operator compares it with the budget."""

from __future__ import annotations

from decimal import Decimal

from agentcore.api.training import TrainingJobStatus
from agentcore.cost import DEFAULT_PRICES, CostMeter
from agentcore_trainer.runtime.budget import BudgetGuard
from agentcore_trainer.runtime.run import TrainingRun


def budget_fields(total: str, budget: str = "0.10") -> dict:
    run = object.__new__(TrainingRun)  # only the meter and the guard are read
    run.meter = CostMeter(DEFAULT_PRICES["builtin-cpu"], Decimal(total))
    run.guard = BudgetGuard(Decimal(budget), Decimal("0.01"))
    return run._budget_fields()


def test_cost_is_reported_exactly_not_rounded_to_cents():
    assert budget_fields("0.0954732")["costUsd"] == "0.0954732"


def test_reported_cost_is_a_valid_status_amount():
    for total in ("0", "0.5", "0.0954732", "12.125"):
        status = TrainingJobStatus.model_validate({"costUsd": budget_fields(total)["costUsd"]})
        assert status.cost_usd == Decimal(total)
    assert budget_fields("0")["costUsd"] == "0.00"
