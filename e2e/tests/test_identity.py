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

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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


def start_provider(procs: Procs, warden: Warden, redirect: str, key_file: Path | None = None) -> str:
    port = free_port()
    argv = [node22(), str(FIXTURES / "oidc_provider.mjs"), "--port", str(port),
            "--resource-base", warden.base, "--redirect", redirect]
    if key_file is not None:
        argv += ["--key-file", str(key_file)]
    proc = procs.start(argv, "oidc-provider", cwd=E2E_DIR)
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


def setup(procs: Procs, warden: Warden, record: Path, key_file: Path | None = None) -> tuple[str, str]:
    upstream = procs.py_upstream(record=record)
    admin = warden.admin
    admin.create_org(ORG)
    admin.http_server("py", upstream)
    admin.grant(ORG, "py", "*")
    admin.create_team(ORG, "eng", {"servers": {"py": ["echo"]}})
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    issuer = start_provider(procs, warden, redirect, key_file)
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


def test_a_first_time_person_gets_the_org_default_scope_for_new_users(procs: Procs, warden: Warden,
                                                                      tmp_path: Path) -> None:
    """The org's default scope for new users (PUT /orgs/{org}/new-user-scope) is
    what a person signing in for the first time through the real provider gets:
    bob (no team) would otherwise see every tool of the grant."""
    _, redirect = setup(procs, warden, tmp_path / "upstream.jsonl")
    admin = warden.admin
    # A server the org is not granted: refused, nothing set.
    admin.call("PUT", f"/orgs/{ORG}/new-user-scope", {"servers": {"nope": "*"}}, expect=(400, 422))
    assert admin.call("GET", f"/orgs/{ORG}/new-user-scope") == "inherit"
    written = admin.call("PUT", f"/orgs/{ORG}/new-user-scope", {"servers": {"py": ["add"]}})
    assert written["item"] == {"servers": {"py": ["add"]}, "toolsets": []}

    async def body() -> None:
        auth, browser, storage = oauth_client(warden.mcp, "bob", redirect)
        http = httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120))
        async with http, Client(streamable_http_client(warden.mcp, http_client=http), mode="legacy",
                                cache=None) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"py__add"}
            result = await client.call_tool("py__add", {"a": 2, "b": 3})
            assert "5" in json.dumps(result.model_dump(mode="json"))
            with pytest.raises(MCPError):
                await client.call_tool("py__echo", {"text": "not in bob's scope"})
        assert storage.tokens is not None, "signed in through the provider"

    anyio.run(body)
    # Bob exists with that scope, created just in time; the write is audited.
    assert admin.call("GET", f"/orgs/{ORG}/end-users/bob/scope") == {"servers": {"py": ["add"]}, "toolsets": []}
    audit = admin.call("GET", "/audit", params={"org": ORG, "kind": "admin_change"})
    actions = {(e["action"], e["entity_kind"]) for e in audit["items"]}
    assert ("set_new_user_scope", "org") in actions, actions


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_every_bad_token_is_refused_by_the_real_binary(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    """The issue's list of refused tokens, against the real binary and the real
    provider's JWKS: the test holds the provider's signing key (--key-file), so
    each forged token differs from a good one in exactly one way. Plus the
    cross-org cases with a second real provider, and the upstream never sees a
    token."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    key_a = tmp_path / "idp-a.pem"
    key_a.write_bytes(pem)
    record = tmp_path / "upstream.jsonl"
    issuer, redirect = setup(procs, warden, record, key_a)
    admin = warden.admin
    aud = warden.base + "/mcp"

    # A second org with its own server and team, and a second real provider
    # serving both orgs by a `tenant` claim; its `engineering` group maps to
    # a team of globex.
    admin.create_org("globex")
    admin.http_server("gx", procs.py_upstream(record=record, name="gx-fixture"))
    admin.grant("globex", "gx", "*")
    admin.create_team("globex", "gx-eng")
    key_b = tmp_path / "idp-b.pem"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_b.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    issuer_b = start_provider(procs, warden, redirect, key_b)
    admin.call("POST", "/identity-providers", {
        "slug": "partner", "issuer": issuer_b,
        "orgs": {"kind": "claim", "claim": "tenant", "values": {"t-a": ORG, "t-b": "globex"}},
        "groups_claim": "groups",
        "group_teams": [{"group": "engineering", "org": "globex", "team": "gx-eng"}],
    })

    now = int(time.time())
    good = {"iss": issuer, "sub": "mallory", "aud": aud, "iat": now, "exp": now + 600, "scope": "openid mcp",
            "client_id": "ide", "groups": []}

    def sign(claims: dict, *, signer: bytes = pem, kid: str = "e2e-rs256", alg: str = "RS256") -> str:
        return jwt.encode(claims, signer, algorithm=alg, headers={"kid": kid})

    def with_(**changes: object) -> dict:
        return {**good, **changes}

    def initialize(token: str) -> httpx2.Response:
        return httpx2.post(aud, headers={"Authorization": f"Bearer {token}",
                                         "Accept": "application/json, text/event-stream"},
                           json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                 "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                            "clientInfo": {"name": "e2e", "version": "1"}}}, timeout=30)

    # The baseline is good: only the one change refuses each forged token.
    ok = initialize(sign(good))
    assert ok.status_code == 200, ok.text
    # The partner provider is loaded once its metadata names it.
    wait_until(lambda: issuer_b in httpx2.get(warden.base + "/.well-known/oauth-protected-resource/mcp",
                                              timeout=2).json()["authorization_servers"], 10, what="second provider")

    header = _b64(json.dumps({"alg": "none", "kid": "e2e-rs256", "typ": "JWT"}).encode())
    alg_none = f"{header}.{_b64(json.dumps(good).encode())}."
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = _b64(json.dumps({"alg": "HS256", "kid": "e2e-rs256", "typ": "JWT"}).encode())
    hs_payload = _b64(json.dumps(good).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{hs_payload}".encode(), hashlib.sha256).digest())
    hs256 = f"{hs_header}.{hs_payload}.{hs_sig}"
    parts = sign(good).split(".")
    tampered = ".".join([parts[0], _b64(json.dumps(with_(sub="root")).encode()), parts[2]])
    cases = [
        ("expired", sign(with_(exp=now - 300, iat=now - 900)), 401, "token_expired"),
        ("not yet valid", sign(with_(nbf=now + 600)), 401, "token_not_yet_valid"),
        ("wrong issuer", sign(with_(iss="https://evil.example")), 401, "token_issuer_unknown"),
        ("wrong audience", sign(with_(aud="https://other.example/mcp")), 401, "token_audience_invalid"),
        ("another endpoint's resource", sign(with_(aud=warden.base + "/mcp/servers/py")), 401,
         "token_audience_invalid"),
        ("alg none", alg_none, 401, "token_alg_not_allowed"),
        ("HS256 signed with the RSA public key", hs256, 401, "token_alg_not_allowed"),
        ("unknown kid", sign(good, kid="rotated-away"), 401, "token_key_unknown"),
        ("tampered payload", tampered, 401, "token_signature_invalid"),
        ("signed by another provider's key", sign(good, signer=key_b.read_bytes()), 401,
         "token_signature_invalid"),
        ("provider A's key claiming provider B", sign(with_(iss=issuer_b, tenant="t-b")), 401,
         "token_signature_invalid"),
        ("a group mapped to a team of another org",
         sign(with_(iss=issuer_b, tenant="t-a", groups=["engineering"]), signer=key_b.read_bytes()), 401,
         "token_team_other_org"),
        ("no required scope", sign(with_(scope="openid")), 403, "insufficient_scope"),
    ]
    for what, token, status, reason in cases:
        resp = initialize(token)
        assert resp.status_code == status, f"{what}: {resp.status_code} {resp.text}"
        assert resp.json()["error"]["data"]["reason"] == reason, f"{what}: {resp.text}"
        challenge = resp.headers.get("www-authenticate", "")
        error = "insufficient_scope" if status == 403 else "invalid_token"
        assert f'error="{error}"' in challenge, f"{what}: {challenge}"
        assert f'resource_metadata="{warden.base}/.well-known/oauth-protected-resource/mcp"' in challenge, \
            f"{what}: {challenge}"

    async def tools(token: str) -> set[str]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(aud, http_client=http), mode="legacy",
                                cache=None) as client:
            return {t.name for t in (await client.list_tools()).tools}

    async def cross_org() -> None:
        # Org A's provider names org A whatever the token claims.
        a_tools = await tools(sign(with_(sub="eve", tenant="t-b", org="globex")))
        assert a_tools and all(t.startswith("py__") for t in a_tools), a_tools
        # The partner provider's t-b person is globex's, in its team.
        b_tools = await tools(sign(with_(iss=issuer_b, sub="gina", tenant="t-b", groups=["engineering"]),
                                   signer=key_b.read_bytes()))
        assert b_tools and all(t.startswith("gx__") for t in b_tools), b_tools

    anyio.run(cross_org)
    assert "eve" in {u["external_id"] for u in admin.call("GET", f"/orgs/{ORG}/end-users")["items"]}
    assert "eve" not in {u["external_id"] for u in admin.call("GET", "/orgs/globex/end-users")["items"]}
    assert "mallory" in {u["external_id"] for u in admin.call("GET", f"/orgs/{ORG}/end-users")["items"]}

    # No upstream ever saw a token.
    text = record.read_text()
    assert text, "the upstreams recorded nothing"
    for line in text.splitlines():
        entry = json.loads(line)
        pairs = entry["headers"].items() if isinstance(entry["headers"], dict) else entry["headers"]
        assert "authorization" not in {k.lower() for k, _ in pairs}, entry
    for what, token, _, _ in cases:
        assert token.split(".")[0] + "." + token.split(".")[1] not in text, what
