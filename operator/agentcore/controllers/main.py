"""`agentcore operator`: run the kopf operator against the current kubeconfig or in-cluster.

Every replica runs kopf (its watches stay open: a standby is warm) and a leader elector; only the
process holding the Lease reconciles, and its writes are fenced by the lease (docs/operator-ha.md).
kopf itself runs ``standalone`` (no kopf peering): our handlers write nothing unless leading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

log = logging.getLogger("agentcore.operator")
LOST_LEADERSHIP_EXIT = 3  # the pod restarts and comes back as a standby

# Flag → OperatorConfig field, for the flags that override the environment.
_ELECTION_FLAGS = {
    "lease_name": "lease_name",
    "lease_namespace": "lease_namespace",
    "lease_duration": "lease_duration_seconds",
    "renew_deadline": "renew_deadline_seconds",
    "retry_period": "retry_period_seconds",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, else in-cluster config")
    parser.add_argument("--namespace", action="append", default=[], help="watch only these (repeatable)")
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("AGENTCORE_METRICS_PORT", "0"))
    )
    parser.add_argument("--liveness-port", type=int, default=0, help="serve /healthz on this port")
    parser.add_argument("--log-format", choices=["json", "plain"], default="json")
    parser.add_argument("--verbose", action="store_true")
    election = parser.add_argument_group("leader election (default: $AGENTCORE_LEASE_*, else client-go's)")
    election.add_argument("--lease-name", help="the Lease (default agentcore-operator)")
    election.add_argument("--lease-namespace", help="default: the pod's namespace, else default")
    election.add_argument("--lease-duration", type=int, help="seconds a standby waits (default 15)")
    election.add_argument(
        "--renew-deadline", type=float, help="seconds the leader retries a renew (default 10)"
    )
    election.add_argument("--retry-period", type=float, help="seconds between attempts (default 2)")


def run_operator(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server
    from pydantic import ValidationError

    from agentcore import logs
    from agentcore.controllers.common.config import OperatorConfig

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = os.path.abspath(args.kubeconfig)
    overrides: dict[str, Any] = {
        field: value
        for flag, field in _ELECTION_FLAGS.items()
        if (value := getattr(args, flag, None)) is not None
    }
    if args.namespace:
        overrides["namespaces"] = tuple(args.namespace)
    try:
        config = OperatorConfig.from_env(**overrides)
    except ValidationError as exc:  # name the setting and the rule, without a traceback
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "operator settings"
            print(f"agentcore operator: {where}: {error['msg']}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if args.log_format == "json":  # the project's one log schema, for kopf's records too
        logs.configure("DEBUG" if args.verbose else "INFO")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="0.0.0.0")
    import agentcore.controllers.exportjob.handlers
    import agentcore.controllers.leader.handlers
    import agentcore.controllers.trainingjob.handlers  # noqa: F401 - registers the handlers

    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    return asyncio.run(_operate(config, liveness))


async def _operate(config: Any, liveness: str | None) -> int:
    import kopf

    from agentcore.controllers.leader.elector import LeaderElector, lease_namespace, new_identity, user_agent
    from agentcore.kube import config as kubeconfig
    from agentcore.kube.client import KubeClient

    identity = new_identity()
    kube = KubeClient(
        kubeconfig.load(), timeout=config.renew_deadline_seconds, user_agent=user_agent(identity)
    )
    timing = config.election_timing()
    elector = LeaderElector(
        kube, config.lease_name, lease_namespace(config.lease_namespace), timing, identity
    )
    stop = asyncio.Event()
    # Started before kopf: kopf cancels, on its way out, the tasks that did not exist when it started.
    election = asyncio.create_task(elector.run(), name="leader election")
    election.add_done_callback(lambda _: stop.set())
    try:
        await kopf.operator(
            standalone=True,  # no kopf peering: the Lease decides who reconciles
            clusterwide=not config.namespaces,
            # The platform namespace too: export Jobs run there (controllers/exportjob/children.py).
            namespaces=sorted({*config.namespaces, config.platform_ns()}) if config.namespaces else [],
            liveness_endpoint=liveness,
            memo=kopf.Memo(config=config, leader=elector),
            stop_flag=stop,
        )
    finally:
        election.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await election
        # Normally released by the cleanup handler already (controllers/leader/handlers.py); this
        # covers a kopf that failed before its cleanup. A no-op when not leading.
        await elector.release()
        await elector.kube.close()
    if elector.lost.is_set():
        log.error("lost the leader lease: exiting, to come back as a standby")
        return LOST_LEADERSHIP_EXIT
    return 0
