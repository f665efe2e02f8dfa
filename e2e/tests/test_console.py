"""The admin console (issue 11) in a real browser: Debian's Chromium driven by
Playwright for Python (pointed at /usr/bin/chromium, never a downloaded
browser), against the real `warden` binary, a real upstream and the real
Python MCP SDK client.

Screenshots of the main pages are written to docs/screenshots/ (or
$WARDEN_SCREENSHOTS) and shown in README.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import MCPError
from playwright.async_api import Browser, Page, async_playwright

from wardenkit import E2E_DIR, FIXTURES, Procs, Warden, free_port, mcp_client, node22, wait_until

ORG = "acme"
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("WARDEN_SCREENSHOTS", Path(__file__).resolve().parents[2] / "docs" / "screenshots"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

async def launch(p) -> Browser:
    return await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/console")
    assert page.url.endswith("/console/login")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/console/orgs$"))


async def wait_for_catalog(page: Page, base: str, tools: list[str]) -> None:
    """Warden loads an upstream's catalog in the background after it is added."""
    with anyio.fail_after(20):
        while True:
            await page.goto(f"{base}/console/orgs/{ORG}")
            text = await page.locator("td.tools").first.inner_text()
            if all(t in text for t in tools):
                return
            await anyio.sleep(0.2)


async def wait_text(page: Page, selector: str, predicate, timeout: float = 10) -> str:
    """Until the text of `selector` satisfies `predicate`. Polled from here:
    the console's CSP forbids the string evaluation `wait_for_function` uses."""
    with anyio.fail_after(timeout):
        while True:
            loc = page.locator(selector)
            if await loc.count() == 1:
                text = await loc.inner_text()
                if predicate(text):
                    return text
            await anyio.sleep(0.1)


def names(listing: types.ListToolsResult) -> set[str]:
    return {t.name for t in listing.tools}


def test_seed_scenario_in_the_browser(procs: Procs, warden: Warden) -> None:
    """An org admin signs in, attaches a server to an assistant with two tools;
    an MCP client with the assistant's key calls one; the admin switches the
    server off in the console (after seeing the impact); the client's next
    list and call are refused and its live session is told; explain names
    `server_disabled_by_org`; switching on restores exactly."""
    platform = warden.admin
    platform.create_org(ORG)
    platform.http_server("py", procs.py_upstream())
    platform.grant(ORG, "py", "*")
    org_token = platform.org_admin_token(ORG)

    async def body() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"{warden.base}/console/login")
            await shot(page, "login")
            await sign_in(page, warden.base, org_token)
            await shot(page, "orgs")
            await wait_for_catalog(page, warden.base, ["echo", "slow", "add"])
            await shot(page, "org")

            # Keyboard: the first Tab reaches the skip link.
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"

            # Create the assistant; the console goes on to its scope picker.
            await page.get_by_role("link", name="Agents").click()
            await page.get_by_label("Slug").fill("helper")
            await page.get_by_role("button", name="Create agent").click()
            await page.wait_for_url(re.compile(r".*/scope/agent/helper$"))
            offered = await page.locator("[data-server=py] input[data-tool]").evaluate_all(
                "els => els.map(e => e.value)")
            # Exactly the API's picker for the same agent (the org grants `*`:
            # the whole live catalog).
            options = platform.call("GET", f"/orgs/{ORG}/agents/helper/scope/options")
            api_tools = next(s["tools"] for s in options["servers"] if s["server"] == "py")
            assert sorted(offered) == sorted(api_tools) and {"add", "echo", "slow"} <= set(offered), offered
            await page.locator("input[name=server][value=py]").check()
            await page.locator("input[name='tool:py'][value=echo]").check()
            await page.locator("input[name='tool:py'][value=slow]").check()
            await shot(page, "scope-picker")
            await page.get_by_role("button", name="Save scope").click()
            await page.wait_for_url(re.compile(r".*/agents$"))
            assert "py: echo, slow" in await page.locator("[data-testid=agent-scope]").inner_text()

            # A key bound to the assistant: the secret is shown once.
            await page.get_by_role("link", name="Keys").click()
            await page.get_by_label("Name", exact=True).fill("helper-key")
            await page.get_by_label("Agent", exact=True).select_option("helper")
            await page.get_by_role("button", name="Create key").click()
            key = await page.locator("[data-testid=key-secret]").input_value()
            assert key and key not in page.url
            assert await page.evaluate("JSON.stringify(window.localStorage)") == "{}"

            changed = anyio.Event()

            async def on_message(message) -> None:
                if isinstance(message, types.ToolListChangedNotification):
                    changed.set()

            async with mcp_client(warden.mcp, key, message_handler=on_message) as session:
                assert names(await session.list_tools()) == {"py__echo", "py__slow"}
                assert (await session.call_tool("py__echo", {"text": "hi"})).content[0].text == "hi"
                await anyio.sleep(0.5)  # the session's GET stream attaches

                # Live page: the session is there.
                await page.goto(f"{warden.base}/console/orgs/{ORG}/live")
                await wait_text(page, "[data-testid=live-sessions]", lambda t: t == "1")
                await shot(page, "live")

                # Switch off: the impact comes first.
                await page.goto(f"{warden.base}/console/orgs/{ORG}")
                await page.locator("tr[data-server=py]").get_by_role("link", name="Switch off").click()
                summary = await page.locator("[data-testid=impact-summary]").inner_text()
                assert summary.startswith("1 principal(s) and 1 live session(s) are affected"), summary
                assert "py: echo, slow" in await page.locator("table").inner_text()
                await shot(page, "impact")
                await page.get_by_role("button", name="Confirm: switch off").click()
                await page.wait_for_url(re.compile(rf".*/console/orgs/{ORG}$"))
                assert await page.locator("tr[data-server=py] [data-testid=grant-state]").inner_text() == "off"

                # The live session is told, and its next list and call are refused.
                with anyio.fail_after(5):
                    await changed.wait()
                assert names(await session.list_tools()) == set()
                with pytest.raises(MCPError) as refused:
                    await session.call_tool("py__echo", {"text": "hi"})
                assert refused.value.error.data["reason"] == "server_disabled_by_org"

                # Explain names the org's switch, with every check.
                await page.get_by_role("link", name="Explain").click()
                await page.get_by_label("Server").select_option("py")
                await page.get_by_label("Tool").fill("echo")
                await page.get_by_role("button", name="Explain").click()
                assert await page.locator("[data-testid=verdict]").inner_text() == "Denied"
                assert await page.locator("[data-testid=reason]").inner_text() == "server_disabled_by_org"
                assert await page.locator("tbody tr").count() == 12
                await shot(page, "explain")

                # Effective access: nothing usable now.
                await page.get_by_role("link", name="Effective access").click()
                await page.get_by_role("button", name="Show access").click()
                assert "No server is usable" in await page.locator("[data-testid=access-table]").inner_text()

                # Switch back on: exactly what was there.
                changed = anyio.Event()
                await page.goto(f"{warden.base}/console/orgs/{ORG}/grants/py/switch?enabled=true")
                await page.get_by_role("button", name="Confirm: switch on").click()
                await page.wait_for_url(re.compile(rf".*/console/orgs/{ORG}$"))
                assert names(await session.list_tools()) == {"py__echo", "py__slow"}
                assert (await session.call_tool("py__echo", {"text": "back"})).content[0].text == "back"
                await page.get_by_role("link", name="Effective access").click()
                await page.get_by_role("button", name="Show access").click()
                table = await page.locator("[data-testid=access-table]").inner_text()
                assert "echo, slow" in table, table
                await shot(page, "access")

                # Live page follows another admin's change without a reload.
                await page.goto(f"{warden.base}/console/orgs/{ORG}/live")
                before = await page.locator("[data-testid=live-revision]").inner_text()
                marker = await page.evaluate("window.__marker = Math.random()")
                await anyio.to_thread.run_sync(lambda: platform.create_team(ORG, "ops"))
                await wait_text(page, "[data-testid=live-revision]", lambda t: t != before)
                assert await page.evaluate("window.__marker") == marker, "the page was reloaded"
                rate = float(await page.locator("[data-testid=live-rate]").inner_text())
                assert rate > 0, "calls in the last minute"

            # Audit: the refused call, filtered by principal and reason.
            with anyio.fail_after(10):
                while True:
                    await page.goto(f"{warden.base}/console/audit?org={ORG}&kind=decision&key=1"
                                    "&reason=server_disabled_by_org")
                    rows = await page.locator("tbody tr").all_inner_texts()
                    if any("denied (server_disabled_by_org)" in r for r in rows):
                        break
                    await anyio.sleep(0.2)
            assert all("server_disabled_by_org" in r for r in rows), rows

            # Audit: both switches, by the org admin.
            await page.goto(f"{warden.base}/console/audit?org={ORG}&kind=admin_change&entity=org_grant")
            actors = await page.locator("[data-testid=audit-actor]").all_inner_texts()
            assert len(actors) >= 2 and all(a.startswith("admin:org-admin@org:") for a in actors[:2]), actors
            await shot(page, "audit")

            # Narrow window: no horizontal scrolling of the page.
            await page.set_viewport_size({"width": 390, "height": 800})
            await page.goto(f"{warden.base}/console/orgs/{ORG}")
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            await shot(page, "org-narrow")

            # Sign out: the session is gone.
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(re.compile(r".*/console/login$"))
            await page.goto(f"{warden.base}/console/orgs")
            assert page.url.endswith("/console/login")
            await browser.close()

    anyio.run(body)


def test_pickers_offer_the_parents_allowance_and_other_orgs_do_not_exist(procs: Procs, warden: Warden) -> None:
    platform = warden.admin
    platform.create_org(ORG)
    platform.create_org("globex")
    platform.http_server("py", procs.py_upstream())
    platform.grant(ORG, "py", ["echo", "add"])
    platform.grant("globex", "py", "*")
    platform.create_team("globex", "secret-team")
    org_token = platform.org_admin_token(ORG)

    async def body() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await sign_in(page, warden.base, org_token)
            await wait_for_catalog(page, warden.base, ["echo", "add"])
            await page.get_by_role("link", name="Teams").click()
            await page.get_by_label("Slug").fill("eng")
            await page.get_by_role("button", name="Create team").click()
            await page.get_by_role("link", name="Edit scope").click()
            offered = await page.locator("input[data-tool]").evaluate_all("els => els.map(e => e.value)")
            assert sorted(offered) == ["add", "echo"], offered
            # Every other org is not found, whatever URL is typed.
            assert "globex" not in await page.content()
            await page.goto(f"{warden.base}/console/orgs")
            assert "globex" not in await page.content()
            for path in ["/console/orgs/globex", "/console/orgs/globex/teams",
                         "/console/orgs/globex/scope/team/secret-team", "/console/orgs/globex/keys",
                         "/console/orgs/globex/grants/py/switch?enabled=false", "/console/audit?org=globex"]:
                resp = await page.goto(f"{warden.base}{path}")
                assert resp is not None and resp.status == 404, path
                assert "secret-team" not in await page.content()
                assert await page.get_by_role("alert").count() == 1

            # The platform admin sees both orgs and the global servers.
            platform_page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            await sign_in(platform_page, warden.base, warden.admin_token)
            assert "globex" in await platform_page.content()
            await platform_page.get_by_role("link", name="Servers").click()
            catalog = await platform_page.locator("tr[data-server=py] td.tools").inner_text()
            assert "echo Echo the text back" in catalog, catalog
            assert await platform_page.locator("tr[data-server=py] [data-testid=health]").inner_text() == "connected"
            await shot(platform_page, "servers")
            # Edit: the URL is there, secret header values never are.
            await platform_page.locator("tr[data-server=py]").get_by_role("link", name="Edit server py").click()
            await platform_page.wait_for_url(re.compile(r".*/console/servers/py/edit$"))
            assert (await platform_page.get_by_label("URL").input_value()).startswith("http://127.0.0.1:")
            await platform_page.get_by_label("Call timeout (ms)").fill("7000")
            await shot(platform_page, "server-edit")
            await platform_page.get_by_role("button", name="Save server").click()
            await platform_page.wait_for_url(re.compile(r".*/console/servers$"))
            assert platform.call("GET", "/servers/py")["timeout_ms"] == 7000
            await browser.close()

    anyio.run(body)


def start_idp(procs: Procs, warden: Warden) -> str:
    """The real OpenID Provider of e2e/fixtures/oidc_provider.mjs; its client
    `warden-console` redirects to this Warden's /console/login/callback."""
    port = free_port()
    proc = procs.start([node22(), str(FIXTURES / "oidc_provider.mjs"), "--port", str(port),
                        "--resource-base", warden.base,
                        "--redirect", f"http://127.0.0.1:{free_port()}/callback"], "oidc-provider", cwd=E2E_DIR)
    proc.listening_port()
    return f"http://127.0.0.1:{port}"


async def idp_sign_in(page: Page, base: str, user: str) -> None:
    """From the console's sign-in page through the provider's own login and
    consent forms (oidc-provider's interaction pages), as `user`."""
    await page.goto(f"{base}/console/login")
    await page.get_by_role("link", name="Sign in with corp").click()
    await page.locator("input[name=login]").fill(user)
    await page.locator("input[name=password]").fill("any")
    await page.locator("button[type=submit]").click()
    # Consent for the console client (first sign-in of this browser).
    await page.locator("button[type=submit]").click()


def test_people_sign_in_to_the_console_at_the_org_identity_provider(procs: Procs, warden: Warden) -> None:
    """The console is an OpenID Connect relying party of the org's provider
    (authorization code + PKCE + state + nonce): an org admin by group signs
    in through the provider's login form, sees only their org, and their
    changes are audited under their name; a person in no admin group gets a
    clear refusal page; a callback this browser did not start is refused."""
    platform = warden.admin
    platform.create_org(ORG)
    platform.create_org("globex")
    platform.create_team("globex", "secret-team")
    issuer = start_idp(procs, warden)
    platform.call("POST", "/identity-providers", {
        "slug": "corp", "issuer": issuer,
        "orgs": {"kind": "org", "org": ORG},
        "groups_claim": "groups",
        # Access tokens must carry `mcp`; an ID token is not asked for it.
        "required_scopes": ["mcp"],
        "admin_groups": {"org_admin": "acme-admins", "platform_admin": "warden-admins"},
        "console_client_id": "warden-console",
    })
    # The gateway loads providers at the new revision, right after the write.
    wait_until(lambda: "Sign in with corp" in httpx2.get(f"{warden.base}/console/login", timeout=2).text,
               10, what="the provider on the sign-in page")

    # A callback this browser did not start: refused, nothing signed in.
    stray = httpx2.get(f"{warden.base}/console/login/callback?state=abc&code=xyz", timeout=5)
    assert stray.status_code == 400 and 'data-code="sign_in_expired"' in stray.text
    assert "warden_console=" not in stray.headers.get("set-cookie", "")

    async def body() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            await page.goto(f"{warden.base}/console/login")
            await shot(page, "login-idp")

            # carol is in `acme-admins`: an admin of acme, and only of acme.
            await idp_sign_in(page, warden.base, "carol")
            await page.wait_for_url(re.compile(r".*/console/orgs$"))
            assert await page.locator("[data-testid=who]").inner_text() == "corp:carol (org admin)"
            assert "code=" not in page.url and "state=" not in page.url
            assert await page.evaluate("JSON.stringify(window.localStorage)") == "{}"
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["warden_console"]["httpOnly"] and cookies["warden_console"]["sameSite"] == "Strict"
            assert "warden_console_flow" not in cookies
            content = await page.content()
            assert ORG in content and "globex" not in content
            for path in ["/console/orgs/globex", "/console/orgs/globex/teams", "/console/servers"]:
                resp = await page.goto(f"{warden.base}{path}")
                assert resp is not None and resp.status in (403, 404), (path, resp.status)
                assert "secret-team" not in await page.content()

            # A change made in the console is audited under the person's name.
            await page.goto(f"{warden.base}/console/orgs/{ORG}/teams")
            await page.get_by_label("Slug").fill("eng")
            await page.get_by_role("button", name="Create team").click()
            await page.goto(f"{warden.base}/console/audit?org={ORG}&kind=admin_change&entity=team")
            actors = await page.locator("[data-testid=audit-actor]").all_inner_texts()
            assert actors and actors[0] == "idp:corp:carol", actors

            # Disabling a person asks first (dismissed: nothing changes; accepted: disabled).
            await page.goto(f"{warden.base}/console/orgs/{ORG}/end-users")
            await page.get_by_label("External id").fill("dave")
            await page.get_by_role("button", name="Create end user").click()
            await page.wait_for_url(re.compile(r".*/end-users$"))
            status = page.locator("tr[data-end-user=dave] [data-testid=end-user-status]")

            async def dismiss(dialog) -> None:
                await dialog.dismiss()

            page.once("dialog", dismiss)
            await page.get_by_role("button", name="Disable end user dave").click()
            await anyio.sleep(0.3)
            assert await status.inner_text() == "active"
            questions: list[str] = []

            async def accept(dialog) -> None:
                questions.append(dialog.message)
                await dialog.accept()

            page.once("dialog", accept)
            await page.get_by_role("button", name="Disable end user dave").click()
            await page.wait_for_url(re.compile(r".*/end-users$"))
            await wait_text(page, "tr[data-end-user=dave] [data-testid=end-user-status]", lambda t: t == "disabled")
            assert questions and questions[0].startswith("Disable end user dave?"), questions
            assert platform.call("GET", f"/orgs/{ORG}/end-users/dave")["disabled"] is True
            await shot(page, "end-users")
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(re.compile(r".*/console/login$"))
            await context.close()

            # bob is in no admin group: a clear refusal, no session.
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            await idp_sign_in(page, warden.base, "bob")
            alert = page.get_by_role("alert")
            await alert.wait_for()
            assert await alert.get_attribute("data-code") == "not_an_admin"
            assert "not a Warden administrator" in await alert.inner_text()
            await shot(page, "login-refused")
            assert "warden_console" not in {c["name"] for c in await context.cookies()}
            await page.goto(f"{warden.base}/console/orgs")
            assert page.url.endswith("/console/login")

            # root is in `warden-admins`: a platform admin sees every org.
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            await idp_sign_in(page, warden.base, "root")
            await page.wait_for_url(re.compile(r".*/console/orgs$"))
            assert await page.locator("[data-testid=who]").inner_text() == "corp:root (platform admin)"
            assert "globex" in await page.content()
            await browser.close()

    anyio.run(body)
