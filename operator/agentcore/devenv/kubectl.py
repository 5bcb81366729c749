"""`agentcore kubectl ARGS...`: the kubectl that `agentcore setup` cached, which is not on PATH.

The kubeconfig is $KUBECONFIG, else ``./.agentcore/kubeconfig`` (what `agentcore dev` writes) when
it exists; otherwise kubectl's own default applies. Nothing is built here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from agentcore.devenv.binaries import BinaryError, kubectl_binary

DEV_KUBECONFIG = Path(".agentcore") / "kubeconfig"


def default_kubeconfig(environ: Mapping[str, str], cwd: Path) -> str | None:
    """$KUBECONFIG, else the `agentcore dev` kubeconfig under `cwd` if present, else None."""
    if environ.get("KUBECONFIG"):
        return environ["KUBECONFIG"]
    local = cwd / DEV_KUBECONFIG
    return str(local) if local.is_file() else None


def kubectl_command(
    args: Sequence[str], environ: Mapping[str, str], cwd: Path
) -> tuple[list[str], dict[str, str]]:
    """argv and environment for running the cached kubectl with `args`."""
    env = dict(environ)
    kubeconfig = default_kubeconfig(environ, cwd)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    binary = str(kubectl_binary())
    return [binary, *args], env


def run(args: Sequence[str]) -> int:
    try:
        argv, env = kubectl_command(args, os.environ, Path.cwd())
    except BinaryError as exc:
        print(f"agentcore kubectl: {exc}", file=sys.stderr)
        return 1
    os.execve(argv[0], argv, env)  # kubectl's exit code and signals are the user's
