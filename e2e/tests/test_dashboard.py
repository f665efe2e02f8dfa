"""The Grafana dashboard (docs/grafana/warden.json) parses, and every metric it
queries is one Warden exports: seen on a real warden's /metrics after traffic,
or, for metrics only rare events emit (drops, caps, expiry, limits), named in
Warden's source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2

from wardenkit import Procs, RawMcp, Warden, wait_until

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana" / "warden.json"
# Emitted only when the event happens; a test run need not provoke them.
RARE = {
    "warden_audit_dropped_total",
    "warden_gateway_sessions_refused_total",
    "warden_gateway_sessions_expired_total",
    "warden_upstream_errors_total",
    "warden_limit_refusals_total",
    "warden_limit_inflight",
    "warden_http_connections_closed_total",
    "warden_http_connections_refused_total",
}
# The limit metrics come with the per-call limits step; allowed if absent.
MAYBE_ABSENT = {"warden_limit_refusals_total", "warden_limit_inflight"}
SUFFIXES = ("_sum", "_count", "_bucket")


def queried_metrics() -> set[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(panels: list) -> None:
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []) if "expr" in t)
            walk(p.get("panels", []))
    walk(dash["panels"])
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            exprs.append(q["query"])
    assert len(exprs) >= 15, exprs
    return {m for e in exprs for m in re.findall(r"\bwarden_[a-z0-9_]+\b", e)}


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def source_text() -> str:
    return "\n".join(p.read_text() for p in (REPO / "crates").rglob("*.rs"))


def test_dashboard_queries_only_exported_metrics(procs: Procs, warden: Warden) -> None:
    admin = warden.admin
    admin.create_org("acme")
    admin.create_server("py", {"type": "http", "url": procs.py_upstream()})
    admin.grant("acme", "py", ["echo"])
    key = admin.create_key("acme", "dash")

    def traffic() -> bool:
        c = RawMcp(warden.server_url("py"), key)
        try:
            c.initialize()
            ok = "result" in c.request("tools/call", {"name": "echo", "arguments": {"text": "x"}})
            c.request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})  # denied
            return ok
        finally:
            c.close()
    wait_until(traffic, 20, interval=0.1, what="an allowed call")
    httpx2.post(warden.mcp, headers={"Authorization": "Bearer wk_not_a_key"}, content="{}", timeout=10)  # a refusal

    scraped = httpx2.get(warden.base + "/metrics", timeout=10).text
    exported = {m.group(1) for m in re.finditer(r"^(warden_[a-z0-9_]+)[{ ]", scraped, re.M)}
    source = source_text()
    for name in sorted(queried_metrics()):
        if name in exported:
            continue
        if base(name) in exported and name.endswith(SUFFIXES):
            continue
        if name in MAYBE_ABSENT:
            continue
        assert name in RARE, f"{name} is queried but not exported: {sorted(exported)}"
        assert f'"{name}"' in source, f"{name} is not a metric Warden's source names"
    # And the other way: every metric this warden exports has a panel.
    queried = {base(n) for n in queried_metrics()}
    missing = {base(n) for n in exported} - queried
    assert not missing, f"exported but on no dashboard panel: {sorted(missing)}"
