"""The Training API's JSON-RPC 2.0 layer: framing and dispatch, the training.* methods over
TrainingJob resources, the watch-backed job cache, rate limits and the OpenRPC description."""

from agentcore.server.jsonrpc.dispatch import CallContext, Dispatcher, Method, Outcome
from agentcore.server.jsonrpc.errors import RpcError
from agentcore.server.jsonrpc.evaluation import EvaluationError, Evaluator, UnconfiguredEvaluator
from agentcore.server.jsonrpc.jobcache import JobCache, KubeApi
from agentcore.server.jsonrpc.training import TrainingOptions, TrainingService
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit, RateLimiter

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
