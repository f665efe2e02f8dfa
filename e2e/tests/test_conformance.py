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


# --- the suite that scores 2026-07-28 -------------------------------------------

# `@modelcontextprotocol/conformance` 0.2.0-alpha.12 (pinned in package.json as
# `conformance-next`): 0.1.16 above cannot score the 2026-07-28 revision.
CONFORMANCE_NEXT = NODE_MODULES / "conformance-next" / "dist" / "index.js"
# Tools only the fixture's 2026-07-28 wire lists (multi-round InputRequiredResult).
MRTR_TOOL = "test_input_required_result_elicitation"


def scenario_name(result_dir: Path) -> str:
    return re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", result_dir.name.removeprefix("server-"))


def run_next(url: str, out_dir: Path, *selection: str) -> dict[str, list[dict]]:
    """Run conformance-next server scenarios (`--requirements REV` or
    `--scenario NAME --spec-version REV`); map scenario -> its checks.

    The runner starts the selected scenarios together. On a loaded machine
    one of them may end without writing any result at all (seen once, in a
    run beside a release build): each such scenario is run once more,
    alone, so that every scenario has a verdict (pass or fail) to compare.
    A scenario that again writes nothing fails the run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([node22(), str(CONFORMANCE_NEXT), "server", "--url", url, *selection,
                             "-o", str(out_dir)], capture_output=True, text=True, timeout=300, cwd=E2E_DIR)
    checks: dict[str, list[dict]] = {}
    for checks_file in out_dir.glob("server-*/checks.json"):
        checks[scenario_name(checks_file.parent)] = json.loads(checks_file.read_text())
    assert checks, f"conformance produced no results:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    if "--requirements" in selection:
        revision = selection[selection.index("--requirements") + 1]
        unfinished = {scenario_name(d) for d in out_dir.glob("server-*") if d.is_dir()} - set(checks)
        for scenario in sorted(unfinished):
            checks.update(run_next(url, out_dir / "rerun" / scenario, "--scenario", scenario,
                                   "--spec-version", revision))
    return checks


def passed(checks: dict[str, list[dict]]) -> set[str]:
    return {name for name, cs in checks.items() if cs and all(c.get("status") != "FAILURE" for c in cs)}


def failures(checks: list[dict]) -> list[str]:
    return [f"{c['id']}: {c.get('errorMessage', '')[:200]}" for c in checks if c.get("status") == "FAILURE"]


def register_2026(procs: Procs, warden: Warden) -> tuple[str, str]:
    """The 2026 fixture as server `conf26` of org `conf26`: (upstream URL, key)."""
    upstream = procs.conformance_upstream_2026()
    admin = warden.admin
    admin.create_org("conf26")
    admin.http_server("conf26", upstream)
    admin.grant("conf26", "conf26", "*")
    key = admin.create_key("conf26", "conformance-next-runner")
    # Listed only on the 2026-07-28 wire: Warden must have opened it there.
    wait_for_tools(warden.server_url("conf26"), key, {MRTR_TOOL, "test_simple_text"})
    return upstream, key


def test_both_revisions_pass_through_warden_as_directly(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    upstream, key = register_2026(procs, warden)
    proxy = procs.auth_proxy(warden.base, key)
    # Scenarios the fixture passes directly, at least (so the comparison means
    # something; multi-round InputRequiredResult tools included on 2026-07-28).
    for revision, at_least in (("2026-07-28", 30), ("2025-11-25", 20)):
        direct = run_next(upstream, tmp_path / revision / "direct", "--requirements", revision)
        through = run_next(f"{proxy}/mcp/servers/conf26", tmp_path / revision / "through", "--requirements", revision)
        assert set(through) == set(direct), revision
        only_direct = passed(direct) - passed(through)
        assert not only_direct, {name: failures(through[name]) for name in sorted(only_direct)}
        assert len(passed(direct)) >= at_least, (revision, sorted(passed(direct)))


def test_wardens_front_door_passes_the_stateless_checks(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    _, key = register_2026(procs, warden)
    proxy = procs.auth_proxy(warden.base, key)
    stateless = ("--scenario", "server-stateless", "--spec-version", "2026-07-28")
    # One server's endpoint: every check passes (the diagnostic tools are the
    # upstream's, reached through Warden with the caller's own capabilities).
    one = run_next(f"{proxy}/mcp/servers/conf26", tmp_path / "server", *stateless)["server-stateless"]
    assert len(one) >= 25
    assert not failures(one), failures(one)
    # Warden's own `/mcp`: every rule of the wire passes; only the checks that
    # call a diagnostic tool by its bare name cannot be exercised there (tools
    # are `{slug}__name` on that endpoint), and the suite says so.
    everything = run_next(f"{proxy}/mcp", tmp_path / "all", *stateless)["server-stateless"]
    untestable = [c for c in everything if c.get("status") == "FAILURE" and (c.get("details") or {}).get("untestable")]
    assert failures(everything) == failures(untestable), failures(everything)
    by_id = {c["id"]: c["status"] for c in everything}
    for rule in ("sep-2575-request-meta-invalid-missing-meta", "sep-2575-http-server-meta-invalid-400",
                 "sep-2575-server-unsupported-version-error", "sep-2575-http-server-unsupported-version-400",
                 "sep-2575-http-server-header-mismatch-400", "sep-2575-http-server-method-not-found-404",
                 "sep-2575-http-server-method-not-found-404-initialize", "sep-2575-http-server-error-jsonrpc-id",
                 "sep-2575-server-implements-discover", "sep-2575-server-identifies-in-result-meta",
                 "sep-2575-server-sends-subscription-ack", "sep-2575-server-tags-subscription-id"):
        assert by_id.get(rule) == "SUCCESS", (rule, by_id.get(rule))
