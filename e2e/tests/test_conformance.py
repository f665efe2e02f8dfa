"""`@modelcontextprotocol/conformance` server scenarios, run against our
fixture directly and through Warden's `/mcp/servers/{slug}`: the same
scenarios must pass both ways."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from wardenkit import E2E_DIR, NODE_MODULES, Procs, Warden, node22, wait_for_tools

CONFORMANCE = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def run_conformance(url: str, out_dir: Path, suite: str = "active") -> dict[str, bool]:
    """Run every server scenario of `suite`; map scenario -> passed (all of its
    checks without FAILURE)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([node22(), str(CONFORMANCE), "server", "--url", url, "--suite", suite,
                             "-o", str(out_dir)], capture_output=True, text=True, timeout=240, cwd=E2E_DIR)
    outcomes: dict[str, bool] = {}
    for checks_file in out_dir.glob("server-*/checks.json"):
        # Directory names are `server-<scenario>-<timestamp>`.
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks_file.parent.name.removeprefix("server-"))
        checks = json.loads(checks_file.read_text())
        outcomes[scenario] = bool(checks) and all(c.get("status") != "FAILURE" for c in checks)
    assert outcomes, f"conformance produced no results:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return outcomes


def test_fixture_passes_every_active_server_scenario_directly(procs: Procs, tmp_path: Path) -> None:
    upstream = procs.conformance_upstream()
    outcomes = run_conformance(upstream, tmp_path / "direct")
    failed = sorted(name for name, ok in outcomes.items() if not ok)
    assert not failed, f"fixture fails scenarios directly: {failed}"
    assert len(outcomes) >= 25, sorted(outcomes)


def test_same_scenarios_pass_through_warden_as_directly(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    upstream = procs.conformance_upstream()
    admin = warden.admin
    admin.create_org("conf")
    admin.http_server("conformance", upstream)
    admin.grant("conf", "conformance", "*")
    key = admin.create_key("conf", "conformance-runner")
    wait_for_tools(warden.server_url("conformance"), key, {"test_simple_text"})

    direct = run_conformance(upstream, tmp_path / "direct")
    # The conformance CLI cannot send headers: a loopback proxy adds the key.
    proxy = procs.auth_proxy(warden.base, key)
    through = run_conformance(f"{proxy}/mcp/servers/conformance", tmp_path / "through")

    assert set(through) == set(direct)
    passed_direct = {name for name, ok in direct.items() if ok}
    passed_through = {name for name, ok in through.items() if ok}
    assert passed_through == passed_direct, (
        f"only directly: {sorted(passed_direct - passed_through)}; "
        f"only through Warden: {sorted(passed_through - passed_direct)}")
