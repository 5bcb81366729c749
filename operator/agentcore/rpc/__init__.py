"""The Training API's JSON-RPC 2.0 layer: framing and dispatch, the training.* methods over
TrainingJob resources, the watch-backed job cache, rate limits and the OpenRPC description."""

from agentcore.rpc.dispatch import CallContext, Dispatcher, Method, Outcome
from agentcore.rpc.errors import RpcError
from agentcore.rpc.evaluation import EvaluationError, Evaluator, UnconfiguredEvaluator
from agentcore.rpc.jobcache import JobCache, KubeApi
from agentcore.rpc.ratelimit import SPEC_LIMITS, RateLimit, RateLimiter
from agentcore.rpc.training import TrainingOptions, TrainingService

__all__ = [
    "SPEC_LIMITS",
    "CallContext",
    "Dispatcher",
    "EvaluationError",
    "Evaluator",
    "JobCache",
    "KubeApi",
    "Method",
    "Outcome",
    "RateLimit",
    "RateLimiter",
    "RpcError",
    "TrainingOptions",
    "TrainingService",
    "UnconfiguredEvaluator",
]
