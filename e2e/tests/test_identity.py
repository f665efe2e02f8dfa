"""People sign in with their organization's identity provider (issue 10):
a REAL OpenID Provider (`oidc-provider` from npm, e2e/fixtures/oidc_provider.mjs)
on loopback, the real `warden` binary as the MCP authorization spec's resource
server, and the Python MCP SDK's OAuth client provider doing the whole flow:
it is refused with 401 + `resource_metadata`, discovers Warden's protected
resource metadata, finds the provider, authorizes (this test plays the browser:
it follows the authorization URL and submits the provider's login and consent
forms), gets a JWT access token for Warden's resource, then lists and calls.
A recording upstream proves the token never travels upstream."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from wardenkit import E2E_DIR, FIXTURES, Procs, Warden, free_port, node22, wait_until

ORG = "acme"


class Memory:
    """TokenStorage: the client `ide` is pre-registered at the provider."""

    def __init__(self, redirect: str) -> None:
        self.tokens: OAuthToken | None = None
        self.client = OAuthClientInformationFull(client_id="ide", redirect_uris=[redirect],
                                                 token_endpoint_auth_method="none",
                                                 grant_types=["authorization_code"])

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Plays the person at the provider: follows the authorization URL, logs in
    as `user` on the provider's login form, confirms the consent form, and
    captures the redirect back to the client's redirect URI."""

    def __init__(self, user: str, redirect: str) -> None:
        self.user = user
        self.redirect = redirect
        self.result: AuthorizationCodeResult | None = None
        self.visited: list[str] = []

    async def open(self, url: str) -> None:
        async with httpx2.AsyncClient(timeout=30) as web:
            resp = await web.get(url)
            for _ in range(20):
                location = resp.headers.get("location")
                if resp.status_code in (301, 302, 303, 307, 308) and location:
                    target = urljoin(str(resp.url), location)
                    self.visited.append(target)
                    if target.startswith(self.redirect):
                        q = parse_qs(urlparse(target).query)
                        assert "code" in q, f"no code in {target}"
                        self.result = AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0],
                                                              iss=q.get("iss", [None])[0])
                        return
                    resp = await web.get(target)
                    continue
                assert resp.status_code == 200, f"{resp.status_code} at {resp.url}: {resp.text[:500]}"
                form = re.search(r'<form[^>]*action="([^"]+)"', resp.text)
                assert form, f"no form at {resp.url}: {resp.text[:500]}"
                action = urljoin(str(resp.url), form.group(1))
                # The provider's own forms: hidden fields (which prompt this
                # answers), plus the credentials on the login form.
                fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', resp.text))
                if 'name="login"' in resp.text:
                    fields.update({"login": self.user, "password": "any"})
                resp = await web.post(action, data=fields)
            raise AssertionError(f"no redirect back after {self.visited}")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def start_provider(procs: Procs, warden: Warden, redirect: str) -> str:
    port = free_port()
    proc = procs.start([node22(), str(FIXTURES / "oidc_provider.mjs"), "--port", str(port),
                        "--resource-base", warden.base, "--redirect", redirect], "oidc-provider", cwd=E2E_DIR)
    proc.listening_port()
    return f"http://127.0.0.1:{port}"


def oauth_client(url: str, user: str, redirect: str) -> tuple[OAuthClientProvider, Browser, Memory]:
    browser = Browser(user, redirect)
    storage = Memory(redirect)
    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(redirect_uris=[redirect], token_endpoint_auth_method="none",
                                            grant_types=["authorization_code"]),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    return auth, browser, storage


def setup(procs: Procs, warden: Warden, record: Path) -> tuple[str, str]:
    upstream = procs.py_upstream(record=record)
    admin = warden.admin
    admin.create_org(ORG)
    admin.http_server("py", upstream)
    admin.grant(ORG, "py", "*")
    admin.create_team(ORG, "eng", {"servers": {"py": ["echo"]}})
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    issuer = start_provider(procs, warden, redirect)
    admin.call("POST", "/identity-providers", {
        "slug": "corp", "issuer": issuer,
        "orgs": {"kind": "org", "org": ORG},
        "groups_claim": "groups",
        "group_teams": [{"group": "engineering", "org": ORG, "team": "eng"}],
        "required_scopes": ["mcp"],
    })
    # The gateway loads providers at the new revision, right after the write.
    wait_until(lambda: httpx2.get(warden.base + "/.well-known/oauth-protected-resource/mcp",
                                  timeout=2).status_code == 200, 10, what="protected resource metadata")
    return issuer, redirect


def test_people_sign_in_through_the_org_identity_provider(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    record = tmp_path / "upstream.jsonl"
    issuer, redirect = setup(procs, warden, record)
    tokens: dict[str, str] = {}

    async def session_of(user: str):
        auth, browser, storage = oauth_client(warden.mcp, user, redirect)
        http = httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120))
        return http, browser, storage

    async def body() -> None:
        seen: dict[str, set[str]] = {}
        for user in ("alice", "bob"):
            http, browser, storage = await session_of(user)
            async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                                    cache=None) as client:
                listing = await client.list_tools()
                seen[user] = {t.name for t in listing.tools}
                result = await client.call_tool("py__echo", {"text": f"hello from {user}"})
                assert f"hello from {user}" in json.dumps(result.model_dump(mode="json"))
            # The SDK really went through the provider: login form, then back.
            assert any(u.startswith(issuer) for u in browser.visited), browser.visited
            assert storage.tokens is not None
            tokens[user] = storage.tokens.access_token
            assert tokens[user].count(".") == 2, "a JWT access token"
        # Alice's group maps to team eng (echo only); Bob has no team level.
        assert seen["alice"] == {"py__echo"}, seen
        assert "py__add" in seen["bob"] and "py__echo" in seen["bob"], seen

        # Disabling the org grant cuts both people off.
        warden.admin.set_grant_enabled(ORG, "py", False)
        for user in ("alice", "bob"):
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=30)
            async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                                    cache=None) as client:
                assert {t.name for t in (await client.list_tools()).tools} == set()
                with pytest.raises(MCPError):
                    await client.call_tool("py__echo", {"text": "nope"})
        warden.admin.set_grant_enabled(ORG, "py", True)

        # Disabling one person cuts only that person, live session included.
        ha = httpx2.AsyncClient(headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=30)
        hb = httpx2.AsyncClient(headers={"Authorization": f"Bearer {tokens['bob']}"}, timeout=30)
        async with ha, hb, \
                Client(streamable_http_client(warden.mcp, http_client=ha), mode="legacy", cache=None) as ca, \
                Client(streamable_http_client(warden.mcp, http_client=hb), mode="legacy", cache=None) as cb:
            assert {t.name for t in (await ca.list_tools()).tools} == {"py__echo"}
            assert {t.name for t in (await cb.list_tools()).tools} == seen["bob"]
            user = warden.admin.call("PATCH", f"/orgs/{ORG}/end-users/alice", {"disabled": True})
            assert user["item"]["disabled"] is True
            with pytest.raises(Exception) as cut:
                await ca.list_tools()
            assert cut.value is not None
            assert {t.name for t in (await cb.list_tools()).tools} == seen["bob"]
        # A new session for her is refused with the reason, bob's token still works.
        raw = httpx2.post(warden.mcp, headers={"Authorization": f"Bearer {tokens['alice']}",
                                              "Accept": "application/json, text/event-stream"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                           "clientInfo": {"name": "e2e", "version": "1"}}}, timeout=30)
        assert raw.status_code == 403, raw.text
        assert raw.json()["error"]["data"]["reason"] == "end_user_disabled"

    anyio.run(body)

    # They exist as end users of the org, created just in time.
    users = warden.admin.call("GET", f"/orgs/{ORG}/end-users")
    assert {"alice", "bob"} <= {u["external_id"] for u in users["items"]}, users

    # The upstream never saw a token: no Authorization header, no token text.
    lines = record.read_text().splitlines()
    assert lines, "the upstream recorded nothing"
    for line in lines:
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()} if isinstance(entry["headers"], dict) \
            else {k.lower(): v for k, v in entry["headers"]}
        assert "authorization" not in headers, entry
        for token in tokens.values():
            assert token not in line
