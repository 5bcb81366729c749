"""`agentcore operator`: run the kopf operator against the current kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import logging
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, else in-cluster config")
    parser.add_argument("--namespace", action="append", default=[], help="watch only these (repeatable)")
    parser.add_argument(
        "--metrics-port", type=int, default=int(os.environ.get("AGENTCORE_METRICS_PORT", "0"))
    )
    parser.add_argument("--liveness-port", type=int, default=0, help="serve /healthz on this port")
    parser.add_argument("--log-format", choices=["json", "plain"], default="json")
    parser.add_argument("--verbose", action="store_true")


def run_operator(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    from agentcore import logs
    from agentcore.controllers.common.config import OperatorConfig

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = os.path.abspath(args.kubeconfig)
    config = OperatorConfig.from_env()
    if args.namespace:
        config = config.model_copy(update={"namespaces": tuple(args.namespace)})
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    if args.log_format == "json":  # the project's one log schema, for kopf's records too
        logs.configure("DEBUG" if args.verbose else "INFO")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="0.0.0.0")
    import agentcore.controllers.exportjob.handlers
    import agentcore.controllers.trainingjob.handlers  # noqa: F401 - registers the handlers

    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    kopf.run(
        standalone=True,  # one replica; the chart's Deployment uses the Recreate strategy
        clusterwide=not config.namespaces,
        namespaces=list(config.namespaces),
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=config),
    )
    return 0
