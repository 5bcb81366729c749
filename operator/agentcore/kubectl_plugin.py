"""``kubectl agentcore`` (console script ``kubectl-agentcore``, also ``agentcore tj``): everyday
verbs on TrainingJobs without hand-written patches.

cancel and suspend/resume are merge patches of ``spec.cancel`` and ``spec.suspend``, exactly what
the README's ``kubectl patch`` lines do; the operator and the trainer react to the spec.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

import aiohttp

from agentcore.api import CancelRequest, TrainingJob
from agentcore.api.labels import TRAININGJOB
from agentcore.devenv.kubectl import default_kubeconfig
from agentcore.kube.client import EVENTS, PODS, TRAININGJOB_RESOURCE, ApiError, KubeClient, Resource
from agentcore.kube.config import ConfigError, load

JSON = dict[str, Any]
RECENT_EVENTS = 10


class Kube(Protocol):
    """The part of KubeClient the plugin uses (tests pass a recording fake)."""

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> JSON: ...
    async def list(self, res: Resource, namespace: str | None = None, **params: Any) -> JSON: ...
    async def patch(self, res: Resource, name: str, body: JSON, namespace: str | None = None) -> JSON: ...


class PluginError(Exception):
    """A failure the user can act on; the message names the object."""


LogReader = Callable[[Kube, str, str, str | None, bool], AsyncIterator[bytes]]


# --- arguments ------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    # SUPPRESS defaults: the options work before and after the verb without overwriting each other.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="default: the context's")
    common.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,
        help="default: $KUBECONFIG, ./.agentcore/kubeconfig, ~/.kube/config, in-cluster",
    )
    return common


def _add_verbs(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="tj_command", required=True, metavar="VERB")
    cancel = verbs.add_parser("cancel", parents=[common], help="cancel (final: checkpoint, then stop)")
    cancel.add_argument("name", metavar="NAME", help="the TrainingJob")
    cancel.add_argument("--reason", help="why; copied into status.cancellation and webhooks")
    cancel.set_defaults(tj_func=cancel_job)
    for verb, text in (("suspend", "stop after a checkpoint"), ("resume", "resume from the checkpoint")):
        sub = verbs.add_parser(verb, parents=[common], help=text)
        sub.add_argument("name", metavar="NAME", help="the TrainingJob")
        sub.set_defaults(tj_func=suspend_job, suspend=verb == "suspend")
    logs = verbs.add_parser("logs", parents=[common], help="the trainer pod's log")
    logs.add_argument("name", metavar="NAME", help="the TrainingJob")
    logs.add_argument("-f", "--follow", action="store_true", help="keep streaming")
    logs.add_argument("-c", "--container", help="default: the pod's first container")
    logs.set_defaults(tj_func=show_logs)
    describe = verbs.add_parser("describe", parents=[common], help="phase, progress, cost, Events")
    describe.add_argument("name", metavar="NAME", help="the TrainingJob")
    describe.set_defaults(tj_func=describe_job)


def build_parser(prog: str = "kubectl agentcore") -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog=prog, parents=[common], description=__doc__.split("\n\n")[0])
    _add_verbs(parser, common)
    return parser


def add_parser(sub: Any) -> None:
    """Register ``tj`` on the `agentcore` console script's subparsers."""
    common = _common()
    tj = sub.add_parser("tj", parents=[common], help="cancel/suspend/resume/logs/describe a TrainingJob")
    _add_verbs(tj, common)
    tj.set_defaults(func=run)


# --- verbs ----------------------------------------------------------------------------------


def _not_found(exc: ApiError, name: str, namespace: str) -> Exception:
    if exc.status == 404:
        return PluginError(f"TrainingJob {name} not found in namespace {namespace}")
    return PluginError(f"TrainingJob {name} in namespace {namespace}: {exc}")


async def _patch_spec(kube: Kube, name: str, namespace: str, spec: JSON) -> TrainingJob:
    try:
        obj = await kube.patch(TRAININGJOB_RESOURCE, name, {"spec": spec}, namespace)
    except ApiError as exc:
        raise _not_found(exc, name, namespace) from exc
    return TrainingJob.model_validate(obj)


async def get_job(kube: Kube, name: str, namespace: str) -> TrainingJob:
    try:
        return TrainingJob.model_validate(await kube.get(TRAININGJOB_RESOURCE, name, namespace))
    except ApiError as exc:
        raise _not_found(exc, name, namespace) from exc


async def cancel_job(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    cancel = CancelRequest(requested=True, reason=args.reason).to_resource()
    await _patch_spec(kube, args.name, args.namespace, {"cancel": cancel})
    print(f"trainingjob/{args.name} cancel requested", file=out)
    return 0


async def suspend_job(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    job = await _patch_spec(kube, args.name, args.namespace, {"suspend": args.suspend})
    print(f"trainingjob/{args.name} {'suspended' if args.suspend else 'resumed'}", file=out)
    phase = job.status.phase if job.status else None
    if phase and phase.is_terminal:
        print(f"note: the job already finished ({phase.value}); this changes nothing", file=out)
    return 0


async def api_log(
    kube: Kube, namespace: str, pod: str, container: str | None, follow: bool
) -> AsyncIterator[bytes]:
    """pods/NAME/log from the apiserver (a text body: KubeClient.stream, not the JSON verbs)."""
    if not isinstance(kube, KubeClient):
        raise PluginError("reading logs needs a KubeClient")
    params = {"follow": "true" if follow else "false", **({"container": container} if container else {})}
    async with kube.stream(PODS.path(namespace, pod, "log"), params, None if follow else 60) as resp:
        async for chunk in resp.content.iter_any():
            yield chunk


def node_agent_log(pod: JSON, container: str, kubeconfig: str | None) -> Path:
    """Where the local node agent (`agentcore dev`) keeps this container's log: it serves no
    pods/log, so the apiserver cannot fetch it. The agent's state dir is `<dev state>/node`."""
    meta = pod["metadata"]
    rel = Path("pods") / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}" / f"{container}.log"
    states = [Path(kubeconfig).parent] if kubeconfig else []
    states.append(Path(".agentcore"))
    for state in states:
        if (state / "node" / rel).is_file():
            return state / "node" / rel
    return Path("<agentcore dev state dir>") / "node" / rel


async def _trainer_pod(kube: Kube, name: str, namespace: str) -> JSON:
    job = await get_job(kube, name, namespace)
    pods = (await kube.list(PODS, namespace, labelSelector=f"{TRAININGJOB}={name}")).get("items", [])
    if not pods:
        phase = job.status.phase.value if job.status and job.status.phase else "no phase yet"
        raise PluginError(f"TrainingJob {name} in namespace {namespace} has no trainer pod ({phase})")
    newest: JSON = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    return newest


async def show_logs(kube: Kube, args: argparse.Namespace, out: TextIO, reader: LogReader = api_log) -> int:
    pod = await _trainer_pod(kube, args.name, args.namespace)
    pod_name = pod["metadata"]["name"]
    container = args.container or pod["spec"]["containers"][0]["name"]
    try:
        async for chunk in reader(kube, args.namespace, pod_name, container, args.follow):
            out.write(chunk.decode(errors="replace"))
            out.flush()
        return 0
    except ApiError as exc:
        path = node_agent_log(pod, container, getattr(args, "kubeconfig", None))
        if not path.is_file():
            raise PluginError(
                f"logs of pod {pod_name} (TrainingJob {args.name}) are not available from the API ({exc}); "
                f"on the local node agent they are in {path}"
            ) from exc
        print(f"(the API serves no logs for pod {pod_name}: reading {path})", file=sys.stderr)
        await _tail(kube, pod, path, out, args.follow)
        return 0


async def _tail(kube: Kube, pod: JSON, path: Path, out: TextIO, follow: bool, poll: float = 1.0) -> None:
    """Print the file; with `follow`, keep printing what is appended until the pod has finished."""
    meta = pod["metadata"]
    with path.open(errors="replace") as fh:
        while True:
            out.write(fh.read())
            out.flush()
            if not follow:
                return
            current = await kube.get(PODS, meta["name"], meta["namespace"])
            if current.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                out.write(fh.read())
                return
            await asyncio.sleep(poll)


# --- describe -------------------------------------------------------------------------------


def _event_rows(events: list[JSON]) -> list[str]:
    def when(e: JSON) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp", ""))

    rows = []
    for event in sorted(events, key=when)[-RECENT_EVENTS:]:
        count = f" (x{event['count']})" if event.get("count", 1) > 1 else ""
        rows.append(
            f"  {when(event)}  {event.get('type', '')}  {event.get('reason', '')}: "
            f"{event.get('message', '')}{count}"
        )
    return rows


def render_describe(job: TrainingJob, events: list[JSON]) -> str:
    """kubectl-describe-like text of a TrainingJob and its recent Events."""
    status = job.status
    lines = [
        f"Name:        {job.metadata.name}",
        f"Namespace:   {job.metadata.namespace}",
        f"Agent:       {job.spec.agent_id}",
    ]
    if status is None:
        return "\n".join([*lines, "Phase:       (not reconciled yet)", *_events_block(events)]) + "\n"
    phase = status.phase.value if status.phase else "-"
    why = ": ".join(x for x in (status.reason, status.message) if x)
    lines.append(f"Phase:       {phase}" + (f" ({why})" if why else ""))
    cancelled = bool(job.spec.cancel and job.spec.cancel.requested)
    flags = [f for f, on in (("suspended", job.spec.suspend), ("cancel requested", cancelled)) if on]
    if flags:
        lines.append(f"Spec:        {', '.join(flags)}")
    done, total = status.current_iteration or 0, status.total_iterations or job.spec.config.n_iterations
    pct = f" ({status.progress_percent}%)" if status.progress_percent is not None else ""
    lines.append(f"Progress:    {done}/{total} iterations{pct}")
    budget = status.budget_usd or job.spec.config.max_budget_usd
    left = f", {status.budget_remaining_percent}% left" if status.budget_remaining_percent is not None else ""
    lines.append(f"Cost:        ${status.cost_usd or 0} of ${budget} budget{left}")
    if status.budget_warnings:
        lines.append(f"Budget warnings: {', '.join(f'{w}%' for w in status.budget_warnings)}")
    lines.append("Conditions:")
    lines += [f"  {c.type}={c.status.value}  {c.reason}: {c.message or ''}" for c in status.conditions or []]
    best = f" (best: {status.best_checkpoint_id})" if status.best_checkpoint_id else ""
    lines.append(f"Checkpoints: {len(status.checkpoints or [])}{best}")
    lines += [f"  {c.id}  iteration {c.iteration}  {c.uri}" for c in (status.checkpoints or [])[-5:]]
    return "\n".join([*lines, *_events_block(events)]) + "\n"


def _events_block(events: list[JSON]) -> list[str]:
    return ["Events:", *(_event_rows(events) or ["  <none>"])]


async def describe_job(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    job = await get_job(kube, args.name, args.namespace)
    selector = f"involvedObject.kind=TrainingJob,involvedObject.name={args.name}"
    events = (await kube.list(EVENTS, args.namespace, fieldSelector=selector)).get("items", [])
    out.write(render_describe(job, events))
    return 0


# --- entry points ---------------------------------------------------------------------------


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    config = load(args.kubeconfig)
    args.namespace = getattr(args, "namespace", None) or config.namespace
    verb: Callable[[Kube, argparse.Namespace, TextIO], Awaitable[int]] = args.tj_func
    async with KubeClient(config) as kube:
        try:
            return await verb(kube, args, out)
        except (aiohttp.ClientError, OSError) as exc:
            raise PluginError(f"cannot reach the Kubernetes API at {config.server}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    args.kubeconfig = getattr(args, "kubeconfig", None) or default_kubeconfig(os.environ, Path.cwd())
    try:
        return asyncio.run(_run(args, sys.stdout))
    except (PluginError, ConfigError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(build_parser().parse_args(argv)))
