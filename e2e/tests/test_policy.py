"""The end-to-end policy story and live revocation (issues 4 and 5), with the
real Python MCP SDK 2.x client (both protocol eras), the real `warden` binary
and a real upstream."""

from __future__ import annotations

import json
import time

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import MCPError
from mcp.client.subscriptions import ToolsListChanged

from wardenkit import ERAS, Admin, Procs, Warden, mcp_client, wait_for_tools, wait_until

ORG = "acme"


def story_setup(warden: Warden, upstream: str) -> tuple[str, Admin]:
    """Org, server, grant, team, agent with the server attached, a key bound to
    the agent; returns the key and an org admin's API client."""
    platform = warden.admin
    platform.create_org(ORG)
    platform.http_server("py", upstream)
    platform.grant(ORG, "py", "*")
    platform.create_team(ORG, "support")
    platform.create_agent(ORG, "helper", team="support")
    # New agents start with an empty scope: attach the server explicitly.
    platform.set_agent_scope(ORG, "helper", {"servers": {"py": ["echo", "slow"]}})
    key = platform.create_key(ORG, "helper-key", team="support", agent="helper")
    wait_for_tools(warden.mcp, key, {"py__echo", "py__slow"})
    org_admin = Admin(warden.base, platform.org_admin_token(ORG))
    return key, org_admin


def denial_reason(err: MCPError, *, call_time: bool = True) -> str:
    """The reason code of a refused call; a call-time denial also names its decision."""
    assert err.error.code == -32602, err.error
    data = err.error.data or {}
    if call_time:
        assert "Unknown tool" in err.error.message
        assert data.get("decision_id"), data
    return data["reason"]


def names(listing: types.ListToolsResult) -> set[str]:
    return {t.name for t in listing.tools}


@pytest.mark.parametrize("mode", ERAS)
def test_org_admin_disable_is_in_force_for_the_very_next_request(procs: Procs, warden: Warden, mode: str) -> None:
    key, org_admin = story_setup(warden, procs.py_upstream())

    async def body() -> None:
        async with mcp_client(warden.mcp, key, mode=mode) as session:
            # The agent's attachment narrows the org grant to echo + slow.
            assert names(await session.list_tools()) == {"py__echo", "py__slow"}
            assert (await session.call_tool("py__echo", {"text": "hi"})).content[0].text == "hi"
            with pytest.raises(MCPError) as narrowed:
                await session.call_tool("py__add", {"a": 1, "b": 2})
            assert denial_reason(narrowed.value) == "not_granted_by_agent"

            org_admin.set_grant_enabled(ORG, "py", False)
            # Same session, very next request: gone from the list, refused on call.
            assert names(await session.list_tools()) == set()
            with pytest.raises(MCPError) as refused:
                await session.call_tool("py__echo", {"text": "hi"})
            assert denial_reason(refused.value) == "server_disabled_by_org"

            org_admin.set_grant_enabled(ORG, "py", True)
            assert names(await session.list_tools()) == {"py__echo", "py__slow"}
            assert (await session.call_tool("py__echo", {"text": "back"})).content[0].text == "back"

    anyio.run(body)


@pytest.mark.parametrize("mode", ERAS)
def test_gateway_kill_switch_and_other_orgs_never_see_the_server(procs: Procs, warden: Warden, mode: str) -> None:
    key, _ = story_setup(warden, procs.py_upstream())
    platform = warden.admin
    platform.create_org("other")
    other_key = platform.create_key("other", "other-key")

    async def body() -> None:
        async with mcp_client(warden.mcp, other_key, mode=mode) as other:
            assert names(await other.list_tools()) == set()
            with pytest.raises(MCPError) as refused:
                await other.call_tool("py__echo", {"text": "x"})
            assert denial_reason(refused.value) == "server_not_granted_to_org"

        async with mcp_client(warden.mcp, key, mode=mode) as session:
            platform.set_server_enabled("py", False)
            assert names(await session.list_tools()) == set()
            with pytest.raises(MCPError) as refused:
                await session.call_tool("py__echo", {"text": "x"})
            assert denial_reason(refused.value) == "server_disabled"
            platform.set_server_enabled("py", True)
            assert names(await session.list_tools()) == {"py__echo", "py__slow"}

    anyio.run(body)


def test_live_session_gets_list_changed_after_a_disable(procs: Procs, warden: Warden) -> None:
    key, org_admin = story_setup(warden, procs.py_upstream())

    async def body() -> None:
        changed = anyio.Event()

        async def on_message(message) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                changed.set()

        # 2025-11-25 era: the notification arrives on the session's GET stream.
        async with mcp_client(warden.mcp, key, message_handler=on_message) as session:
            assert names(await session.list_tools()) == {"py__echo", "py__slow"}
            # Give the client's GET stream a moment to attach.
            await anyio.sleep(0.5)
            await anyio.to_thread.run_sync(lambda: org_admin.set_grant_enabled(ORG, "py", False))
            with anyio.fail_after(5):
                await changed.wait()
            assert names(await session.list_tools()) == set()

    anyio.run(body)


def test_listener_gets_list_changed_after_a_disable_2026_era(procs: Procs, warden: Warden) -> None:
    key, org_admin = story_setup(warden, procs.py_upstream())

    async def body() -> None:
        # 2026-07-28 era: the notification arrives on a `subscriptions/listen` stream.
        async with mcp_client(warden.mcp, key, mode="auto") as client:
            assert client.protocol_version == "2026-07-28"
            assert names(await client.list_tools()) == {"py__echo", "py__slow"}
            async with client.listen(tools_list_changed=True) as events:
                await anyio.to_thread.run_sync(lambda: org_admin.set_grant_enabled(ORG, "py", False))
                received = []
                with anyio.fail_after(5):
                    async for event in events:
                        received.append(event)
                        break
                assert received == [ToolsListChanged()], received
            assert names(await client.list_tools()) == set()

    anyio.run(body)


@pytest.mark.parametrize("mode", ERAS)
def test_long_running_call_is_cut_off_by_a_disable(procs: Procs, warden: Warden, mode: str) -> None:
    upstream = procs.py_upstream()
    key, org_admin = story_setup(warden, upstream)
    state_url = upstream.removesuffix("/mcp") + "/_state"

    async def body() -> None:
        async with mcp_client(warden.mcp, key, mode=mode) as session:
            outcome: dict = {}

            async def long_call() -> None:
                started = time.monotonic()
                try:
                    await session.call_tool("py__slow", {"seconds": 30, "tag": "cut-off"})
                    outcome["result"] = "completed"
                except MCPError as err:
                    outcome["error"] = err
                outcome["seconds"] = time.monotonic() - started

            async with anyio.create_task_group() as tg:
                tg.start_soon(long_call)
                await anyio.to_thread.run_sync(lambda: wait_until(
                    lambda: "cut-off" in httpx2.get(state_url).json()["started"], 10, what="slow call upstream"))
                await anyio.to_thread.run_sync(lambda: org_admin.set_grant_enabled(ORG, "py", False))

            assert "error" in outcome, outcome
            assert denial_reason(outcome["error"], call_time=False) == "server_disabled_by_org"
            assert outcome["seconds"] < 10
        # The upstream was told to stop (notifications/cancelled).
        await anyio.to_thread.run_sync(lambda: wait_until(
            lambda: "cut-off" in httpx2.get(state_url).json()["cancelled"], 10, what="upstream cancellation"))

    anyio.run(body)


def test_client_credentials_never_go_upstream(procs: Procs, warden: Warden, tmp_path) -> None:
    record = tmp_path / "upstream-requests.jsonl"
    upstream = procs.py_upstream(record=record, name="recording-upstream")
    platform = warden.admin
    platform.create_org(ORG)
    platform.http_server("rec", upstream, secret_headers={"X-Upstream-Token": "upstream-secret-123"})
    platform.grant(ORG, "rec", "*")
    key = platform.create_key(ORG, "client-key")
    wait_for_tools(warden.mcp, key, {"rec__echo"})

    async def body() -> None:
        async with mcp_client(warden.mcp, key, headers={"X-Custom-Client": "client-header"}) as session:
            assert "rec__echo" in names(await session.list_tools())
            await session.call_tool("rec__echo", {"text": "payload"})

    anyio.run(body)
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert any("payload" in r["body"] for r in records), "the call never reached the upstream"
    for r in records:
        header_names = {name.lower() for name, _ in r["headers"]}
        values = " ".join(value for _, value in r["headers"])
        assert key not in values and key not in r["body"], f"client key leaked upstream: {r}"
        assert warden.admin_token not in values
        assert not any(v.lower().startswith("bearer") for n, v in r["headers"] if n.lower() == "authorization"), r
        assert "x-upstream-token" in header_names, "Warden's own upstream secret was not injected"
        assert dict((n.lower(), v) for n, v in r["headers"])["x-upstream-token"] == "upstream-secret-123"
