"""The trainer's `agentcore` subcommands, registered through the ``agentcore.commands`` entry point
(pyproject.toml): `agentcore trainer` (trainer pods, or standalone) and `agentcore datasets
generate`. Only argparse at import time: the console script builds every parser on each start."""

from __future__ import annotations

import argparse
from typing import cast


def _run_trainer(args: argparse.Namespace) -> int:
    from agentcore_trainer.runtime.main import run_trainer

    return run_trainer(args)


def _generate(args: argparse.Namespace) -> int:
    from agentcore_trainer.datasets import Split, write_dataset

    split = cast(Split, args.split.replace("-", "_"))  # argparse choices: train | held-out
    write_dataset(args.n, args.seed, args.out, args.held_out, args.held_out_fraction, split)
    return 0


def _adapter(args: argparse.Namespace) -> int:
    from agentcore_trainer.policies.adapter import run

    return run(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from agentcore_trainer.runtime.arguments import add_arguments

    trainer = sub.add_parser("trainer", help="trainer entry point (trainer pods, or standalone)")
    add_arguments(trainer)
    trainer.set_defaults(func=_run_trainer)

    from agentcore_trainer.policies import adapter

    export = sub.add_parser(
        "adapter", help="write a TrainingJob's LLM checkpoint as a PEFT adapter directory"
    )
    adapter.add_arguments(export)
    export.set_defaults(func=_adapter)

    datasets = sub.add_parser("datasets", help="built-in datasets")
    dsub = datasets.add_subparsers(dest="datasets_command", required=True)
    gen = dsub.add_parser("generate", help="write N TrainingQuery objects as a JSON array")
    gen.add_argument("--n", type=int, required=True)
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--out", default=None, help="file (default: stdout)")
    gen.add_argument(
        "--split",
        choices=("train", "held-out"),
        default="train",
        help="held-out: unseen entities, numbers, chain combinations and templates (default: train)",
    )
    gen.add_argument(
        "--held-out",
        default=None,
        metavar="FILE",
        help="also write a duplicate-free held-out set of N x --held-out-fraction queries to FILE",
    )
    gen.add_argument("--held-out-fraction", type=float, default=0.2)
    gen.set_defaults(func=_generate)
