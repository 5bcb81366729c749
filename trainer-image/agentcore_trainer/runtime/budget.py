"""The budget guard: refuses an iteration whose projected cost would pass the budget and records
the 75%/90% warnings once each. Prices and metering are the shared cost model (agentcore.cost)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

WARN_THRESHOLDS = (75, 90)


@dataclass
class BudgetGuard:
    """Refuses an iteration whose projected cost would pass the budget; warns once per threshold."""

    budget: Decimal
    prior_estimate: Decimal  # cost of one iteration before any was measured
    warned: set[int] = field(default_factory=set)
    _iteration_costs: list[Decimal] = field(default_factory=list)

    def record(self, iteration_cost: Decimal) -> None:
        self._iteration_costs.append(iteration_cost)

    def projected_next(self) -> Decimal:
        if not self._iteration_costs:
            return self.prior_estimate
        recent = self._iteration_costs[-5:]
        # The larger of the recent mean and the last one: cost per iteration drifts as policies change.
        return max(sum(recent, Decimal(0)) / len(recent), recent[-1])

    def allows_next(self, spent: Decimal) -> bool:
        return spent + self.projected_next() <= self.budget

    def new_warnings(self, spent: Decimal) -> list[int]:
        if self.budget <= 0:
            return []
        used = spent / self.budget * 100
        fresh = [t for t in WARN_THRESHOLDS if used >= t and t not in self.warned]
        self.warned.update(fresh)
        return fresh

    def remaining_percent(self, spent: Decimal) -> float:
        if self.budget <= 0:
            return 0.0
        return float(max(Decimal(0), (self.budget - spent) / self.budget * 100).quantize(Decimal("0.1")))
