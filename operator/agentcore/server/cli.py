"""``agentcore api``: flags and entry point. Only argparse at import time: the console script builds
every subcommand's parser on each start."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=None,
        help="address to listen on (default 0.0.0.0; 127.0.0.1 with --insecure-disable-auth)",
    )
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics without auth on this port too (default none: admin token on --port)",
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig (default $KUBECONFIG, else in-cluster)"
    )
    parser.add_argument(
        "--database-url", default=None, help="trajectory DB (default $AGENTCORE_DATABASE_URL)"
    )
    parser.add_argument(
        "--object-store",
        default=None,
        help="s3://bucket/prefix or file:///dir (default $AGENTCORE_OBJECT_STORE)",
    )
    parser.add_argument(
        "--jwt-secret-file", default=None, help="HS256 secret (default $AGENTCORE_JWT_SECRET)"
    )
    parser.add_argument("--jwt-public-key-file", default=None, help="RS256 public key (PEM)")
    parser.add_argument("--jwks-file", default=None, help="RS256 keys as a JWKS document")
    parser.add_argument("--jwt-audience", default=None, help="expected aud claim (default agentcore-api)")
    parser.add_argument("--jwt-issuer", default=None, help="expected iss claim (default: not checked)")
    parser.add_argument(
        "--insecure-disable-auth",
        action="store_true",
        help="accept every request as an admin of every namespace (local development only)",
    )
    parser.add_argument("--namespace", default=None, help="watch only this namespace (default: all)")
    parser.add_argument("--default-namespace", default=None, help="namespace for tokens naming none")
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="METHOD=LIMIT[/SECONDS]",
        help="override a rate limit, e.g. training.get_status=200/60 or default=500 (repeatable)",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=None, help="request body limit (default 16 MiB)"
    )
    parser.add_argument("--cancel-wait-seconds", type=float, default=None, help="how long cancel waits (30)")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from agentcore import logs
    from agentcore.server.app import create_app
    from agentcore.server.ratelimit import parse_limits
    from agentcore.server.settings import Settings, read_secret

    logs.configure(args.log_level)
    try:
        settings = Settings.from_env(
            host=listen_host(args),
            port=args.port,
            metrics_port=args.metrics_port,
            kubeconfig=args.kubeconfig,
            database_url=args.database_url,
            object_store=args.object_store,
            jwt_secret=read_secret(args.jwt_secret_file) if args.jwt_secret_file else None,
            jwt_public_key_file=args.jwt_public_key_file,
            jwks_file=args.jwks_file,
            jwt_audience=args.jwt_audience,
            jwt_issuer=args.jwt_issuer,
            insecure_disable_auth=args.insecure_disable_auth or None,
            watch_namespace=args.namespace,
            default_namespace=args.default_namespace,
            max_body_bytes=args.max_body_bytes,
            cancel_wait_seconds=args.cancel_wait_seconds,
        )
        if args.rate_limit:
            settings = settings.with_rate_limits(parse_limits(args.rate_limit))
        app = create_app(settings, freeze_heap=True)  # this process is the server's own
    except (OSError, ValueError) as exc:
        print(f"agentcore api: {exc}", file=sys.stderr)
        return 2
    # access_log=None: the app writes its own structured access log.
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None)
    return 0


def listen_host(args: argparse.Namespace) -> str | None:
    """An unauthenticated server is reachable from this machine only, unless a host is named."""
    if args.host is None and args.insecure_disable_auth:
        return "127.0.0.1"
    return str(args.host) if args.host is not None else None
