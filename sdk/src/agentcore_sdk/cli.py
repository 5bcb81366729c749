"""``agentcore jobs list|status|cancel|export|wait`` (also ``agentcore-jobs ...``): the Training API
from the shell.

The server and token come from ``--api-url`` / ``--token``, else $AGENTCORE_API_URL /
$AGENTCORE_TOKEN, else the files ``api-url`` and ``token`` that ``agentcore dev`` writes into its
state directory (``--state-dir``, default ./.agentcore).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agentcore_sdk.client import TrainingClient
from agentcore_sdk.errors import ApiError

STATUSES = ("queued", "running", "completed", "failed", "cancelled")


def add_parser(sub: Any) -> None:
    """Register ``jobs`` on the console script's subparsers."""
    jobs = sub.add_parser("jobs", help="training jobs through the API server")
    jobs.add_argument(
        "--api-url", default=None, help="API server URL (default: $AGENTCORE_API_URL, STATE/api-url)"
    )
    jobs.add_argument("--token", default=None, help="bearer token (default: $AGENTCORE_TOKEN, STATE/token)")
    jobs.add_argument(
        "--state-dir", default="./.agentcore", help="where `agentcore dev` wrote api-url and token"
    )
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)

    lst = jsub.add_parser("list", help="list jobs, newest first")
    lst.add_argument("--agent-id")
    lst.add_argument("--status", choices=STATUSES)
    lst.add_argument("--namespace")
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--json", action="store_true", help="print the API's JSON")
    lst.set_defaults(jobs_func=_list)

    status = jsub.add_parser("status", help="status and metrics of a job")
    status.add_argument("job_id")
    status.set_defaults(jobs_func=_status)

    cancel = jsub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job_id")
    cancel.add_argument("--reason")
    cancel.set_defaults(jobs_func=_cancel)

    export = jsub.add_parser("export", help="write a job's trajectories as JSON Lines")
    export.add_argument("job_id")
    export.add_argument("--success-only", action="store_true")
    export.add_argument("--min-reward", type=float)
    export.add_argument("--page-size", type=int, default=1000)
    export.add_argument("--out", help="file (default: stdout)")
    export.set_defaults(jobs_func=_export)

    wait = jsub.add_parser("wait", help="wait for a job to finish, with a progress bar")
    wait.add_argument("job_id")
    wait.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    wait.add_argument("--no-progress", action="store_true")
    wait.set_defaults(jobs_func=_wait)

    jobs.set_defaults(func=run)


def main(argv: list[str] | None = None) -> None:
    """The ``agentcore-jobs`` console script: ``agentcore jobs`` without the operator installed."""
    parser = argparse.ArgumentParser(prog="agentcore-jobs")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["jobs", *(sys.argv[1:] if argv is None else argv)])
    sys.exit(args.func(args))


def run(args: argparse.Namespace) -> int:
    try:
        with TrainingClient(_api_url(args), _token(args)) as client:
            return int(args.jobs_func(client, args))
    except ApiError as exc:
        print(f"agentcore jobs: error {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, TimeoutError) as exc:
        print(f"agentcore jobs: {exc}", file=sys.stderr)
        return 1


def _from_state(args: argparse.Namespace, name: str) -> str | None:
    path = Path(args.state_dir) / name
    return path.read_text().strip() if path.is_file() else None


def _api_url(args: argparse.Namespace) -> str:
    url = args.api_url or os.environ.get("AGENTCORE_API_URL") or _from_state(args, "api-url")
    if not url:
        raise ValueError("no API server: pass --api-url, set AGENTCORE_API_URL, or run `agentcore dev`")
    return url


def _token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("AGENTCORE_TOKEN") or _from_state(args, "token")


def _print_json(value: BaseModel) -> None:
    print(value.model_dump_json(indent=2))


def _list(client: TrainingClient, args: argparse.Namespace) -> int:
    page = client.list_jobs(args.agent_id, args.status, args.limit, namespace=args.namespace)
    if args.json:
        _print_json(page)
        return 0
    rows = [("JOB ID", "NAMESPACE", "NAME", "AGENT", "STATUS", "PROGRESS", "COST")]
    for job in page.jobs:
        rows.append(
            (
                str(job.job_id),
                job.namespace,
                job.name,
                job.agent_id,
                job.status,
                f"{job.progress_percent:.1f}%",
                f"${job.cost_usd}/${job.budget_usd}",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if page.has_more:
        print(f"... {page.total_count} jobs in all; use --limit to see more", file=sys.stderr)
    return 0


def _status(client: TrainingClient, args: argparse.Namespace) -> int:
    _print_json(client.get_status(args.job_id))
    return 0


def _cancel(client: TrainingClient, args: argparse.Namespace) -> int:
    _print_json(client.cancel(args.job_id, args.reason))
    return 0


def _export(client: TrainingClient, args: argparse.Namespace) -> int:
    out = open(args.out, "w") if args.out else sys.stdout  # noqa: SIM115 - stdout must not be closed
    count = 0
    try:
        for trajectory in client.iter_trajectories(
            args.job_id, args.success_only, args.min_reward, args.page_size
        ):
            out.write(trajectory.model_dump_json() + "\n")
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{count} trajectories", file=sys.stderr)
    return 0


def _wait(client: TrainingClient, args: argparse.Namespace) -> int:
    final = client.wait(args.job_id, args.poll, args.timeout, progress=not args.no_progress)
    _print_json(final)
    return 0 if final.status == "completed" else 1
