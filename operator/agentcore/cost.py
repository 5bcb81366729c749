"""The cost model, shared by the trainer (metering) and the API server (the -40001 check): USD as
Decimal from token counts and a per-model price table.

The built-in environment's default price is calibrated to the Training API reference's example
(docs/spec/training-api-reference.md): 500 iterations x batch 16 x 8 trajectories per query cost
about $40, i.e. about $0.000625 per trajectory (its status shows $12.50 at iteration 150).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Price:
    """USD per 1,000 tokens."""

    input_per_1k: Decimal
    output_per_1k: Decimal


# Per model. "builtin-cpu" is the built-in policy/environment; its tokens are estimated from text.
DEFAULT_PRICES: dict[str, Price] = {
    # ~300 input and ~57 output tokens per trajectory under the initial policy -> ~$0.000625 each.
    "builtin-cpu": Price(Decimal("0.0012"), Decimal("0.0048")),
}


# The spec's example: ~$40 for 500 iterations x 16 queries x 8 trajectories.
PRIOR_COST_PER_TRAJECTORY = Decimal("0.000625")


def estimate_iteration_cost(batch_size: int, trajectories_per_query: int) -> Decimal:
    """Cost of one iteration before any was measured (the API's -40001 check uses it too)."""
    return PRIOR_COST_PER_TRAJECTORY * batch_size * trajectories_per_query


def money(value: Decimal) -> str:
    """Two-decimal string, as the API shows money."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class CostMeter:
    price: Price
    total: Decimal = Decimal("0")

    def cost_of(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (
            Decimal(input_tokens) * self.price.input_per_1k
            + Decimal(output_tokens) * self.price.output_per_1k
        ) / 1000

    def add(self, input_tokens: int, output_tokens: int) -> Decimal:
        cost = self.cost_of(input_tokens, output_tokens)
        self.total += cost
        return cost
