"""Red team, as a tenant with kubectl in one namespace, against the real kube-apiserver and the real
operator process (issue 12): webhooks as an SSRF probe (internal addresses, redirects, URLs whose
query or userinfo carries a credential, unsigned deliveries), a planted Job under the trainer Job's
name, and spec.labels that would replace the operator's own labels.

The test operator allows webhooks to 127.0.0.0/8 (AGENTCORE_WEBHOOK_ALLOWED_NETWORKS in
tests/operator_support.py), so the internal addresses aimed at here lie outside that list; those the
test can listen on are observed directly, the others through the TrainingJob's Events."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
import yaml
from aiohttp import web

from agentcore.api import labels
from agentcore.api.labels import USABLE_BY_TRAININGJOBS
from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import Receiver, add_queries, phase_is, training_job

pytestmark = pytest.mark.integration
EVENTS = ["training.job.started", "training.job.completed"]
REFUSED = "webhooks may not reach"  # webhooks.py: the refusal of an internal address


class Listener:
    """An HTTP endpoint on ``host`` that records every request (any method, any path, so a
    redirect followed as a GET is seen too) and answers ``status``, with ``location`` as its
    Location header when given: an internal service, a redirecting receiver, a redirect's target."""

    def __init__(self, host: str = "127.0.0.1", status: int = 204, location: str | None = None) -> None:
        self.host, self.status, self.location = host, status, location
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port = int(self._sock.getsockname()[1])
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        assert ready.wait(10), f"listener on {host} did not start"

    def url(self, path: str, host: str | None = None) -> str:
        """This listener's URL, or the URL naming it through another spelling of its host."""
        host = host or self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append((request.method, request.path_qs))
        return web.Response(status=self.status, headers={"Location": self.location} if self.location else {})

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, self._sock).start())
        ready.set()
        loop.run_forever()


def _signing_key(cp, ns: str) -> dict:
    cp.kubectl("-n", ns, "create", "secret", "generic", "hook-key", "--from-literal=key=k3y")
    cp.kubectl("-n", ns, "label", "secret", "hook-key", f"{USABLE_BY_TRAININGJOBS}=true")
    return {"name": "hook-key", "key": "key"}


def _with_webhooks(name: str, urls: list[str], key: dict) -> str:
    doc = yaml.safe_load(training_job(name, 2))
    doc["spec"]["webhooks"] = [{"url": url, "events": EVENTS, "secretRef": key} for url in urls]
    return yaml.safe_dump(doc)


def _event_messages(cp, ns: str, name: str, reason: str) -> list[str]:
    selector = f"involvedObject.name={name},reason={reason}"
    return [
        e["message"] for e in get_json(cp, "-n", ns, "get", "events", "--field-selector", selector)["items"]
    ]


def _completed(cp, ns: str, name: str) -> dict:
    done = wait_for(lambda: phase_is(cp, ns, name, "Completed", "Failed"), 150, interval=1, what=name)
    assert done["status"]["phase"] == "Completed", done["status"]
    return done


def _failures_for_every_event(cp, ns: str, name: str, marks: list[str]) -> list[str]:
    """The WebhookFailed messages, once there is one per (event, webhook); each webhook is known
    by a mark its URL (and so the message) holds."""

    def all_there() -> list[str] | None:
        messages = _event_messages(cp, ns, name, "WebhookFailed")
        missing = [
            (event, mark)
            for event in EVENTS
            for mark in marks
            if not any(m.startswith(f"{event} to ") and mark in m for m in messages)
        ]
        return None if missing else messages

    return wait_for(all_there, 60, interval=1, what=f"a WebhookFailed Event per event and webhook of {name}")


def _apply_refused(cp, ns: str, manifest: str) -> str:
    out = cp.kubectl("-n", ns, "apply", "-f", "-", input=manifest, check=False)
    assert out.returncode != 0, out.stdout
    return out.stderr


def test_webhooks_to_internal_addresses_are_refused_and_never_sent(control_plane, operator, namespace):
    """Issue 12, H2a: the operator POSTed to any URL a TrainingJob named (an SSRF into the cluster,
    the node and the cloud's metadata service). A webhook aimed at an internal address outside the
    operator's allow-list gets no request: IPv6 loopback, 0.0.0.0 (which reaches loopback
    listeners), link-local metadata and a private address. Each delivery is refused as an internal
    address (WebhookFailed), the allowed receiver gets its deliveries and the job still completes."""
    add_queries(control_plane, namespace)
    key = _signing_key(control_plane, namespace)
    on_v6_loopback = Listener("::1")
    on_loopback = Listener("127.0.0.1")  # aimed at through 0.0.0.0, never through 127.0.0.1
    internal = [
        on_v6_loopback.url("/internal-0/hook"),
        on_loopback.url("/internal-1/hook", host="0.0.0.0"),
        "http://169.254.169.254/internal-2/latest/meta-data",
        "http://10.0.0.1:8080/internal-3/hook",
    ]
    allowed = Receiver()
    control_plane.kubectl(  # the allowed receiver last: deliveries go out in order, so when it has
        # the completed event every internal delivery of that event was tried before it
        "-n", namespace, "apply", "-f", "-", input=_with_webhooks("probe", [*internal, allowed.url], key)
    )  # fmt: skip
    _completed(control_plane, namespace, "probe")
    wait_for(lambda: allowed.events() == EVENTS, 60, what="the allowed receiver's deliveries")

    marks = [f"/internal-{i}/" for i in range(len(internal))]
    messages = _failures_for_every_event(control_plane, namespace, "probe", marks)
    for mark in marks:
        mine = [m for m in messages if mark in m]
        assert mine and all(REFUSED in m for m in mine), mine
    assert on_v6_loopback.requests == [] and on_loopback.requests == []


def test_webhook_redirects_are_not_followed(control_plane, operator, namespace):
    """Issue 12, H2b: the operator followed redirects, so an allowed receiver could bounce the signed
    POST (302, or 307 keeping method and body) to any address. A receiver answering 302 or 307 to
    another loopback URL: the redirect's target receives nothing, the delivery fails as HTTP 302 /
    HTTP 307."""
    add_queries(control_plane, namespace)
    key = _signing_key(control_plane, namespace)
    target = Listener()  # records GETs too: a followed 302 turns the POST into one
    bouncers = {
        status: Listener(status=status, location=target.url(f"/stolen-{status}")) for status in (302, 307)
    }
    urls = [bouncer.url(f"/bounce-{status}") for status, bouncer in bouncers.items()]
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=_with_webhooks("bounced", urls, key))
    _completed(control_plane, namespace, "bounced")

    messages = _failures_for_every_event(
        control_plane, namespace, "bounced", [f"/bounce-{s}" for s in bouncers]
    )
    for status, bouncer in bouncers.items():
        assert bouncer.requests == [("POST", f"/bounce-{status}")] * 2  # asked, and it answered
        mine = [m for m in messages if f"/bounce-{status}" in m]
        assert mine and all(m.endswith(f": HTTP {status}") for m in mine), mine
    assert target.requests == []


def test_webhook_credentials_never_reach_events(control_plane, operator, namespace):
    """Issue 12, H2c: WebhookFailed / delivered Events showed the whole webhook URL, so anyone who
    may list Events read a token in its query. Events show scheme, host, port and path only; a URL
    with user:password@ is refused by the apiserver, naming spec.webhooks[0].url."""
    add_queries(control_plane, namespace)
    key = _signing_key(control_plane, namespace)
    receiver = Receiver()
    with_userinfo = _with_webhooks("userinfo", [receiver.url.replace("://", "://tenant:s3cret@")], key)
    refused = _apply_refused(control_plane, namespace, with_userinfo)
    assert "spec.webhooks[0].url" in refused, refused
    assert control_plane.kubectl("-n", namespace, "get", "tj", "userinfo", check=False).returncode != 0

    base = f"http://127.0.0.1:{receiver.port}"
    delivered = f"{base}/hook?token=s3cret"
    failing = f"{base}/missing?token=s3cret&user=tenant"  # the receiver answers 404 here
    control_plane.kubectl(
        "-n", namespace, "apply", "-f", "-", input=_with_webhooks("tokened", [delivered, failing], key)
    )
    done = _completed(control_plane, namespace, "tokened")
    wait_for(lambda: receiver.events() == EVENTS, 60, what="the deliveries with a token in the query")
    messages = _failures_for_every_event(control_plane, namespace, "tokened", ["/missing"])
    assert sorted(messages) == sorted(f"{event} to {base}/missing: HTTP 404" for event in EVENTS)

    events = control_plane.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    for secret in ("s3cret", "token=", "user=tenant"):
        assert secret not in events
        assert secret not in json.dumps(done["status"])


def test_a_planted_job_under_the_trainer_name_is_not_adopted(control_plane, operator, namespace):
    """Issue 12, L3: a 409 on creating the trainer Job adopted whatever held the name, so a tenant's
    own Job (any image, any command) ran as the TrainingJob's trainer. A Job planted as
    ``<trainingjob>-trainer`` and not owned by the TrainingJob, with or without the operator's
    trainingjob label: the TrainingJob fails naming the conflict, the planted Job keeps its pod
    template, suspend and labels and gets no ownerReference, and no other Job is made."""
    add_queries(control_plane, namespace)
    planted: dict[str, dict] = {}
    for name, mimic in (("squatted", False), ("squatted-labelled", True)):
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{name}-trainer",  # children.child_name
                "labels": {labels.TRAININGJOB: name, "tenant": "planted"} if mimic else {"tenant": "planted"},
            },
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "miner",
                                "image": "tenant.example.com/miner:1",
                                "command": ["sleep", "3600"],
                            }
                        ],
                    }
                },
            },
        }
        control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(job))
        planted[name] = get_json(control_plane, "-n", namespace, "get", "job", f"{name}-trainer")
    for name in planted:
        control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job(name, 2))

    for name in planted:
        done = wait_for(
            lambda n=name: phase_is(control_plane, namespace, n, "Failed"), 60, what=f"{name} fails"
        )
        assert done["status"]["reason"] == "ValidationFailed"
        assert f"'{name}-trainer'" in done["status"]["message"] and "not owned" in done["status"]["message"]
    time.sleep(4)  # one more resync (every 3 s in the tests): nothing adopts the Jobs later either
    jobs = get_json(control_plane, "-n", namespace, "get", "jobs")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{n}-trainer" for n in planted)
    for job in jobs:
        before = planted[job["metadata"]["name"].removesuffix("-trainer")]
        assert not job["metadata"].get("ownerReferences"), job["metadata"]
        assert job["metadata"]["labels"] == before["metadata"]["labels"]
        assert job["spec"]["template"] == before["spec"]["template"]
        assert job["spec"]["suspend"] is True


def test_a_webhook_without_secret_ref_is_refused_by_the_apiserver(control_plane, operator, namespace):
    """Issue 12, L4: a webhook without secretRef was delivered unsigned, so anyone reaching the
    receiver could forge job events. The apiserver refuses such a TrainingJob (schema), naming
    spec.webhooks[0].secretRef."""
    doc = yaml.safe_load(
        training_job("unsigned", 2, webhook={"url": "https://hooks.example.com/x", "events": EVENTS})
    )
    refused = _apply_refused(control_plane, namespace, yaml.safe_dump(doc))
    assert "spec.webhooks[0].secretRef" in refused and "Required" in refused, refused
    assert control_plane.kubectl("-n", namespace, "get", "tj", "unsigned", check=False).returncode != 0


def test_spec_labels_naming_an_operator_label_fail_validation(control_plane, operator, namespace):
    """Issue 12, spec.labels (reserved keys): spec.labels passed through to the trainer Job could
    replace the operator's own labels (the job-id its pods and Service are selected by). A job
    naming training.agentcore.io/job-id fails ValidationFailed naming the key; no Job is made."""
    add_queries(control_plane, namespace)
    doc = yaml.safe_load(training_job("relabel", 2))
    doc["spec"]["labels"] = {"training.agentcore.io/job-id": "x"}
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(doc))
    done = wait_for(lambda: phase_is(control_plane, namespace, "relabel", "Failed"), 60, what="refusal")
    assert done["status"]["reason"] == "ValidationFailed"
    message = done["status"]["message"]
    assert "spec.labels" in message and "training.agentcore.io/job-id" in message, message
    assert get_json(control_plane, "-n", namespace, "get", "jobs")["items"] == []
