"""SSE polling through Warden: a real upstream on the Python `mcp` SDK 2.x with
an event store and a `retry` interval closes a call's stream before its answer
(`Context.close_sse_stream()`); Warden, as that upstream's client, reconnects
with `GET` + `Last-Event-ID` and relays the answer. The SDK's own client gets
the same result through Warden as it does directly."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp import Client

from wardenkit import ERAS, FIXTURES, Procs, Warden, mcp_client, python, wait_for_tools

RETRY_MS = 300


def polling_upstream(procs: Procs) -> str:
    proc = procs.start([python(), str(FIXTURES / "py_polling_upstream.py"), "--port", "0",
                        "--retry-ms", str(RETRY_MS)], "py-polling")
    return f"http://127.0.0.1:{proc.listening_port()}/mcp"


def upstream_state(url: str) -> dict:
    return httpx2.get(url.removesuffix("/mcp") + "/_state", timeout=10).json()


async def call_wait(url: str, key: str, tool: str, mode: str) -> str:
    async with mcp_client(url, key, mode=mode) as client:
        result = await client.call_tool(tool, {"seconds": 1.0})
        assert not result.is_error, result
        return result.content[0].text


def test_the_sdk_client_polls_the_upstream_directly(procs: Procs) -> None:
    """The baseline: the fixture really does SSE polling, and the SDK's client
    follows it on its own."""
    upstream = polling_upstream(procs)
    text = anyio.run(call_wait, upstream, "unused", "wait", "legacy")
    assert text == "waited 1.0s"
    state = upstream_state(upstream)
    assert state["calls"] == 1
    assert state["resumes"], "the client reconnected with Last-Event-ID"


@pytest.mark.parametrize("mode", ERAS)
def test_a_call_to_a_polling_upstream_succeeds_through_warden(procs: Procs, warden: Warden, mode: str) -> None:
    upstream = polling_upstream(procs)
    admin = warden.admin
    admin.create_org("acme")
    admin.create_server("poll", {"type": "http", "url": upstream})
    admin.grant("acme", "poll", "*")
    key = admin.create_key("acme", "e2e-client")
    wait_for_tools(warden.mcp, key, {"poll__wait"})
    before = len(upstream_state(upstream)["resumes"])

    text = anyio.run(call_wait, warden.mcp, key, "poll__wait", mode)

    assert text == "waited 1.0s"
    state = upstream_state(upstream)
    assert state["calls"] == 1
    # Warden, not the client, reconnected to the upstream: with the id of
    # the priming event of the call's stream.
    resumes = state["resumes"][before:]
    assert resumes, "Warden reconnected with Last-Event-ID"
