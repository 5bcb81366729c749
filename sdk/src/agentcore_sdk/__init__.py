"""Python clients of the AgentCore Training (JSON-RPC) and Exports (REST) APIs over httpx:
``TrainingClient`` (sync) and ``AsyncTrainingClient`` (asyncio), typed results in
``agentcore_sdk.models``, typed errors in ``agentcore_sdk.errors``."""

from agentcore_sdk._core import TERMINAL
from agentcore_sdk.client import AsyncTrainingClient, TrainingClient
from agentcore_sdk.errors import ApiError, ExportsApiError, TrainingApiError
from agentcore_sdk.progress import ProgressBar

__all__ = [
    "TERMINAL",
    "ApiError",
    "AsyncTrainingClient",
    "ExportsApiError",
    "ProgressBar",
    "TrainingApiError",
    "TrainingClient",
]
