"""`warden serve --demo`: the README's first command gives a working gateway
with a demo upstream and a printed key that a real MCP client can use at once."""

from __future__ import annotations

import re
import time

import anyio

from wardenkit import Procs, free_port, mcp_client, new_secret_key, wait_until, warden_bin


def test_demo_mode_prints_a_key_a_real_client_can_use(procs: Procs, tmp_path) -> None:
    port = free_port()
    proc = procs.start([str(warden_bin()), "serve", "--demo", "--listen", f"127.0.0.1:{port}",
                        "--database-url", f"sqlite://{tmp_path / 'demo.db'}"], "warden-demo",
                       env={"WARDEN_SECRET_KEY": new_secret_key()})

    def printed_key() -> str | None:
        text = "\n".join(proc.stdout_lines()) + "\n" + proc.log_tail(20000)
        match = re.search(r"Bearer\s+([A-Za-z0-9_\-\.]{16,})", text)
        return match.group(1) if match else None

    key = wait_until(printed_key, 60, interval=0.1, what="the demo key on stdout")
    time.sleep(0.2)

    async def body() -> None:
        url = f"http://127.0.0.1:{port}/mcp"
        async with mcp_client(url, key) as session:
            # The demo upstream's catalog arrives a moment after start-up.
            with anyio.fail_after(20):
                while True:
                    tools = [t.name for t in (await session.list_tools()).tools]
                    if any(name.endswith("__echo") for name in tools):
                        break
                    await anyio.sleep(0.1)
            echo = next(name for name in tools if name.endswith("__echo"))
            result = await session.call_tool(echo, {"text": "hello demo"})
            assert result.content[0].text == "hello demo"
            add = next(name for name in tools if name.endswith("__add"))
            assert (await session.call_tool(add, {"a": 40, "b": 2})).content[0].text == "42"

    anyio.run(body)
