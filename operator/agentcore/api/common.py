"""Building blocks shared by the TrainingJob and ExportJob API types.

One pydantic model serves both faces of the API: Kubernetes resources use the camelCase aliases
(``nIterations``) and JSON-RPC / REST use the snake_case field names (``n_iterations``).
``model_dump(by_alias=True)`` gives the former, plain ``model_dump()`` the latter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, NamedTuple, Self, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonDict

log = logging.getLogger("agentcore.api")

GROUP = "training.agentcore.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Patterns are RE2-compatible: the apiserver evaluates them with Go's regexp.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONFIG_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
MONEY_PATTERN = r"^\d+(\.\d+)?$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class CelRule(NamedTuple):
    """A CEL validation rule for the CRD's ``x-kubernetes-validations``."""

    rule: str
    message: str
    field_path: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def cel_rules(*rules: CelRule) -> JsonDict:
    """``json_schema_extra`` carrying CEL rules; the CRD generator copies them into the schema.

    Rules about one object have a Python twin (a pydantic validator), so the JSON-RPC API and the
    apiserver reject the same inputs. Transition rules (``oldSelf``) need the stored object: the
    API server, which updates resources through the apiserver, gets them enforced there.
    """
    return {"x-kubernetes-validations": [rule.to_json() for rule in rules]}


IMMUTABLE = "self == oldSelf"

# A cancellation is terminal: once requested, GitOps tools must not be able to quietly revert it.
# Written on the spec so that removing the whole ``cancel`` block is caught too. (A transition
# rule: the apiserver evaluates it on updates only.)
CANCEL_IRREVERSIBLE = CelRule(
    rule="!has(oldSelf.cancel) || !oldSelf.cancel.requested || (has(self.cancel) && self.cancel.requested)",
    message="cancel.requested cannot be reverted once it has been set to true",
    field_path=".cancel",
)


class Phase(StrEnum):
    """Base of lifecycle phases: capitalised as Kubernetes phases are, lower case in the APIs."""

    @property
    def api_value(self) -> str:
        """The APIs' ``status`` value, e.g. ``Running`` -> ``running``."""
        return self.value.lower()

    @classmethod
    def from_api_value(cls, value: str) -> Self:
        return cls(value.capitalize())

    @property
    def is_terminal(self) -> bool:
        return self.value in _TERMINAL_PHASES


_TERMINAL_PHASES = frozenset({"Completed", "Failed", "Cancelled"})


class CamelModel(BaseModel):
    """Base of every API type: camelCase aliases, snake_case names, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_resource(self) -> dict[str, Any]:
        """JSON-ready dict with Kubernetes (camelCase) keys; unset optional fields are left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_api(self) -> dict[str, Any]:
        """JSON-ready dict with JSON-RPC / REST (snake_case) keys."""
        return self.model_dump(mode="json", exclude_none=True)


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_listed(model: type[ModelT], items: Iterable[Mapping[str, Any]]) -> list[ModelT]:
    """Listed resources as models. One the model rejects (written by a newer version, say) is
    skipped with a warning rather than failing everything listed with it."""
    parsed: list[ModelT] = []
    for item in items:
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            meta = item.get("metadata") or {}
            log.warning(
                "skipping %s %s/%s: %s", item.get("kind"), meta.get("namespace"), meta.get("name"), exc
            )
    return parsed


# --- money -------------------------------------------------------------------------------------

_MONEY_INPUT = re.compile(r"^[-+]?\d+(\.\d+)?$")
_CENT = Decimal("0.01")


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):  # bool is an int subclass; True dollars is never meant
        raise ValueError("must be a decimal amount in USD, not a boolean")
    if isinstance(value, float):
        # repr() gives the shortest round-tripping digits: 50.1 -> "50.1", not 50.0999999...
        return Decimal(repr(value))
    if isinstance(value, str):
        if not _MONEY_INPUT.fullmatch(value.strip()):
            raise ValueError('must be a decimal amount in USD such as "12.50"')
        return Decimal(value.strip())
    if isinstance(value, int | Decimal):
        return Decimal(value)
    raise ValueError("must be a decimal amount in USD")


def parse_money(value: object) -> Decimal:
    """Accept a number or a decimal string; return a non-negative Decimal with at least cents."""
    amount = _to_decimal(value)
    if not amount.is_finite():
        raise ValueError("must be a finite amount")
    if amount < 0:
        raise ValueError("must be >= 0")
    amount = abs(amount)  # turns "-0" into "0", which the resource pattern accepts
    # Normalise to at least two decimals ("5" -> "5.00") without dropping finer precision.
    exponent = amount.as_tuple().exponent
    return amount.quantize(_CENT) if isinstance(exponent, int) and exponent > -2 else amount


def format_money(amount: Decimal) -> str:
    """Fixed-point string (never scientific notation), as the resources and the API carry money."""
    return format(amount, "f")


Money = Annotated[
    Decimal,
    PlainValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN}),
]
"""USD amount: Decimal in Python, a decimal string such as ``"12.50"`` in JSON."""

Timestamp = AwareDatetime
"""RFC 3339 timestamp with a timezone; naive datetimes are rejected to avoid ambiguity."""


# --- object metadata -----------------------------------------------------------------------------


class OwnerReference(CamelModel):
    """metav1.OwnerReference: the object that owns this one (garbage collection follows it)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(CamelModel):
    """The parts of metav1.ObjectMeta this project reads or writes; the rest (managedFields, ...)
    is ignored on input. Timestamps stay the apiserver's RFC 3339 strings."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None

    def label(self, key: str) -> str | None:
        return (self.labels or {}).get(key)

    def annotation(self, key: str) -> str | None:
        return (self.annotations or {}).get(key)

    def controller(self) -> OwnerReference | None:
        """The owner reference with controller: true, if any."""
        return next((ref for ref in self.owner_references or () if ref.controller), None)


# --- references and shared spec pieces -----------------------------------------------------------


class KeySelector(CamelModel):
    """Selects one key of a ConfigMap or Secret in the resource's namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the ConfigMap or Secret, in the same namespace as this resource.",
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=CONFIG_KEY_PATTERN,
        description="Key within the ConfigMap or Secret.",
    )


class CancelRequest(CamelModel):
    """Declarative cancellation, so that kubectl and GitOps tools can cancel a job."""

    requested: bool = Field(
        description="Set to true to cancel the job. Cancellation is final: it cannot be set back to false."
    )
    reason: str | None = Field(
        default=None,
        max_length=1024,
        description="Why the job is cancelled; copied into the status and the webhook payload.",
    )


# --- conditions ----------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    """Status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CamelModel):
    """One aspect of the resource's current state, shaped like metav1.Condition."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition in CamelCase, e.g. Running, Succeeded, BudgetExceeded.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Human-readable details about the last transition.",
    )
    last_transition_time: Timestamp = Field(
        description="When the status last changed from one value to another."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation of the resource that this condition was computed from.",
    )


def find_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    """The condition of the given type, or None."""
    return next((c for c in conditions if c.type == type), None)


def set_condition(
    conditions: Sequence[Condition],
    type: str,
    status: ConditionStatus | str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return a new list with the condition added or updated.

    ``lastTransitionTime`` moves only when the status flips, as Kubernetes controllers do, so
    that re-running a reconcile with the same outcome produces an identical status (no patch).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # metav1.Time has second precision; keeping it avoids spurious diffs between reconciles.
    now = now.replace(microsecond=0)
    status = ConditionStatus(status)
    old = find_condition(conditions, type)
    changed_at = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=changed_at,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type else c for c in conditions]
