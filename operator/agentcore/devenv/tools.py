"""Chart tooling: helm and kubeconform built from their Go modules, a Lua interpreter from the
distribution, promtool for the chart's alert rules, and offline JSON schemas for kubeconform.

Binaries are built once per version with ``go install module/cmd@version`` (neither module has
replace directives, so the module's own go.mod decides every dependency) into
``~/.cache/agentcore/tools/<name>/<version>/`` (``AGENTCORE_CACHE`` moves the cache), and stamped
with their versions the way the upstream Makefiles do. kind (for the end-to-end suite) is built the
same way, on demand. ``AGENTCORE_HELM`` / ``AGENTCORE_KUBECONFORM`` / ``AGENTCORE_KIND`` /
``AGENTCORE_LUA`` point at binaries to use instead.

kubeconform downloads schemas from the internet by default. Here it reads a local directory in
the layout of the community ``kubernetes-json-schema`` repository
(``<dir>/v<k8s>-standalone[-strict]/<kind>-<group>-<version>.json``), written by
:func:`write_schema_dir` from:

- the Kubernetes API's own OpenAPI v2 document (``kubectl get --raw /openapi/v2`` of a real
  kube-apiserver: every built-in kind of that version, exactly as the server validates it);
- CRD manifests (``spec.versions[].schema.openAPIV3Schema``): this project's CRDs, and
  prometheus-operator's ServiceMonitor and PrometheusRule CRDs taken from its Go module
  (``example/`` in the module zip), for the chart's optional monitoring objects.

Strict schemas (``-strict``) forbid properties a schema does not declare, except where Kubernetes
keeps unknown fields (``x-kubernetes-preserve-unknown-fields``) or the schema is a map.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agentcore.devenv.binaries import BUILD_ESTIMATES, BinaryError, _run_go, cache_root, progress

HELM_VERSION = "v3.22.0"
HELM_MODULE = "helm.sh/helm/v3"
KUBECONFORM_VERSION = "v0.8.0"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform"
# kind (Kubernetes in Docker) for the end-to-end suite; only built when a Docker engine is there.
KIND_VERSION = "v0.33.0"
KIND_MODULE = "sigs.k8s.io/kind"
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_OPERATOR_CRDS = "example/prometheus-operator-crd"
# promtool (`check rules`, `test rules`) for the chart's PrometheusRule; Prometheus v3.N is module v0.3N.
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
PROMETHEUS_VERSION = "v0.316.0"
# Argo CD runs health checks with gopher-lua, which implements Lua 5.1: prefer that dialect.
LUA_CANDIDATES = ("lua5.1", "luajit", "lua5.4", "lua5.3", "lua")

Schema = dict[str, Any]


# --- binaries -------------------------------------------------------------------------------


def tool_dir(name: str, version: str) -> Path:
    return cache_root() / "tools" / name / version


def _module_gomod(module: str, version: str) -> str:
    with tempfile.TemporaryDirectory(prefix="agentcore-gomod-") as tmp:
        info = json.loads(_run_go(["mod", "download", "-json", f"{module}@{version}"], Path(tmp)))
    return Path(info["GoMod"]).read_text()


def _required_version(gomod: str, module: str) -> str:
    for line in gomod.splitlines():
        parts = line.split()
        if module in parts:
            return parts[parts.index(module) + 1]
    raise BinaryError(f"{module} not required by the go.mod")


def _helm_ldflags(version: str) -> str:
    # As helm's Makefile: its version, and the Kubernetes version it assumes by default
    # (client-go v0.N.x is Kubernetes 1.N), used by `helm template` and `helm lint`.
    client_go = _required_version(_module_gomod(HELM_MODULE, version), "k8s.io/client-go")
    minor = client_go.lstrip("v").split(".")[1]
    flags = [
        f"-X helm.sh/helm/v3/internal/version.version={version}",
        "-X helm.sh/helm/v3/internal/version.metadata=",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
    ]
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {pkg}.k8sVersionMajor=1", f"-X {pkg}.k8sVersionMinor={minor}"]
    return "-s -w " + " ".join(flags)


def go_install(name: str, package: str, version: str, ldflags: str = "-s -w", tags: str = "") -> Path:
    """`go install package@version` into the cache; atomic, so a failed build caches nothing."""
    dest = tool_dir(name, version)
    binary = dest / name
    if binary.exists():
        return binary
    dest.mkdir(parents=True, exist_ok=True)
    with (
        progress(f"{name} {version}", BUILD_ESTIMATES.get(name)),
        tempfile.TemporaryDirectory(prefix=f"agentcore-{name}-") as tmp,
    ):
        gobin = Path(tmp) / "bin"
        flags = ["-trimpath", *(["-tags", tags] if tags else []), "-ldflags", ldflags]
        _run_go(
            ["install", *flags, f"{package}@{version}"],
            Path(tmp),
            {"GOBIN": str(gobin)},
        )
        partial = dest / f".{name}.partial"
        shutil.copy2(gobin / name, partial)
        partial.replace(binary)
    return binary


def _go_tool(name: str, version: str, build: bool, install: Callable[[], Path], hint: str) -> Path:
    """A Go-built tool: $AGENTCORE_<NAME> if set, else the cached build of `version` (built by
    `install` when missing and `build`), else a BinaryError naming the path and `hint`."""
    explicit = os.environ.get(f"AGENTCORE_{name.upper()}")
    if explicit:
        return Path(explicit)
    binary = tool_dir(name, version) / name
    if not binary.exists() and build:
        binary = install()
    if not binary.exists():
        raise BinaryError(f"{name} not found at {binary}; {hint}")
    return binary


_BUILD_HINT = "run `python -m agentcore.devenv.tools`"


def helm_binary(build: bool = True, version: str = HELM_VERSION) -> Path:
    def install() -> Path:
        return go_install("helm", f"{HELM_MODULE}/cmd/helm", version, _helm_ldflags(version))

    return _go_tool("helm", version, build, install, _BUILD_HINT)


def kubeconform_binary(build: bool = True, version: str = KUBECONFORM_VERSION) -> Path:
    def install() -> Path:
        package = f"{KUBECONFORM_MODULE}/cmd/kubeconform"
        return go_install("kubeconform", package, version, f"-s -w -X main.version={version}")

    return _go_tool("kubeconform", version, build, install, _BUILD_HINT)


def kind_binary(build: bool = True, version: str = KIND_VERSION) -> Path:
    def install() -> Path:
        return go_install("kind", KIND_MODULE, version)

    return _go_tool("kind", version, build, install, "build it with agentcore.devenv.tools.kind_binary()")


def promtool_binary(build: bool = True, version: str = PROMETHEUS_VERSION) -> Path:
    def install() -> Path:
        # Stamped as Prometheus' Makefile does (promu): module v0.3NN.x is Prometheus 3.NN.x.
        major_minor, patch = version.removeprefix("v0.").split(".")
        release = f"{major_minor[0]}.{int(major_minor[1:])}.{patch}"
        stamp = f"-X github.com/prometheus/common/version.Version={release}"
        # remove_all_sd: no service-discovery plugins (cloud SDKs), a third of the build; rule
        # checks and tests need none of them.
        package = f"{PROMETHEUS_MODULE}/cmd/promtool"
        return go_install("promtool", package, version, f"-s -w {stamp}", tags="remove_all_sd")

    return _go_tool("promtool", version, build, install, _BUILD_HINT)


def lua_interpreter() -> Path | None:
    """A stand-alone Lua interpreter (Debian: `apt-get install lua5.1`), or None."""
    explicit = os.environ.get("AGENTCORE_LUA")
    if explicit:
        return Path(explicit)
    for name in LUA_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def prometheus_operator_crd(plural: str, version: str = PROMETHEUS_OPERATOR_VERSION) -> dict[str, Any]:
    """One of prometheus-operator's CRDs ("servicemonitors"), read from its Go module (downloaded once)."""
    with tempfile.TemporaryDirectory(prefix="agentcore-gomod-") as tmp:
        info = json.loads(
            _run_go(["mod", "download", "-json", f"{PROMETHEUS_OPERATOR_MODULE}@{version}"], Path(tmp))
        )
    path = Path(info["Dir"]) / PROMETHEUS_OPERATOR_CRDS / f"monitoring.coreos.com_{plural}.yaml"
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def servicemonitor_crd() -> dict[str, Any]:
    return prometheus_operator_crd("servicemonitors")


def prometheusrule_crd() -> dict[str, Any]:
    return prometheus_operator_crd("prometheusrules")


# --- JSON schemas for kubeconform -----------------------------------------------------------


@dataclass(frozen=True)
class KindSchema:
    api_version: str  # "v1", "apps/v1", "training.agentcore.io/v1alpha1"
    kind: str
    schema: Schema

    @property
    def filename(self) -> str:
        """kubeconform's name for it: <kind>-<first label of the group>-<version>.json."""
        group_parts = self.api_version.split("/")
        suffix = "-" + group_parts[0].split(".")[0].lower()
        if len(group_parts) > 1:
            suffix += "-" + group_parts[1].lower()
        return f"{self.kind.lower()}{suffix}.json"


_INT_OR_STRING: Schema = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_QUANTITY: Schema = {"oneOf": [{"type": "string"}, {"type": "number"}]}


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("not", "additionalProperties", "items", "additionalItems")


def _walk(node: Any, fn: Callable[[Schema], Schema]) -> Any:
    """Apply `fn` to every subschema, bottom-up, visiting only schema positions (so a property
    *named* e.g. "nullable" or "format" is never mistaken for the keyword)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _walk(sub, fn) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_walk(sub, fn) for sub in out[key]]
    for key in _SCHEMA_ONE:
        value = out.get(key)
        if isinstance(value, dict):
            out[key] = _walk(value, fn)
        elif key == "items" and isinstance(value, list):
            out[key] = [_walk(sub, fn) for sub in value]
    return fn(out)


def _normalise_node(node: Schema) -> Schema:
    if node.get("format") == "int-or-string" or node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.pop("format", None)
        node.update(copy.deepcopy(_INT_OR_STRING))
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    return node


def _strict_node(node: Schema) -> Schema:
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


def _normalise(schema: Schema) -> Schema:
    """Kubernetes OpenAPI idioms as plain JSON Schema: int-or-string, nullable."""
    result: Schema = _walk(schema, _normalise_node)
    return result


def _strict(schema: Schema) -> Schema:
    """Forbid undeclared properties wherever a schema declares its properties (not in maps, not
    where Kubernetes preserves unknown fields)."""
    result: Schema = _walk(schema, _strict_node)
    return result


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref[len("#/definitions/") :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def openapi_v2_kind_schemas(document: Mapping[str, Any]) -> list[KindSchema]:
    """One self-contained schema per kind of an OpenAPI v2 document (`/openapi/v2`).

    Each schema is the kind's definition plus the definitions it references (transitively), so
    kubeconform needs no other file."""
    definitions: dict[str, Schema] = {}
    for name, definition in document.get("definitions", {}).items():
        if name.endswith(".Quantity") and "resource" in name:
            definition = {**copy.deepcopy(_QUANTITY), "description": definition.get("description", "")}
        definitions[name] = _normalise(definition)
    out: list[KindSchema] = []
    for definition in definitions.values():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk.get("group", ""), gvk["version"], gvk["kind"]
            if not (definition.get("properties") or {}).get("kind"):
                continue  # shared types such as DeleteOptions' wire forms
            needed: dict[str, Schema] = {}
            todo = list(_refs(definition))
            while todo:
                ref = todo.pop()
                if ref in needed or ref not in definitions:
                    continue
                needed[ref] = definitions[ref]
                todo.extend(_refs(definitions[ref]))
            schema: Schema = {
                "$schema": "http://json-schema.org/draft-04/schema#",
                **{k: v for k, v in definition.items() if k != "x-kubernetes-group-version-kind"},
            }
            if needed:
                schema["definitions"] = needed
            api_version = f"{group}/{version}" if group else version
            out.append(KindSchema(api_version, kind, schema))
    return out


def crd_kind_schemas(crds: Iterable[Mapping[str, Any]]) -> list[KindSchema]:
    """One schema per served version of each CRD (its openAPIV3Schema)."""
    out: list[KindSchema] = []
    for crd in crds:
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _normalise(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            props = schema.setdefault("properties", {})
            # The apiserver validates metadata itself; the CRD schema leaves it open.
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
            out.append(
                KindSchema(
                    f"{group}/{version['name']}",
                    kind,
                    {"$schema": "http://json-schema.org/draft-04/schema#", **schema},
                )
            )
    return out


def load_crds(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def write_schema_dir(out: Path, kubernetes_version: str, schemas: Iterable[KindSchema]) -> Path:
    """Write `schemas` in kubeconform's layout for `-schema-location out -kubernetes-version V`."""
    version = kubernetes_version.lstrip("v")
    plain, strict = out / f"v{version}-standalone", out / f"v{version}-standalone-strict"
    plain.mkdir(parents=True, exist_ok=True)
    strict.mkdir(parents=True, exist_ok=True)
    for item in schemas:
        (plain / item.filename).write_text(json.dumps(item.schema))
        (strict / item.filename).write_text(json.dumps(_strict(item.schema)))
    return out


def kubeconform_command(
    schema_dir: Path, kubernetes_version: str, strict: bool = True, binary: Path | None = None
) -> list[str]:
    """kubeconform reading only `schema_dir` (never the internet); manifests come on stdin."""
    argv = [
        str(binary or kubeconform_binary()),
        "-schema-location",
        str(schema_dir),
        "-kubernetes-version",
        kubernetes_version.lstrip("v"),
        "-summary",
        "-output",
        "text",
    ]
    if strict:
        argv.append("-strict")
    return [*argv, "-"]


# --- `python -m agentcore.devenv.tools` (scripts/bootstrap) ---------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agentcore.devenv.tools", description="build/cache helm, kubeconform and promtool"
    )
    parser.add_argument("--quiet", action="store_true", help="print only builds and problems")
    args = parser.parse_args(argv)
    try:
        builds = (("helm", helm_binary), ("kubeconform", kubeconform_binary), ("promtool", promtool_binary))
        for name, build in builds:
            path = build()  # a build announces itself (binaries.progress)
            if not args.quiet:
                print(f"{name}: {path}", file=sys.stderr)
    except (BinaryError, subprocess.SubprocessError) as exc:
        print(f"tools: {exc}", file=sys.stderr)
        return 1
    try:
        prometheus_operator_crd("servicemonitors")  # cached in the Go module cache: no network in tests
    except (BinaryError, OSError) as exc:
        print(f"tools: prometheus-operator CRDs not cached ({exc})", file=sys.stderr)
    lua = lua_interpreter()
    if not (args.quiet and lua):
        print(f"lua: {lua or 'not found (apt-get install lua5.1)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
