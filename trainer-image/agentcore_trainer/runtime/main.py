"""`agentcore trainer`: in a trainer pod (job identity from the environment the operator sets), or
standalone with `--dataset FILE --config FILE` and local storage, to try the loop without a cluster."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentcore import logs
from agentcore.api.training import GRPOConfig, TrainerState, TrainingJob
from agentcore.datasources import DataSourceError, validate_queries
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import TRAININGJOB_RESOURCE, KubeClient
from agentcore.storage.checkpoints import CheckpointManager, checkpoint_prefix
from agentcore.storage.objectstore import ObjectStore, S3ObjectStore, open_store
from agentcore_trainer.distributed import (
    PEER_LOST_EXIT_CODE,
    Collective,
    PeerLost,
    World,
    connect,
)
from agentcore_trainer.runtime.ingest import IngestClient, IngestObjectStore, IngestTrajectoryWriter
from agentcore_trainer.runtime.reporting import ConsoleStatusSink, KubeStatusSink, StatusSink
from agentcore_trainer.runtime.run import EXIT_CODES, RunIdentity, RunInputs, TrainingRun, TrajectoryWriter

log = logging.getLogger("agentcore.trainer")
# Where the operator's pod spec mounts the projected, audience-bound token (AGENTCORE_INGEST_TOKEN_FILE).
TOKEN_FILE = "/var/run/secrets/agentcore.io/ingest/token"


def run_trainer(args: argparse.Namespace) -> int:
    logs.configure("INFO")
    try:
        return asyncio.run(_standalone(args) if args.dataset else _in_cluster())
    except (DataSourceError, ValidationError, ValueError) as exc:
        print(f"agentcore trainer: {exc}", file=sys.stderr)
        return 2


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _execute(
    ident: RunIdentity, inputs: RunInputs, writer: TrajectoryWriter, store: ObjectStore, sink: StatusSink
) -> int:
    stop = _stop_event()
    # Joining the group blocks until every rank is there: off the loop, so SIGTERM still works.
    comm = await asyncio.to_thread(connect, World.from_env(os.environ))
    try:
        return await _train(ident, inputs, writer, store, sink, stop, comm)
    finally:
        comm.close()


async def _train(
    ident: RunIdentity,
    inputs: RunInputs,
    repo: TrajectoryWriter,
    store: ObjectStore,
    sink: StatusSink,
    stop: asyncio.Event,
    comm: Collective,
) -> int:
    prefix = checkpoint_prefix(ident.namespace, ident.name)
    checkpoints = CheckpointManager(store, prefix, inputs.config.checkpoint_retention)
    run = TrainingRun(ident, inputs, repo, checkpoints, sink, stop, comm)
    try:
        outcome = await run.run()
    except PeerLost as exc:  # not this rank's failure: the group restarts from the checkpoint
        log.error("%s; exiting so the group restarts from its newest checkpoint", exc)
        return PEER_LOST_EXIT_CODE
    except Exception as exc:
        log.exception("training failed")
        await run.report_failure(f"{type(exc).__name__}: {exc}")
        return EXIT_CODES[TrainerState.FAILED]
    return EXIT_CODES[outcome]


async def _in_cluster() -> int:
    """A trainer pod: no platform credential, data only through the API server's ingestion
    endpoint (its projected token), its own TrainingJob and status through its service account."""
    env = os.environ
    name, namespace = env["AGENTCORE_JOB_NAME"], env["AGENTCORE_JOB_NAMESPACE"]
    if not env.get("AGENTCORE_INGEST_URL"):
        raise ValueError("AGENTCORE_INGEST_URL is not set: a trainer pod reaches its data only through it")
    client = IngestClient(
        env["AGENTCORE_INGEST_URL"], Path(env.get("AGENTCORE_INGEST_TOKEN_FILE", TOKEN_FILE))
    )
    async with KubeClient(kubeconfig.load()) as kube:
        tj = TrainingJob.model_validate(await kube.get(TRAININGJOB_RESOURCE, name, namespace))
        spec = tj.spec
        inputs = RunInputs(
            spec.config,
            await asyncio.to_thread(client.queries, "training"),
            await asyncio.to_thread(client.queries, "evaluation") if spec.evaluation_data else [],
        )
        ident = RunIdentity(
            tj.metadata.uid or "", name, namespace, spec.agent_id, env.get("AGENTCORE_POD_NAME")
        )
        writer, store = IngestTrajectoryWriter(client), IngestObjectStore(client)
        return await _execute(ident, inputs, writer, store, KubeStatusSink(kube, namespace, name))


async def _standalone(args: argparse.Namespace) -> int:
    state = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    config = GRPOConfig.model_validate(_read_structured(args.config) if args.config else {})
    inputs = RunInputs(
        config,
        validate_queries(json.loads(args.dataset.read_text())),
        validate_queries(json.loads(args.eval_dataset.read_text())) if args.eval_dataset else [],
    )
    job_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentcore-standalone/{args.name}"))
    ident = RunIdentity(job_id, args.name, "standalone", "standalone-agent")
    store = open_store(args.object_store or f"file://{state / 'objects'}")
    if isinstance(store, S3ObjectStore):
        await asyncio.to_thread(store.ensure_bucket)
    # Standalone runs own their database (the platform's never comes here): migrate, then write.
    from agentcore.storage.db import database_url, make_engine, session_factory
    from agentcore.storage.migrate import upgrade
    from agentcore.storage.trajectories import TrajectoryRepository

    engine = make_engine(database_url(args.database_url, state))
    try:
        await upgrade(engine)
        repo = TrajectoryRepository(session_factory(engine))
        return await _execute(ident, inputs, repo, store, ConsoleStatusSink())
    finally:
        await engine.dispose()


def _read_structured(path: Path) -> Any:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)
