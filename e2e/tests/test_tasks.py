"""Tasks of the `io.modelcontextprotocol/tasks` extension (2026-07-28) through
Warden, against a real upstream on the Python MCP SDK 2.x
(fixtures/conformance_tasks_2026.py): the conformance-next tasks scenarios pass
through `/mcp/servers/{slug}` wherever they pass directly, and a task is its
creator's alone (another org's key, on the same server, cannot see, poll or
cancel it; a revoked key's task is cancelled upstream)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
from test_conformance import failures, passed, run_next
from wardenkit import E2E_DIR, FIXTURES, Procs, Warden, python, wait_until

TASKS = "io.modelcontextprotocol/tasks"
# Every tasks scenario of conformance-next 0.2.0-alpha.12 (extension
# scenarios: run with --force, they are not on the spec timeline).
SCENARIOS = ("tasks-lifecycle", "tasks-capability-negotiation", "tasks-wire-fields",
             "tasks-request-state-removal", "tasks-mrtr-input", "tasks-request-headers",
             "tasks-dispatch-and-envelope", "tasks-status-notifications",
             "tasks-required-task-error", "tasks-mrtr-composition")


def tasks_upstream(procs: Procs) -> str:
    proc = procs.start([python(), str(FIXTURES / "conformance_tasks_2026.py"), "--port", "0"],
                       "tasks-fixture-2026", cwd=E2E_DIR)
    return f"http://127.0.0.1:{proc.listening_port()}/mcp"


class Stateless:
    """A hand-rolled 2026-07-28 caller (every request carries its `_meta` and
    the routing headers)."""

    def __init__(self, url: str, key: str, declares_tasks: bool = True) -> None:
        self.url = url
        self.key = key
        caps: dict[str, Any] = {"extensions": {TASKS: {}}} if declares_tasks else {}
        self.meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                     "io.modelcontextprotocol/clientCapabilities": caps,
                     "io.modelcontextprotocol/clientInfo": {"name": "warden-e2e-tasks", "version": "1"}}
        self.http = httpx2.Client(timeout=30)
        self.next_id = 0

    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        self.next_id += 1
        name = params.get("name") or params.get("taskId")
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
        if name:
            headers["Mcp-Name"] = name
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": {**params, "_meta": self.meta}}
        resp = self.http.post(self.url, headers=headers, content=json.dumps(body))
        return resp.status_code, resp.json()

    def close(self) -> None:
        self.http.close()


def setup_two_orgs(procs: Procs, warden: Warden) -> tuple[str, str, str, int]:
    """Platform server `tasks26` granted to orgs `ta` and `tb`: (upstream, key A,
    key B, key A's id)."""
    upstream = tasks_upstream(procs)
    admin = warden.admin
    admin.http_server("tasks26", upstream)
    for org in ("ta", "tb"):
        admin.create_org(org)
        admin.grant(org, "tasks26", "*")
    created = admin.call("POST", "/orgs/ta/keys", {"name": "tenant-a"})
    key_b = admin.create_key("tb", "tenant-b")
    url = warden.server_url("tasks26")

    def ready() -> bool:
        client = Stateless(url, key_b)
        try:
            status, reply = client.call("tools/call", {"name": "greet", "arguments": {"name": "x"}})
            return status == 200 and "result" in reply
        finally:
            client.close()

    wait_until(ready, 30, interval=0.1, what="tasks26 through Warden")
    return upstream, created["secret"], key_b, created["item"]["id"]


def test_every_tasks_scenario_that_passes_directly_passes_through_warden(
        procs: Procs, warden: Warden, tmp_path: Path) -> None:
    upstream, key_a, _, _ = setup_two_orgs(procs, warden)
    proxy = procs.auth_proxy(warden.base, key_a)
    direct: dict[str, list[dict]] = {}
    through: dict[str, list[dict]] = {}
    for scenario in SCENARIOS:
        selection = ("--scenario", scenario, "--spec-version", "2026-07-28", "--force")
        direct.update(run_next(upstream, tmp_path / "direct" / scenario, *selection))
        through.update(run_next(f"{proxy}/mcp/servers/tasks26", tmp_path / "through" / scenario, *selection))
    assert set(through) == set(direct) == set(SCENARIOS)
    only_direct = passed(direct) - passed(through)
    assert not only_direct, {name: failures(through[name]) for name in sorted(only_direct)}
    # The fixture passes all but `tasks-request-headers` directly (the SDK does
    # not check `Mcp-Name` on task methods); Warden does, so through it all pass.
    assert passed(direct) >= set(SCENARIOS) - {"tasks-request-headers"}, failures(
        direct.get("tasks-request-headers", []))
    assert passed(through) == set(SCENARIOS), {n: failures(c) for n, c in through.items() if failures(c)}


def test_a_task_is_its_creators_alone_and_ends_with_its_key(procs: Procs, warden: Warden) -> None:
    upstream, key_a, key_b, key_a_id = setup_two_orgs(procs, warden)
    url = warden.server_url("tasks26")
    a, b = Stateless(url, key_a), Stateless(url, key_b)
    undeclared = Stateless(url, key_a, declares_tasks=False)
    try:
        status, created = a.call("tools/call", {"name": "slow_compute", "arguments": {"seconds": 30, "label": "a"}})
        assert status == 200 and created["result"]["resultType"] == "task", created
        task = created["result"]["taskId"]
        status, got = a.call("tasks/get", {"taskId": task})
        assert got["result"]["status"] == "working", got
        for method in ("tasks/get", "tasks/update", "tasks/cancel"):
            params: dict[str, Any] = {"taskId": task}
            if method == "tasks/update":
                params["inputResponses"] = {}
            status, refused = b.call(method, params)
            assert refused["error"]["code"] == -32602, (method, refused)
            assert refused["error"]["data"]["reason"] == "task_unknown", (method, refused)
        status, refused = undeclared.call("tasks/get", {"taskId": task})
        assert status == 400 and refused["error"]["code"] == -32021, refused
        # Still A's, still running: B's cancel never reached the upstream.
        status, got = a.call("tasks/get", {"taskId": task})
        assert got["result"]["status"] == "working", got

        # A's key is revoked: its task is cancelled upstream, and is no other
        # key's (not even a new key of the same org).
        warden.admin.revoke_key("ta", key_a_id)
        key_a2 = warden.admin.create_key("ta", "tenant-a-2")
        a2 = Stateless(url, key_a2)
        try:
            status, refused = a2.call("tasks/get", {"taskId": task})
            assert refused["error"]["data"]["reason"] == "task_unknown", refused
        finally:
            a2.close()
        # Observe upstream directly: the task is cancelled there.
        direct = Stateless(upstream, "unused")
        try:
            def cancelled() -> bool:
                _, reply = direct.call("tasks/get", {"taskId": task})
                return reply.get("result", {}).get("status") == "cancelled"

            wait_until(cancelled, 10, interval=0.1, what="the revoked key's task cancelled upstream")
        finally:
            direct.close()
    finally:
        a.close()
        b.close()
        undeclared.close()

