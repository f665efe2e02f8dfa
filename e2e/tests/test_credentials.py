"""Each person's own credentials upstream (issue 13, docs/credentials.md).

Real components only: the real `warden` binary; an upstream MCP server built
on the Python MCP SDK's server-side auth support (fixtures/py_oauth_upstream.py:
an OAuth resource server verifying tokens by introspection); its authorization
server, a second real `oidc-provider` (fixtures/upstream_as.mjs) with dynamic
client registration, PKCE, rotating refresh tokens, introspection and RFC 7009
revocation; the Python MCP SDK as the client. The test plays each person's
browser on Warden's consent page and the provider's login and consent forms.

People act through a service key that asserts the end user; the last test
has a person signed in through the org's identity provider (a real
`oidc-provider`, fixtures/oidc_provider.mjs), whose consent link opens only
after the browser signs in there as that person."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import urljoin

import anyio
import httpx2
import pytest
from mcp import MCPError

from wardenkit import E2E_DIR, FIXTURES, Procs, Warden, free_port, mcp_client, node22, python, wait_until

ORG = "acme"
# Access tokens live 35 s; the vault refreshes a token with under 30 s left,
# so a token is used as is for ~5 s, then refreshed transparently.
TTL = 35


def start_upstream(procs: Procs) -> tuple[str, str]:
    as_port = free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    up = procs.start([python(), str(FIXTURES / "py_oauth_upstream.py"), "--port", "0", "--as-issuer", issuer],
                     "oauth-upstream")
    url = f"http://127.0.0.1:{up.listening_port()}/mcp"
    procs.start([node22(), str(FIXTURES / "upstream_as.mjs"), "--port", str(as_port), "--resource", url,
                 "--ttl", str(TTL)], "upstream-as", cwd=E2E_DIR).listening_port()
    return url, issuer


def service_token(issuer: str, upstream: str) -> str:
    """Warden's own service credential for the server's shared link
    (initialize, tools/list): a client credentials token, set as the
    server's static secret header. People's calls carry their own."""
    resp = httpx2.post(f"{issuer}/token", data={"grant_type": "client_credentials", "resource": upstream,
                                                "scope": "notes"},
                       auth=("warden-catalog", "catalog-secret"), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def add_server(warden: Warden, upstream: str, issuer: str) -> None:
    warden.admin.http_server("notes", upstream,
                             secret_headers={"Authorization": f"Bearer {service_token(issuer, upstream)}"})


def browse(url: str, warden: Warden, logins: dict[str, str], key: str | None = None
           ) -> tuple[httpx2.Response, list[str]]:
    """Plays a browser from `url`: follows redirects, fills Warden's key form
    with `key` and each provider's login form with the login `logins` gives
    for its origin (consent forms are accepted), and stops at the first page
    of Warden's that has no form. Returns that page and the URLs visited."""
    visited = [url]
    with httpx2.Client(timeout=30) as web:
        resp = web.get(url)
        for _ in range(30):
            location = resp.headers.get("location")
            if resp.status_code in (301, 302, 303, 307, 308) and location:
                target = urljoin(str(resp.url), location)
                visited.append(target)
                resp = web.get(target)
                continue
            form = re.search(r'<form[^>]*action="([^"]+)"', resp.text)
            if str(resp.url).startswith(warden.base) and not form:
                return resp, visited
            assert resp.status_code == 200, f"{resp.status_code} at {resp.url}: {resp.text[:500]}"
            assert form, f"no form at {resp.url}: {resp.text[:500]}"
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', resp.text))
            if 'name="login"' in resp.text:
                origin = next(o for o in logins if str(resp.url).startswith(o))
                fields.update({"login": logins[origin], "password": "any"})
            if 'name="key"' in resp.text:
                assert str(resp.url) == url, "only Warden's consent page asks for the key"
                assert key is not None, "a key form on a link that is not key-bound"
                fields["key"] = key
            resp = web.post(urljoin(str(resp.url), form.group(1)), data=fields)
    raise AssertionError(f"no way back to Warden after {visited}")


def consent(url: str, user: str, warden: Warden, issuer: str, key: str | None,
            idp: str | None = None) -> list[str]:
    """Plays `user`'s browser: Warden's consent link — whose page asks for
    the service key that asserted `user` (the link is bound to it), or, for
    a person signed in at the identity provider `idp`, sends the browser to
    sign in there first — the provider's login and consent forms, back to
    Warden's callback, which must say "Connected"."""
    logins = {issuer: user, **({idp: user} if idp else {})}
    resp, visited = browse(url, warden, logins, key)
    assert resp.status_code == 200, f"{resp.status_code} at {resp.url}: {resp.text[:500]}"
    assert str(resp.url).startswith(warden.base + "/connect/callback"), visited
    assert "Connected" in resp.text, resp.text
    return visited


async def whoami(warden: Warden, key: str, user: str) -> dict:
    async with mcp_client(warden.mcp, key, headers={"X-Warden-End-User": user}) as client:
        result = await client.call_tool("notes__whoami", {})
        assert not result.is_error, result
        return result.structured_content or {}


async def wait_for_catalog(warden: Warden, key: str) -> None:
    """Warden lists the server's tools on its own shared link (with the
    server's static service credential), once it has connected."""
    for _ in range(100):
        async with mcp_client(warden.mcp, key, headers={"X-Warden-End-User": "alice"}) as client:
            if "notes__whoami" in {t.name for t in (await client.list_tools()).tools}:
                return
        await anyio.sleep(0.1)
    raise AssertionError("the catalog never listed notes__whoami")


async def consent_url(warden: Warden, key: str, user: str) -> str:
    async with mcp_client(warden.mcp, key, headers={"X-Warden-End-User": user}) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("notes__whoami", {})
    err = refused.value.error
    assert err.code == -32042, err
    assert err.data["reason"] == "consent_required", err.data
    elicitation = err.data["elicitations"][0]
    assert elicitation["mode"] == "url" and elicitation["elicitationId"], elicitation
    assert elicitation["url"] == err.data["url"]
    assert elicitation["url"].startswith(warden.base + "/connect/"), elicitation
    return elicitation["url"]


def own(warden: Warden, key: str, user: str, method: str, path: str) -> httpx2.Response:
    """A person's own connections endpoint, as that person."""
    return httpx2.request(method, warden.base + path, timeout=10,
                          headers={"Authorization": f"Bearer {key}", "X-Warden-End-User": user})


def introspect(issuer: str, token: str) -> bool:
    resp = httpx2.post(f"{issuer}/token/introspection", data={"token": token}, auth=("rs", "rs-secret"), timeout=10)
    assert resp.status_code == 200, resp.text
    return bool(resp.json().get("active"))


def db_rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def db_text(db: Path) -> str:
    """Every text value of every table, for "never in clear" checks."""
    out = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                out.extend(str(v) for v in row if isinstance(v, (str, bytes)))
    return "\n".join(out)


def seen(upstream: str) -> list[dict]:
    return httpx2.get(upstream.removesuffix("/mcp") + "/_seen", timeout=10).json()


def test_each_person_calls_with_their_own_upstream_token(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    db = tmp_path / "warden.db"
    upstream, issuer = start_upstream(procs)
    admin = warden.admin
    admin.create_org(ORG)
    add_server(warden, upstream, issuer)
    admin.grant(ORG, "notes", "*")
    for user in ("alice", "bob", "carol"):
        admin.call("POST", f"/orgs/{ORG}/end-users", {"external_id": user})
    key = admin.create_key(ORG, "assistant", may_assert_end_user=True)
    # Discovered: protected resource metadata -> the provider -> dynamic registration.
    auth = admin.call("PUT", "/servers/notes/upstream-auth", {"mode": "oauth_per_user"})
    assert auth["auth"]["mode"] == "oauth_per_user", auth

    async def body() -> None:
        await wait_for_catalog(warden, key)
        # Not connected yet: URL-mode elicitation to Warden's consent page.
        tokens: dict[str, str] = {}
        for user in ("alice", "bob"):
            url = await consent_url(warden, key, user)
            if user == "alice":
                # The link is bound to the key that asserted alice: another
                # key (it may assert end users too) is refused.
                other = admin.create_key(ORG, "other-assistant", may_assert_end_user=True)
                wrong = httpx2.post(url, data={"key": other}, timeout=10)
                assert wrong.status_code == 403 and "consent_key_refused" in wrong.text, wrong.text
            visited = consent(url, user, warden, issuer, key)
            assert any(v.startswith(issuer) for v in visited), visited
            # A consent link is single use.
            assert httpx2.get(url, timeout=10).status_code == 404
            me = await whoami(warden, key, user)
            assert me["sub"] == user, me
            tokens[user] = next(s["token"] for s in seen(upstream) if s["sub"] == user)
        assert tokens["alice"] != tokens["bob"]
        # Each call carried the caller's own token (the upstream verified it).
        for _ in range(2):
            assert (await whoami(warden, key, "bob"))["sub"] == "bob"
            assert (await whoami(warden, key, "alice"))["sub"] == "alice"
        # Carol has not connected: she is asked, not served with someone else's.
        await consent_url(warden, key, "carol")

        # Stored per person, encrypted: the tokens are not in the database in clear.
        rows = db_rows(db, "SELECT e.external_id, c.scopes FROM user_credentials c "
                           "JOIN end_users e ON e.id = c.end_user_id ORDER BY e.external_id")
        assert rows == [("alice", "notes"), ("bob", "notes")], rows

        # Expiry: after the token's margin the vault refreshes it transparently.
        await anyio.sleep(TTL - 30 + 1)
        before = len(seen(upstream))
        assert (await whoami(warden, key, "alice"))["sub"] == "alice"
        latest = seen(upstream)[before:]
        assert latest and latest[-1]["sub"] == "alice"
        refreshed = latest[-1]["token"]
        assert refreshed != tokens["alice"], "the access token was refreshed"
        # Rotation: the old refresh token is spent; the new access token is active.
        assert introspect(issuer, refreshed)

        # A person lists their own connections and disconnects one; another
        # person's connection is not reachable.
        mine = own(warden, key, "alice", "GET", "/mcp/connections")
        assert [c["server"] for c in mine.json()["items"]] == ["notes"], mine.text
        alice_id = mine.json()["items"][0]["id"]
        assert own(warden, key, "bob", "DELETE", f"/mcp/connections/{alice_id}").status_code == 404
        bob_id = own(warden, key, "bob", "GET", "/mcp/connections").json()["items"][0]["id"]
        assert own(warden, key, "bob", "DELETE", f"/mcp/connections/{bob_id}").status_code == 200
        assert own(warden, key, "bob", "GET", "/mcp/connections").json()["items"] == []
        wait_until(lambda: not introspect(issuer, tokens["bob"]), 15, interval=0.5, what="bob's token revoked")
        # Bob connects again; then an admin revokes it.
        consent(await consent_url(warden, key, "bob"), "bob", warden, issuer, key)
        assert (await whoami(warden, key, "bob"))["sub"] == "bob"
        tokens["bob2"] = [s["token"] for s in seen(upstream) if s["sub"] == "bob"][-1]
        # Admin lists connections (no token in the listing) and revokes Bob's.
        listing = admin.call("GET", f"/orgs/{ORG}/connections")
        by_user = {c["end_user"]: c for c in listing["items"]}
        assert set(by_user) == {"alice", "bob"}
        assert by_user["bob"]["has_refresh_token"] and by_user["bob"]["revocable_upstream"]
        admin.call("DELETE", f"/orgs/{ORG}/connections/{by_user['bob']['id']}")
        assert db_rows(db, "SELECT COUNT(*) FROM user_credentials c JOIN end_users e ON e.id = c.end_user_id "
                           "WHERE e.external_id = 'bob'") == [(0,)]
        # Revoked upstream (RFC 7009) by the background revoker.
        wait_until(lambda: not introspect(issuer, tokens["bob2"]), 15, interval=0.5, what="bob's token revoked")
        await consent_url(warden, key, "bob")

        # Deleting the person deletes (and revokes) their tokens.
        admin.call("DELETE", f"/orgs/{ORG}/end-users/alice")
        assert db_rows(db, "SELECT COUNT(*) FROM user_credentials") == [(0,)]
        wait_until(lambda: not introspect(issuer, refreshed), 15, interval=0.5, what="alice's token revoked")
        wait_until(lambda: db_rows(db, "SELECT COUNT(*) FROM credential_revocations") == [(0,)], 15,
                   interval=0.5, what="revocation queue drained")

        # Never in clear: database, Warden's log, the admin API, the audit log.
        every_token = [tokens["alice"], tokens["bob"], tokens["bob2"], refreshed]
        stored = db_text(db)
        assert warden.proc is not None
        log = warden.proc.log_path.read_text(errors="replace")
        audit = str(admin.call("GET", "/audit?limit=500"))
        api = str(listing) + str(admin.call("GET", "/servers/notes/upstream-auth"))
        for token in every_token:
            assert token not in stored, "a token in clear in the database"
            assert token not in log, "a token in Warden's log"
            assert token not in audit and token not in api, "a token in an API response"
        assert "user_credential" in audit and "disconnect" in audit, "connections are audited"

    anyio.run(body)


def test_a_policy_denial_is_not_overridden_by_a_stored_token(procs: Procs, warden: Warden) -> None:
    upstream, issuer = start_upstream(procs)
    admin = warden.admin
    admin.create_org(ORG)
    add_server(warden, upstream, issuer)
    admin.grant(ORG, "notes", "*")
    admin.call("POST", f"/orgs/{ORG}/end-users", {"external_id": "alice"})
    key = admin.create_key(ORG, "assistant", may_assert_end_user=True)
    admin.call("PUT", "/servers/notes/upstream-auth", {"mode": "oauth_per_user"})

    async def body() -> None:
        await wait_for_catalog(warden, key)
        consent(await consent_url(warden, key, "alice"), "alice", warden, issuer, key)
        assert (await whoami(warden, key, "alice"))["sub"] == "alice"
        # The org's grant is disabled: the decision denies, the token changes nothing.
        admin.set_grant_enabled(ORG, "notes", False)
        async with mcp_client(warden.mcp, key, headers={"X-Warden-End-User": "alice"}) as client:
            with pytest.raises(MCPError) as denied:
                await client.call_tool("notes__whoami", {})
        assert denied.value.error.code == -32602, denied.value.error

    anyio.run(body)


def test_a_signed_in_persons_consent_link_opens_only_after_they_sign_in(procs: Procs, warden: Warden) -> None:
    """A person signed in through the org's identity provider gets a consent
    link bound to that sign-in: the browser that opens it signs in at the
    same provider (the real oidc-provider, its `warden-console` client)
    before Warden sends it to the upstream's authorization server. Someone
    else signing in is refused (consent_wrong_person)."""
    from test_token_exchange import call, idp_token, refused

    upstream, issuer = start_upstream(procs)
    idp_port = free_port()
    idp = f"http://127.0.0.1:{idp_port}"
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    procs.start([node22(), str(FIXTURES / "oidc_provider.mjs"), "--port", str(idp_port),
                 "--resource-base", warden.base, "--redirect", redirect], "oidc-provider",
                cwd=E2E_DIR).listening_port()
    admin = warden.admin
    admin.create_org(ORG)
    add_server(warden, upstream, issuer)
    admin.grant(ORG, "notes", "*")
    admin.call("POST", "/identity-providers", {
        "slug": "corp", "issuer": idp, "orgs": {"kind": "org", "org": ORG}, "required_scopes": ["mcp"],
        "console_client_id": "warden-console",
    })
    auth = admin.call("PUT", "/servers/notes/upstream-auth", {"mode": "oauth_per_user"})
    assert auth["auth"]["mode"] == "oauth_per_user", auth
    wait_until(lambda: httpx2.get(warden.base + "/.well-known/oauth-protected-resource/mcp",
                                  timeout=2).status_code == 200, 10, what="protected resource metadata")
    alice = idp_token(warden, "alice", redirect, idp)

    async def body() -> None:
        err = (await refused(warden, {"Authorization": f"Bearer {alice}"}, "notes__whoami")).error
        assert err.code == -32042 and err.data["reason"] == "consent_required", err
        url = err.data["url"]
        assert url.startswith(warden.base + "/connect/"), url

        # Bob's browser opens alice's link: it must sign in at the provider;
        # bob does, and is refused.
        resp, visited = browse(url, warden, {idp: "bob", issuer: "bob"})
        assert any(v.startswith(idp + "/auth") for v in visited), visited
        assert str(resp.url).startswith(warden.base + "/connect/signed-in"), visited
        assert resp.status_code == 403 and "consent_wrong_person" in resp.text, resp.text
        assert not any(v.startswith(issuer) for v in visited), "bob reached the upstream's authorization server"

        # Alice's browser: her sign-in, then the upstream's authorization server.
        visited = consent(url, "alice", warden, issuer, None, idp=idp)
        signed_in = next(i for i, v in enumerate(visited) if v.startswith(warden.base + "/connect/signed-in"))
        assert any(v.startswith(idp) for v in visited[:signed_in]), visited
        assert any(v.startswith(issuer) for v in visited[signed_in:]), visited
        assert httpx2.get(url, timeout=10).status_code == 404
        assert (await call(warden, alice, "notes__whoami"))["sub"] == "alice"

    anyio.run(body)
