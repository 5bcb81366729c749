"""The node agent's image table: which local command stands in for which container image.

There is no container runtime here, so an image is a name for a local entry point. A pod's
`command` replaces the entry point and `args` follow it, as in a container. An image not in the
table is a visible pod error (ErrImagePull), never a hang.

Default table (patterns are fnmatch globs on the full image reference):

| image                                   | entry point                                 |
|-----------------------------------------|---------------------------------------------|
| python, python:*, */python:*            | the agent's own Python interpreter          |
| */agentcore-training*, agentcore*       | the `agentcore` console script              |
| busybox*, */busybox*, alpine*, */alpine*| /bin/sh                                     |

Extra entries come from a YAML file (`--image-table`): a list of {image: GLOB, entrypoint: [..]}.
"""

from __future__ import annotations

import fnmatch
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class ImageEntry:
    pattern: str
    entrypoint: tuple[str, ...]


class ImageNotFound(LookupError):
    pass


def _agentcore_script() -> str:
    beside = Path(sys.executable).parent / "agentcore"
    return str(beside) if beside.exists() else (shutil.which("agentcore") or "agentcore")


def default_table() -> list[ImageEntry]:
    python = (sys.executable,)
    agentcore = (_agentcore_script(),)
    shell = ("/bin/sh",)
    return [
        ImageEntry("python", python),
        ImageEntry("python:*", python),
        ImageEntry("*/python:*", python),
        ImageEntry("*/agentcore-training*", agentcore),
        ImageEntry("agentcore*", agentcore),
        ImageEntry("busybox*", shell),
        ImageEntry("*/busybox*", shell),
        ImageEntry("alpine*", shell),
        ImageEntry("*/alpine*", shell),
    ]


def load_table(path: Path | None) -> list[ImageEntry]:
    extra: list[ImageEntry] = []
    if path is not None:
        for item in yaml.safe_load(path.read_text()) or []:
            extra.append(ImageEntry(str(item["image"]), tuple(str(a) for a in item["entrypoint"])))
    return extra + default_table()  # user entries win


def resolve(table: list[ImageEntry], image: str, command: list[str], args: list[str]) -> list[str]:
    entry = next((e for e in table if fnmatch.fnmatchcase(image, e.pattern)), None)
    if entry is None:
        raise ImageNotFound(
            f"image {image!r} is not in the node agent's image table; add it with --image-table "
            "(see agentcore.devenv.nodeagent.images)"
        )
    if command:
        # The image's shell/interpreter is its PATH: map the bare names it would provide.
        head = _map_command(command[0], entry)
        return [head, *command[1:], *args]
    return [*entry.entrypoint, *args]


def _map_command(name: str, entry: ImageEntry) -> str:
    # The agentcore images' `python` is the interpreter agentcore is installed in (e.g. the
    # chart's migration hook runs `python -m agentcore.storage.migrate_cli`).
    interpreters = (sys.executable, _agentcore_script())
    if name in ("python", "python3") and entry.entrypoint and entry.entrypoint[0] in interpreters:
        return sys.executable
    if name == "agentcore":
        return _agentcore_script()
    return name
