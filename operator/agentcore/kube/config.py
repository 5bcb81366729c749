"""Connection settings for the Kubernetes API: a kubeconfig (honouring $KUBECONFIG first, which is
the seam the local node agent uses to give each pod its own credentials) or in-cluster config."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class KubeConfig:
    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    namespace: str = "default"
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx

    def bearer_token(self) -> str | None:
        # Re-read the file each time: projected tokens rotate.
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return self.token


def load(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None) -> KubeConfig:
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return from_kubeconfig(Path(str(path).split(os.pathsep)[0]), context)
    if (SERVICE_ACCOUNT_DIR / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    default = Path.home() / ".kube" / "config"
    if default.exists():
        return from_kubeconfig(default, context)
    raise ConfigError("no Kubernetes configuration: set KUBECONFIG, pass --kubeconfig, or run in a cluster")


def in_cluster() -> KubeConfig:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    return KubeConfig(
        server=f"https://{host}:{port}",
        ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT_DIR / "token"),
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
    )


def from_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    ctx_name = context or doc.get("current-context")
    ctx = _named(doc.get("contexts", []), ctx_name, "context")
    cluster = _named(doc.get("clusters", []), ctx["cluster"], "cluster")
    user = _named(doc.get("users", []), ctx.get("user"), "user") if ctx.get("user") else {}
    base = path.parent
    return KubeConfig(
        server=cluster["server"],
        ca_file=_file_or_data(cluster, "certificate-authority", base),
        cert_file=_file_or_data(user, "client-certificate", base),
        key_file=_file_or_data(user, "client-key", base),
        token=user.get("token"),
        token_file=user.get("tokenFile"),
        namespace=ctx.get("namespace", "default"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def _named(items: list[dict[str, Any]], name: str | None, what: str) -> dict[str, Any]:
    for item in items:
        if item.get("name") == name:
            return dict(item.get(what, {}))
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def _file_or_data(section: dict[str, Any], key: str, base: Path) -> str | None:
    if section.get(key):
        p = Path(section[key])
        return str(p if p.is_absolute() else base / p)
    data = section.get(f"{key}-data")
    if not data:
        return None
    # ssl wants files; keep decoded material in a private temp file for the process lifetime.
    fd, name = tempfile.mkstemp(prefix="agentcore-kube-", suffix=".pem")
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(data))
    return name
