"""Python clients of the Training API: ``TrainingClient`` (sync, standard library only) and
``AsyncTrainingClient`` (aiohttp, imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentcore.sdk.client import TrainingClient
from agentcore.sdk.common import TERMINAL, ProgressBar, TrainingApiError

if TYPE_CHECKING:
    from agentcore.sdk.aio import AsyncTrainingClient

__all__ = ["TERMINAL", "AsyncTrainingClient", "ProgressBar", "TrainingApiError", "TrainingClient"]


def __getattr__(name: str) -> Any:
    # aiohttp costs a third of a second to import; the sync client and the CLI do not need it.
    if name == "AsyncTrainingClient":
        from agentcore.sdk.aio import AsyncTrainingClient

        return AsyncTrainingClient
    raise AttributeError(name)
