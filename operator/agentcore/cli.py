"""The `agentcore` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from agentcore.server import cli as api_cli
from agentcore_sdk import cli as jobs_cli  # `agentcore jobs` is the SDK's CLI

Handler = Callable[[argparse.Namespace], int]


PLUGIN_GROUP = "agentcore.commands"


def add_plugin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Subcommands of other packages (the trainer's `trainer` and `datasets`), by entry point.

    The trainer registers itself here, so the control plane never imports the trainer package and
    an image without the trainer simply has no `agentcore trainer`.
    """
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(sub)


def _cmd_dev(args: argparse.Namespace) -> int:
    from agentcore.devenv.dev import run_dev

    return run_dev(args)


def _cmd_operator(args: argparse.Namespace) -> int:
    from agentcore.controllers.main import run_operator

    return run_operator(args)


def _cmd_setup(args: argparse.Namespace) -> int:
    from agentcore.devenv.dev import run_setup

    return run_setup(args)


def _cmd_token(args: argparse.Namespace) -> int:
    from agentcore.auth.tokens import PERMISSIONS, issue_token

    with open(args.secret_file, encoding="utf-8") as fh:
        secret = fh.read().strip()
    permissions = args.permission or list(PERMISSIONS)
    print(issue_token(secret, args.sub, permissions, args.namespace or ["*"], args.role, args.ttl))
    return 0


def _cmd_kubectl(args: argparse.Namespace) -> int:
    from agentcore.devenv.kubectl import run

    return run(args.kubectl_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentcore", description="AgentCore Training: GRPO operator")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole system on this machine")
    dev.add_argument("--state-dir", default="./.agentcore", help="where kubeconfig, token, logs live")
    dev.add_argument("--postgres", action="store_true", help="also start a local PostgreSQL")
    dev.add_argument("--s3", action="store_true", help="also start a local S3 server (MinIO)")
    dev.add_argument("--node-name", default="agentcore-dev")
    dev.add_argument(
        "--runtime",
        choices=("node-agent", "containerd"),
        default="node-agent",
        help="node-agent: containers as host processes (fast, the default); containerd: a real "
        "kubelet + containerd node that runs images (root; see README, 'The real node')",
    )
    dev.add_argument("--once", action="store_true", help="start, report, then stop (for smoke tests)")
    dev.add_argument("--examples", action="store_true", help="apply examples/trainingjob.yaml once up")
    dev.add_argument("--api-port", type=int, default=8080, help="API server port (0: any free port)")
    dev.set_defaults(func=_cmd_dev)

    setup = sub.add_parser("setup", help="build/cache the control-plane, real-node and MinIO binaries")
    setup.add_argument("--no-minio", action="store_true")
    setup.add_argument("--no-node", action="store_true", help="skip kubelet, kube-proxy, kube-scheduler")
    setup.add_argument("--quiet", action="store_true", help="print only builds and errors (bootstrap)")
    setup.set_defaults(func=_cmd_setup)

    kubectl = sub.add_parser(
        "kubectl",
        help="run the cached kubectl with $KUBECONFIG or ./.agentcore/kubeconfig",
        add_help=False,  # --help goes to kubectl
        prefix_chars="\0",  # every argument, options included, is kubectl's
    )
    kubectl.add_argument("kubectl_args", nargs=argparse.REMAINDER)
    kubectl.set_defaults(func=_cmd_kubectl)

    from agentcore import kubectl_plugin
    from agentcore.storage import migrate_cli

    kubectl_plugin.add_parser(sub)
    migrate = sub.add_parser("migrate", help="apply the database schema migrations (as the chart's hook)")
    migrate_cli.add_arguments(migrate)
    migrate.set_defaults(func=migrate_cli.run)

    operator = sub.add_parser("operator", help="run the operator")
    from agentcore.controllers.main import add_arguments

    add_arguments(operator)
    operator.set_defaults(func=_cmd_operator)
    api = sub.add_parser("api", help="run the API server")
    api_cli.add_arguments(api)
    api.set_defaults(func=api_cli.run)
    jobs_cli.add_parser(sub)
    exporter = sub.add_parser("exporter", help="export entry point (export pods)")
    from agentcore.exports import cli as exporter_cli

    exporter_cli.add_arguments(exporter)
    exporter.set_defaults(func=exporter_cli.run)

    check = sub.add_parser("check", help="probe a running API server (the chart's `helm test`)")
    from agentcore.server import check as check_cli

    check_cli.add_arguments(check)
    check.set_defaults(func=check_cli.run)

    token = sub.add_parser("token", help="mint an HS256 API token (e.g. with the chart's JWT secret)")
    token.add_argument("--secret-file", required=True, help="file holding the HS256 secret")
    token.add_argument("--sub", required=True, help="the caller's identity")
    token.add_argument("--namespace", action="append", help="tenant namespace (repeatable; default all)")
    token.add_argument("--permission", action="append", help="e.g. training:view (repeatable; default all)")
    token.add_argument("--role", action="append", default=[], help="e.g. admin (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=_cmd_token)

    add_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
