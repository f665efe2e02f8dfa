"""Real MCP clients (Python SDK 2.x in both protocol eras, Inspector CLI) and
real MCP servers (the SDK's MCPServer, server-everything over HTTP and stdio)
through the real `warden` binary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError

from wardenkit import ERAS, E2E_DIR, NODE_MODULES, Procs, RawMcp, Warden, mcp_client, node22, wait_for_tools

ORG = "acme"

def org_with_servers(warden: Warden, servers: dict[str, dict]) -> str:
    """An org granted every tool of `servers` (slug -> transport); returns a key."""
    admin = warden.admin
    admin.create_org(ORG)
    for slug, transport in servers.items():
        admin.create_server(slug, transport)
        admin.grant(ORG, slug, "*")
    return admin.create_key(ORG, "e2e-client")

async def with_session(url: str, key: str, body, mode: str = "legacy", **client_kwargs: Any) -> Any:
    async with mcp_client(url, key, mode=mode, **client_kwargs) as client:
        return await body(client)

def run(coro_fn, *args: Any, **kwargs: Any) -> Any:
    return anyio.run(lambda: coro_fn(*args, **kwargs))

def tool_names(result) -> set[str]:
    return {t.name for t in result.tools}

@pytest.mark.parametrize("mode", ERAS)
def test_python_sdk_lists_calls_and_gets_errors_through_warden(procs: Procs, warden: Warden, mode: str) -> None:
    upstream = procs.py_upstream()
    key = org_with_servers(warden, {"py": {"type": "http", "url": upstream}})
    wait_for_tools(warden.mcp, key, {"py__echo"})

    async def on_all(session: Client) -> None:
        assert session.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = tool_names(await session.list_tools())
        assert {"py__echo", "py__add", "py__slow", "py__progress", "py__lossless", "py__fail"} <= names
        echoed = await session.call_tool("py__echo", {"text": "hello ✓"})
        assert not echoed.is_error
        assert echoed.content[0].text == "hello ✓"
        added = await session.call_tool("py__add", {"a": 2, "b": 40})
        assert added.structured_content == {"result": 42}
        failed = await session.call_tool("py__fail", {})
        assert failed.is_error
        assert "fixture failure on purpose" in failed.content[0].text
        with pytest.raises(MCPError) as unknown:
            await session.call_tool("py__no_such_tool", {})
        assert unknown.value.error.code == -32602
        assert "Unknown tool" in unknown.value.error.message
        assert unknown.value.error.data["reason"] == "tool_unknown"
        with pytest.raises(MCPError) as unknown_server:
            await session.call_tool("nosuchserver__echo", {})
        assert unknown_server.value.error.code == -32602

    run(with_session, warden.mcp, key, on_all, mode)

    async def on_one(session: Client) -> None:
        assert {"echo", "add", "slow", "progress", "lossless", "fail"} <= tool_names(await session.list_tools())
        assert (await session.call_tool("echo", {"text": "direct name"})).content[0].text == "direct name"

    run(with_session, warden.server_url("py"), key, on_one, mode)

@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_resources_and_prompts_of_one_server(procs: Procs, warden: Warden, mode: str) -> None:
    key = org_with_servers(warden, {"py": {"type": "http", "url": procs.py_upstream()}})
    wait_for_tools(warden.server_url("py"), key, {"echo"})

    async def on_one(session: Client) -> None:
        read = await session.read_resource("fixture://greeting")
        assert read.contents[0].text == "hello from the fixture"
        prompt = await session.get_prompt("greet", {"name": "Ada"})
        assert "Ada" in prompt.messages[0].content.text
        resources = await session.list_resources()
        assert any(str(r.uri) == "fixture://greeting" for r in resources.resources)
        assert (await session.list_resource_templates()).resource_templates == []
        assert [p.name for p in (await session.list_prompts()).prompts] == ["greet"]

    run(with_session, warden.server_url("py"), key, on_one, mode)

@pytest.mark.parametrize("mode", ERAS)
def test_progress_notifications_reach_the_client_that_asked(procs: Procs, warden: Warden, mode: str) -> None:
    key = org_with_servers(warden, {"py": {"type": "http", "url": procs.py_upstream()}})
    wait_for_tools(warden.mcp, key, {"py__progress"})
    seen: list[tuple[float, float | None, str | None]] = []

    async def body(session: Client) -> None:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        result = await session.call_tool("py__progress", {"steps": 4}, progress_callback=on_progress)
        assert result.content[0].text == "done 4"

    run(with_session, warden.mcp, key, body, mode)
    assert [p for p, _, _ in seen] == [1, 2, 3, 4]
    assert seen[-1] == (4, 4, "step 4")

def test_unknown_fields_pass_through_unchanged(procs: Procs, warden: Warden) -> None:
    upstream = procs.py_upstream()
    key = org_with_servers(warden, {"py": {"type": "http", "url": upstream}})
    wait_for_tools(warden.server_url("py"), key, {"lossless"})

    direct = RawMcp(upstream, None)
    direct.initialize()
    expected = direct.request("tools/call", {"name": "lossless", "arguments": {}})["result"]
    expected_tools = direct.request("tools/list", {})["result"]["tools"]

    through = RawMcp(warden.server_url("py"), key)
    through.initialize()
    got = through.request("tools/call", {"name": "lossless", "arguments": {}})["result"]
    got_tools = through.request("tools/list", {})["result"]["tools"]

    # Warden may add its own `_meta` keys (decision id, revision); everything
    # the upstream sent must arrive unchanged.
    for field_name, value in expected.items():
        if field_name == "_meta":
            for meta_key, meta_value in value.items():
                assert got["_meta"][meta_key] == meta_value
        else:
            assert got[field_name] == value, field_name
    assert got["x-warden-e2e"] == {"nested": [1, 2.5, None, True, "ß"], "empty": {}}
    assert got["content"][0]["x-item-extra"] == {"k": "v"}
    assert got["structuredContent"]["big"] == 12345678901234567
    by_name = {t["name"]: t for t in got_tools}
    for tool in expected_tools:
        assert by_name[tool["name"]]["inputSchema"] == tool["inputSchema"]

def test_missing_or_bad_key_is_401_with_www_authenticate(warden: Warden) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for extra in ({}, {"Authorization": "Bearer wk_not_a_real_key"}):
        resp = httpx2.post(warden.mcp, headers={**headers, **extra}, content=json.dumps(init), timeout=10)
        assert resp.status_code == 401, resp.text
        assert resp.headers.get("www-authenticate", "").lower().startswith("bearer")

def test_server_everything_over_streamable_http_and_stdio(procs: Procs, warden: Warden) -> None:
    http_url = procs.everything_http_upstream()
    everything_js = str(NODE_MODULES / "@modelcontextprotocol/server-everything/dist/index.js")
    key = org_with_servers(warden, {
        "evhttp": {"type": "http", "url": http_url},
        "evstdio": {"type": "stdio", "command": node22(), "args": [everything_js, "stdio"]},
    })

    # A just-added stdio server lists once its child process has started and
    # answered `tools/list` (Node takes a moment to boot).
    wait_for_tools(warden.mcp, key, {"evhttp__echo", "evstdio__echo"}, timeout=30)

    async def body(session: Client) -> None:
        names = tool_names(await session.list_tools())
        for slug in ("evhttp", "evstdio"):
            assert f"{slug}__echo" in names and f"{slug}__get-sum" in names, names
            echoed = await session.call_tool(f"{slug}__echo", {"message": f"via {slug}"})
            assert f"via {slug}" in echoed.content[0].text
            summed = await session.call_tool(f"{slug}__get-sum", {"a": 19, "b": 23})
            assert "42" in summed.content[0].text

    run(with_session, warden.mcp, key, body)

def inspector(*args: str) -> subprocess.CompletedProcess:
    launcher = NODE_MODULES / "@modelcontextprotocol/inspector/clients/launcher/build/index.js"
    return subprocess.run([node22(), str(launcher), "--cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=E2E_DIR, env={"PATH": f"{Path(node22()).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                                            "HOME": str(E2E_DIR / ".deps"), "CI": "true"})

def test_inspector_cli_lists_and_calls_with_a_key(procs: Procs, warden: Warden) -> None:
    key = org_with_servers(warden, {"py": {"type": "http", "url": procs.py_upstream()}})
    wait_for_tools(warden.mcp, key, {"py__echo"})
    auth = ["--transport", "http", "--header", f"Authorization: Bearer {key}"]

    listed = inspector(warden.mcp, *auth, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr + listed.stdout
    assert "py__echo" in listed.stdout

    called = inspector(warden.mcp, *auth, "--method", "tools/call", "--tool-name", "py__echo",
                       "--tool-arg", "text=from-inspector")
    assert called.returncode == 0, called.stderr + called.stdout
    assert "from-inspector" in called.stdout

    denied = inspector(warden.mcp, *auth, "--method", "tools/call", "--tool-name", "py__nope")
    # The Inspector refuses a tool that is not in Warden's tools/list before
    # calling it (list = call seen from the client); Warden's own -32602
    # answer to such a call is checked with the Python SDK above.
    assert denied.returncode != 0, denied.stdout
    assert "tool_not_found" in denied.stderr and "py__nope" in denied.stderr, denied.stderr

    no_key = inspector(warden.mcp, "--transport", "http", "--method", "tools/list")
    assert no_key.returncode != 0
    assert "py__echo" not in no_key.stdout
