"""The `agentcore` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from agentcore.server import cli as api_cli
from agentcore_sdk import cli as jobs_cli  # `agentcore jobs` is the SDK's CLI

Handler = Callable[[argparse.Namespace], int]


def _not_yet(what: str, issue: int) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"agentcore {what}: not implemented yet (tracked in issue #{issue})", file=sys.stderr)
        return 2

    return handler


def _cmd_dev(args: argparse.Namespace) -> int:
    from agentcore.devenv.dev import run_dev

    return run_dev(args)


def _cmd_operator(args: argparse.Namespace) -> int:
    from agentcore.controllers.main import run_operator

    return run_operator(args)


def _cmd_trainer(args: argparse.Namespace) -> int:
    from agentcore_trainer.runtime.main import run_trainer

    return run_trainer(args)


def _cmd_setup(args: argparse.Namespace) -> int:
    from agentcore.devenv.dev import run_setup

    return run_setup(args)


def _cmd_datasets_generate(args: argparse.Namespace) -> int:
    try:
        from agentcore_trainer.datasets import write_dataset
    except ImportError:
        return _not_yet("datasets generate", 3)(args)
    write_dataset(args.n, args.seed, args.out, args.held_out, args.held_out_fraction)
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from agentcore.auth.tokens import PERMISSIONS, issue_token

    with open(args.secret_file, encoding="utf-8") as fh:
        secret = fh.read().strip()
    permissions = args.permission or list(PERMISSIONS)
    print(issue_token(secret, args.sub, permissions, args.namespace or ["*"], args.role, args.ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentcore", description="AgentCore Training: GRPO operator")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole system on this machine")
    dev.add_argument("--state-dir", default="./.agentcore", help="where kubeconfig, token, logs live")
    dev.add_argument("--postgres", action="store_true", help="also start a local PostgreSQL")
    dev.add_argument("--s3", action="store_true", help="also start a local S3 server (MinIO)")
    dev.add_argument("--node-name", default="agentcore-dev")
    dev.add_argument("--once", action="store_true", help="start, report, then stop (for smoke tests)")
    dev.add_argument("--examples", action="store_true", help="apply examples/trainingjob.yaml once up")
    dev.add_argument("--api-port", type=int, default=8080, help="API server port (0: any free port)")
    dev.set_defaults(func=_cmd_dev)

    setup = sub.add_parser("setup", help="build/cache the control-plane and MinIO binaries")
    setup.add_argument("--no-minio", action="store_true")
    setup.set_defaults(func=_cmd_setup)

    operator = sub.add_parser("operator", help="run the operator")
    from agentcore.controllers.main import add_arguments

    add_arguments(operator)
    operator.set_defaults(func=_cmd_operator)
    api = sub.add_parser("api", help="run the API server")
    api_cli.add_arguments(api)
    api.set_defaults(func=api_cli.run)
    jobs_cli.add_parser(sub)
    trainer = sub.add_parser("trainer", help="trainer entry point (trainer pods, or standalone)")
    from agentcore_trainer.runtime.arguments import add_arguments as add_trainer_arguments

    add_trainer_arguments(trainer)
    trainer.set_defaults(func=_cmd_trainer)
    exporter = sub.add_parser("exporter", help="export entry point (export pods)")
    from agentcore.exports import cli as exporter_cli

    exporter_cli.add_arguments(exporter)
    exporter.set_defaults(func=exporter_cli.run)

    token = sub.add_parser("token", help="mint an HS256 API token (e.g. with the chart's JWT secret)")
    token.add_argument("--secret-file", required=True, help="file holding the HS256 secret")
    token.add_argument("--sub", required=True, help="the caller's identity")
    token.add_argument("--namespace", action="append", help="tenant namespace (repeatable; default all)")
    token.add_argument("--permission", action="append", help="e.g. training:view (repeatable; default all)")
    token.add_argument("--role", action="append", default=[], help="e.g. admin (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=_cmd_token)

    datasets = sub.add_parser("datasets", help="built-in datasets")
    dsub = datasets.add_subparsers(dest="datasets_command", required=True)
    gen = dsub.add_parser("generate", help="write N TrainingQuery objects as a JSON array")
    gen.add_argument("--n", type=int, required=True)
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", default=None, help="file (default: stdout)")
    gen.add_argument(
        "--held-out",
        default=None,
        metavar="FILE",
        help="also split off a held-out evaluation set into FILE (see --held-out-fraction)",
    )
    gen.add_argument("--held-out-fraction", type=float, default=0.2)
    gen.set_defaults(func=_cmd_datasets_generate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
