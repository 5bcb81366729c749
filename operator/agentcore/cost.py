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
    # Small open models served on your own hardware: token prices of hosted small models; the
    # hardware itself is priced by policy.devicePricePerHourUsd.
    "smollm2-135m": Price(Decimal("0.00002"), Decimal("0.00004")),
    "transformers": Price(Decimal("0.0001"), Decimal("0.0002")),
}


def price_for_model(name: str) -> Price:
    """The price of a model by name: the longest table key its lower-cased name starts with."""
    lowered = name.lower()
    keys = sorted((k for k in DEFAULT_PRICES if lowered.startswith(k)), key=len, reverse=True)
    return DEFAULT_PRICES[keys[0]] if keys else DEFAULT_PRICES["transformers"]


def compute_cost(seconds: float, price_per_hour: Decimal) -> Decimal:
    """Device time priced per hour (exact Decimal arithmetic on the measured seconds)."""
    return Decimal(str(round(seconds, 6))) * price_per_hour / 3600


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

    def add(self, input_tokens: int, output_tokens: int, extra: Decimal = Decimal("0")) -> Decimal:
        """Meter tokens (and `extra` USD, e.g. device time); returns what this call cost."""
        cost = self.cost_of(input_tokens, output_tokens) + extra
        self.total += cost
        return cost
