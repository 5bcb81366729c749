"""`python -m agentcore.devenv.nodeagent --kubeconfig K --state-dir D [--node-name N]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from pathlib import Path

from agentcore.devenv.nodeagent.agent import NodeAgent
from agentcore.devenv.nodeagent.images import load_table
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import KubeClient


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="agentcore-node-agent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--node-name", default=f"agentcore-{socket.gethostname()}".lower())
    parser.add_argument("--image-table", type=Path, help="YAML list of {image: GLOB, entrypoint: [...]}")
    parser.add_argument("--label", action="append", default=[], help="extra node label key=value")
    return parser.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    labels = dict(item.split("=", 1) for item in args.label)
    client = KubeClient(kubeconfig.load(args.kubeconfig))
    agent = NodeAgent(client, args.node_name, args.state_dir, load_table(args.image_table), labels)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await agent.run()
    except asyncio.CancelledError:
        logging.getLogger("agentcore.nodeagent").info("stopping: terminating pods")
    finally:
        await agent.shutdown()
        await client.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    main()
