"""Compute resources as Kubernetes spells them: quantities and core/v1 ResourceRequirements.

A TrainingJob's ``spec.resources`` (and JSON-RPC's ``config.resources``) is the trainer container's
ResourceRequirements, per worker. Parsed here rather than passed through as a free-form object so a
typo (``limit``), a bad quantity (``2 cores``) or requests above limits is refused by the apiserver
or the JSON-RPC API naming the field — not discovered later as a Job the apiserver will not create.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from agentcore.api.common import CamelModel

# Non-negative quantities only (a negative request or limit is never valid): digits with an
# optional fraction, then a binary-SI, decimal-SI or decimal-exponent suffix (k8s Quantity).
QUANTITY_PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$"
_QUANTITY = re.compile(QUANTITY_PATTERN)
_SUFFIXES: dict[str, Decimal] = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** e for s, e in (("n", -9), ("u", -6), ("m", -3), ("k", 3), ("M", 6))},
    **{s: Decimal(10) ** e for s, e in (("G", 9), ("T", 12), ("P", 15), ("E", 18))},
}
# A qualified name (core/v1 ResourceName): cpu, memory, ephemeral-storage, nvidia.com/gpu, ...
RESOURCE_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_RESOURCE_NAME = re.compile(RESOURCE_NAME_PATTERN)
MAX_RESOURCES = 16  # distinct resource names per map: bounds the object (and the CEL cost)

Quantity = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, Field(max_length=64, pattern=QUANTITY_PATTERN)],
    Field(description="A Kubernetes quantity: 2, 500m, 1.5, 4Gi, 1e3."),
]


def parse_quantity(value: int | str) -> Decimal:
    """The quantity's value in base units (cores, bytes, devices)."""
    text = str(value)
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 2, 500m, 4Gi, 1e3)")
    number, suffix = match.group(1), match.group(3) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * Decimal(10) ** int(suffix[1:])
        return Decimal(number) * _SUFFIXES.get(suffix, Decimal(1))
    except InvalidOperation as exc:  # an exponent beyond Decimal's range
        raise ValueError(f"{text!r} is out of range") from exc


ResourceList = Annotated[dict[str, Quantity], Field(max_length=MAX_RESOURCES)]


class ResourceRequirements(CamelModel):
    """core/v1 ResourceRequirements of one trainer container (``claims`` is not supported)."""

    requests: ResourceList | None = Field(
        default=None, description="Minimum resources the scheduler reserves, e.g. {cpu: 500m}."
    )
    limits: ResourceList | None = Field(
        default=None,
        description='Maximum resources; extended resources (GPUs) go here, e.g. {"nvidia.com/gpu": 1}.',
    )

    @field_validator("requests", "limits")
    @classmethod
    def _resource_names(cls, value: dict[str, Quantity] | None) -> dict[str, Quantity] | None:
        for name in value or {}:
            if len(name) > 253 or not _RESOURCE_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a resource name (e.g. cpu, memory, nvidia.com/gpu)")
        return value

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceRequirements:
        limits = self.limits or {}
        for name, request in (self.requests or {}).items():
            if name in limits and parse_quantity(request) > parse_quantity(limits[name]):
                raise ValueError(
                    f"requests.{name} ({request}) must be less than or equal to limits.{name} "
                    f"({limits[name]})"
                )
        return self

    def manifest(self) -> dict[str, Any]:
        """The container's ``resources`` as the apiserver expects it."""
        return self.model_dump(by_alias=True, exclude_none=True)
