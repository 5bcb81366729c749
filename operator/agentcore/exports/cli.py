"""Arguments of `agentcore exporter`; the exporter itself (pyarrow, XlsxWriter, fpdf2) is imported only
when the command runs, so other `agentcore` commands start fast."""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=os.environ.get("AGENTCORE_EXPORT_NAME"), help="ExportJob name")
    parser.add_argument(
        "--namespace", default=os.environ.get("AGENTCORE_EXPORT_NAMESPACE"), help="ExportJob namespace"
    )


def run(args: argparse.Namespace) -> int:
    from agentcore.exports.exporter import run_exporter

    return run_exporter(args)
