"""Token exchange upstream (issue 13, docs/credentials.md, mode `token_exchange`).

Real components only: the real `warden` binary; the org's identity provider,
a real `oidc-provider` (fixtures/oidc_provider.mjs) with the RFC 8693 token
exchange grant added through its own extension point
(fixtures/token_exchange.mjs); an upstream MCP server on the Python MCP SDK
(fixtures/py_oauth_upstream.py --jwt-issuer) that verifies every bearer token
against the provider's JWKS and refuses any whose `aud` is not its own; the
Python MCP SDK as each person's client, signing in at the provider (the test
plays the browser on the provider's login and consent forms).

A person signed in through the provider calls the server through Warden;
Warden exchanges their identity provider token at the provider for a token
whose audience is the upstream, and sends only that upstream."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import anyio
import httpx2
import jwt
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from test_identity import oauth_client
from wardenkit import E2E_DIR, FIXTURES, Procs, Warden, free_port, node22, python, wait_until

ORG = "acme"
SERVICE_TOKEN = "warden-service-credential-for-the-catalog"


def start(procs: Procs, warden: Warden, session_era: bool) -> tuple[str, str, str, str]:
    """The upstream, then the identity provider that may exchange tokens for
    the upstream's audience and for one other audience (`wrong`)."""
    idp_port = free_port()
    issuer = f"http://127.0.0.1:{idp_port}"
    up = procs.start([python(), str(FIXTURES / "py_oauth_upstream.py"), "--port", "0", "--jwt-issuer", issuer,
                      "--service-token", SERVICE_TOKEN, *(["--session-era"] if session_era else [])],
                     "jwt-upstream")
    upstream = f"http://127.0.0.1:{up.listening_port()}/mcp"
    wrong = "https://other-service.example/api"
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    procs.start([node22(), str(FIXTURES / "oidc_provider.mjs"), "--port", str(idp_port),
                 "--resource-base", warden.base, "--redirect", redirect,
                 "--exchange-audience", upstream, "--exchange-audience", wrong],
                "oidc-provider", cwd=E2E_DIR).listening_port()
    return issuer, upstream, wrong, redirect


def setup(procs: Procs, warden: Warden, session_era: bool = False) -> tuple[str, str, str, str, str]:
    issuer, upstream, wrong, redirect = start(procs, warden, session_era)
    admin = warden.admin
    admin.create_org(ORG)
    for slug in ("notes", "other"):
        admin.http_server(slug, upstream, secret_headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
        admin.grant(ORG, slug, "*")
    admin.call("POST", "/identity-providers", {
        "slug": "corp", "issuer": issuer, "orgs": {"kind": "org", "org": ORG}, "required_scopes": ["mcp"],
    })
    exchange = {"mode": "token_exchange", "identity_provider": "corp", "client_id": "warden-exchange",
                "client_secret": "exchange-secret"}
    auth = admin.call("PUT", "/servers/notes/upstream-auth", {**exchange, "audience": upstream})
    assert auth["auth"]["mode"] == "token_exchange" and auth["auth"]["has_client_secret"], auth
    assert "exchange-secret" not in str(auth)
    # `other` is the same upstream, configured with an audience the provider
    # issues tokens for but the upstream is not.
    admin.call("PUT", "/servers/other/upstream-auth", {**exchange, "audience": wrong})
    wait_until(lambda: httpx2.get(warden.base + "/.well-known/oauth-protected-resource/mcp",
                                  timeout=2).status_code == 200, 10, what="protected resource metadata")
    return issuer, upstream, wrong, redirect, SERVICE_TOKEN


def idp_token(warden: Warden, user: str, redirect: str, issuer: str) -> str:
    """`user` signs in at the provider through the MCP SDK's OAuth client
    (Warden's 401 -> its resource metadata -> the provider), lists tools,
    and hands back the access token the provider issued for Warden."""

    async def sign_in() -> str:
        auth, browser, storage = oauth_client(warden.mcp, user, redirect)
        async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120)) as http, \
                Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy", cache=None) as client:
            for _ in range(100):
                if "notes__whoami" in {t.name for t in (await client.list_tools()).tools}:
                    break
                await anyio.sleep(0.1)
            else:
                raise AssertionError("the catalog never listed notes__whoami")
        assert any(u.startswith(issuer) for u in browser.visited), browser.visited
        assert storage.tokens is not None
        return storage.tokens.access_token

    return anyio.run(sign_in)


async def call(warden: Warden, token: str, tool: str) -> dict:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                            cache=None) as client:
        result = await client.call_tool(tool, {})
        assert not result.is_error, result
        return result.structured_content or {}


async def refused(warden: Warden, headers: dict[str, str], tool: str) -> MCPError:
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                            cache=None) as client:
        with pytest.raises(MCPError) as err:
            await client.call_tool(tool, {})
    return err.value


def db_text(db: Path) -> str:
    out = []
    with sqlite3.connect(db) as conn:
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                out.extend(str(v) for v in row if isinstance(v, (str, bytes)))
    return "\n".join(out)


def test_each_person_calls_with_a_token_exchanged_for_the_upstream(procs: Procs, warden: Warden,
                                                                   tmp_path: Path) -> None:
    issuer, upstream, wrong, redirect, _ = setup(procs, warden)
    base = upstream.removesuffix("/mcp")
    people = {user: idp_token(warden, user, redirect, issuer) for user in ("alice", "bob")}

    async def body() -> None:
        # Each person's call reaches the upstream with a token the provider
        # issued for the upstream's audience and that person.
        for user in ("alice", "bob", "alice"):
            assert (await call(warden, people[user], "notes__whoami"))["sub"] == user
        seen = httpx2.get(base + "/_seen", timeout=10).json()
        exchanged = {s["sub"]: s["token"] for s in seen}
        assert set(exchanged) == {"alice", "bob"}, seen
        for user, token in exchanged.items():
            claims = jwt.decode(token, options={"verify_signature": False})
            assert claims["aud"] == upstream and claims["sub"] == user and claims["iss"] == issuer, claims
            assert claims["client_id"] == "warden-exchange", claims
            assert token != people[user]
        # Cached until shortly before it expires: the second call of alice's
        # used the same exchanged token.
        assert len({s["token"] for s in seen if s["sub"] == "alice"}) == 1

        # No passthrough: no person's identity provider token ever reached
        # the upstream (every bearer it was shown is recorded).
        bearers = httpx2.get(base + "/_bearers", timeout=10).json()
        assert bearers and SERVICE_TOKEN in bearers
        for user, token in people.items():
            assert token not in bearers, f"{user}'s identity provider token reached the upstream"

        # The wrong audience: the provider issues the token, the upstream
        # refuses it (401), and the person gets that as a clear error.
        err = await refused(warden, {"Authorization": f"Bearer {people['alice']}"}, "other__whoami")
        assert err.error.code == -32006, err.error
        assert err.error.data["reason"] == "upstream_token_rejected", err.error.data
        assert err.error.data["server"] == "other", err.error.data
        assert "401" in err.error.message and "other" in err.error.message, err.error.message
        # An audience the provider does not exchange for: its refusal code.
        warden.admin.call("PUT", "/servers/other/upstream-auth", {
            "mode": "token_exchange", "identity_provider": "corp", "client_id": "warden-exchange",
            "client_secret": "exchange-secret", "audience": "https://not-known.example"})
        err = await refused(warden, {"Authorization": f"Bearer {people['alice']}"}, "other__whoami")
        assert err.error.code == -32006, err.error
        assert err.error.data["reason"] == "upstream_auth_refused", err.error.data
        assert "invalid_target" in err.error.message, err.error.message
        # A person asserted by a key (not signed in with the provider) is told to sign in.
        warden.admin.call("POST", f"/orgs/{ORG}/end-users", {"external_id": "carol"})
        key = warden.admin.create_key(ORG, "assistant", may_assert_end_user=True)
        err = await refused(warden, {"Authorization": f"Bearer {key}", "X-Warden-End-User": "carol"},
                            "notes__whoami")
        assert err.error.data["reason"] == "upstream_auth_needs_sign_in", err.error.data

        # Exchanged tokens are never in Warden's database, log, audit or API.
        wrong_tokens = [t for t in httpx2.get(base + "/_bearers", timeout=10).json()
                        if t != SERVICE_TOKEN and t not in exchanged.values()]
        assert wrong_tokens, "the wrong-audience token reached the upstream"
        assert jwt.decode(wrong_tokens[0], options={"verify_signature": False})["aud"] == wrong
        stored = db_text(tmp_path / "warden.db")
        assert warden.proc is not None
        log = warden.proc.log_path.read_text(errors="replace")
        api = str(warden.admin.call("GET", "/audit?limit=500")) + str(
            warden.admin.call("GET", "/servers/notes/upstream-auth")) + str(
            warden.admin.call("GET", f"/orgs/{ORG}/connections"))
        for token in [*exchanged.values(), *wrong_tokens]:
            digest = hashlib.sha256(token.encode()).hexdigest()
            for where, text in (("database", stored), ("log", log), ("audit/API", api)):
                assert token not in text, f"an exchanged token in Warden's {where}"
                assert digest not in text, f"an exchanged token's digest in Warden's {where}"
        assert "exchange-secret" not in log and "exchange-secret" not in api

    anyio.run(body)


def test_on_a_session_era_upstream_each_person_has_their_own_session_and_token(procs: Procs,
                                                                                warden: Warden) -> None:
    """A 2025-11-25 upstream with sessions (stateful streamable HTTP) that
    requires OAuth: each person's calls go on their own upstream session
    (a caller link, docs/per-caller-upstream-sessions.md), opened and used
    with their own exchanged token; Warden's shared link keeps its own."""
    issuer, upstream, _, redirect, _ = setup(procs, warden, session_era=True)
    base = upstream.removesuffix("/mcp")
    people = {user: idp_token(warden, user, redirect, issuer) for user in ("alice", "bob")}

    async def calls(user: str) -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {people[user]}"}, timeout=30)
        async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                                cache=None) as client:
            for _ in range(3):
                result = await client.call_tool("notes__whoami", {})
                assert not result.is_error and (result.structured_content or {})["sub"] == user, result

    async def body() -> None:
        async with anyio.create_task_group() as tg:
            for user in people:
                tg.start_soon(calls, user)

    anyio.run(body)
    exchanged = {s["sub"]: s["token"] for s in httpx2.get(base + "/_seen", timeout=10).json()}
    assert set(exchanged) == {"alice", "bob"}
    requests = httpx2.get(base + "/_requests", timeout=10).json()
    # The upstream speaks the session era: Warden's shared link (its service
    # credential) has a session of its own.
    shared = {r["session"] for r in requests if r["bearer"] == SERVICE_TOKEN and r["session"]}
    assert shared, requests
    sessions: dict[str, set[str]] = {}
    for user, token in exchanged.items():
        assert token != people[user]
        on = [r for r in requests if r["bearer"] == token]
        # Opened with the person's token (initialize carries no session yet),
        # then every request of theirs on one session of their own.
        assert any(r["session"] is None and r["method"] == "POST" for r in on), on
        sessions[user] = {r["session"] for r in on if r["session"]}
        assert len(sessions[user]) == 1, (user, sessions[user])
        assert not sessions[user] & shared
    assert sessions["alice"] != sessions["bob"]
    # Nothing else went on a person's session: only their own token.
    for user, token in exchanged.items():
        (session,) = sessions[user]
        assert {r["bearer"] for r in requests if r["session"] == session} == {token}
    # No identity provider token reached the upstream.
    assert not {r["bearer"] for r in requests} & set(people.values())

    # The person's session ended: Warden closes their upstream session with
    # a DELETE that carries their token.
    def closed(user: str) -> bool:
        (session,) = sessions[user]
        return any(r["method"] == "DELETE" and r["session"] == session and r["bearer"] == exchanged[user]
                   for r in httpx2.get(base + "/_requests", timeout=10).json())

    for user in people:
        wait_until(lambda: closed(user), 15, interval=0.2, what=f"{user}'s upstream session closed")
