"""Command-line arguments of `agentcore trainer` (kept apart so `agentcore --help` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, help="standalone: JSON array of TrainingQuery objects")
    parser.add_argument("--eval-dataset", type=Path, help="standalone: held-out queries")
    parser.add_argument("--config", type=Path, help="standalone: GRPOConfig as JSON or YAML")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".agentcore-trainer"),
        help="standalone: where the SQLite database and checkpoints go",
    )
    parser.add_argument("--name", default="standalone", help="standalone: run name (resumes by name)")
    parser.add_argument("--database-url", help="standalone: database (default: SQLite in --state-dir)")
    parser.add_argument(
        "--object-store", help="standalone: s3://bucket/prefix or file:///dir for checkpoints"
    )
