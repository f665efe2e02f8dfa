"""MCP Inspector (the real CLI, npm @modelcontextprotocol/inspector) through
the MCP authorization flow against the real `warden` binary and the real
OpenID provider (oidc-provider): no key. The Inspector is refused with 401,
discovers Warden's protected resource metadata, finds the provider, starts its
own loopback callback listener and prints the authorization URL; this test
plays the person's browser (the provider's login and consent forms, then the
redirect to the Inspector's listener), and the Inspector exchanges the code
and lists and calls tools with the token."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import urljoin

import httpx2

from test_identity import ORG, setup
from wardenkit import E2E_DIR, NODE_MODULES, Procs, Warden, node22

LAUNCHER = NODE_MODULES / "@modelcontextprotocol/inspector/clients/launcher/build/index.js"


def play_browser(url: str, user: str, callback: str) -> str:
    """Logs in as `user` at the provider and follows the redirect into the
    Inspector's callback listener; returns the callback listener's answer."""
    with httpx2.Client(timeout=30) as web:
        resp = web.get(url)
        for _ in range(20):
            location = resp.headers.get("location")
            if resp.status_code in (301, 302, 303, 307, 308) and location:
                target = urljoin(str(resp.url), location)
                resp = web.get(target)
                if target.startswith(callback):
                    return resp.text
                continue
            assert resp.status_code == 200, f"{resp.status_code} at {resp.url}: {resp.text[:500]}"
            form = re.search(r'<form[^>]*action="([^"]+)"', resp.text)
            assert form, f"no form at {resp.url}: {resp.text[:500]}"
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', resp.text))
            if 'name="login"' in resp.text:
                fields.update({"login": user, "password": "any"})
            resp = web.post(urljoin(str(resp.url), form.group(1)), data=fields)
    raise AssertionError("no redirect to the Inspector's callback")


def inspector_oauth(warden: Warden, redirect: str, home: Path, user: str, *args: str,
                    timeout: int = 120) -> tuple[int, str, str]:
    """Runs the Inspector CLI with OAuth (static client `ide`, callback on the
    client's registered redirect URI), answering its authorization prompt."""
    env = {"PATH": f"{Path(node22()).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(home),
           "CI": "true", "NO_COLOR": "1",
           # Interactive OAuth without a TTY needs auto-open forced on; the
           # "browser" it opens is `true` (xdg-open honours $BROWSER): this
           # test reads the printed URL and plays the browser itself.
           "MCP_AUTO_OPEN_ENABLED": "true", "BROWSER": "true",
           # Keep its OAuth state (tokens included) in files under HOME: no
           # keyring here, and the default in-memory store ends with the run.
           "MCP_INSPECTOR_SECRET_STORE": "file"}
    proc = subprocess.Popen([node22(), str(LAUNCHER), "--cli", warden.mcp, "--transport", "http",
                             "--client-id", "ide", "--callback-url", redirect, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=E2E_DIR, env=env)
    stderr: list[str] = []
    browsed: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)
            m = re.search(r"(https?://\S+/auth\S*)", line)
            if m and not browsed:
                browsed.append(play_browser(m.group(1), user, redirect))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    watcher.join(timeout=10)
    return proc.returncode, out, "".join(stderr) + "".join(f"\n[browser] {b[:300]}" for b in browsed)


def test_inspector_cli_signs_in_through_the_identity_provider(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    _, redirect = setup(procs, warden, tmp_path / "upstream.jsonl")
    # The Inspector CLI once in about seven runs hung before printing the
    # authorization URL (its own start-up; nothing had reached Warden or
    # the provider yet), and once twice in a row (2026-12-07, a fresh-clone
    # CI run; its SDK's SEP-2352 warning was all it printed). Such a run is
    # retried from a fresh HOME, up to three runs in all; a run that got as
    # far as the provider is never retried. A normal run takes seconds.
    for attempt, limit in enumerate((40, 40, 80)):
        home = tmp_path / f"home{attempt}"
        home.mkdir()
        code, out, err = inspector_oauth(warden, redirect, home, "alice", "--method", "tools/list",
                                         timeout=limit)
        if code == 0 or "Please navigate to:" in err:
            break
    assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err}"
    # It really went through the provider: it printed the authorization URL
    # and the browser's login ended at its callback listener.
    assert "Please navigate to:" in err and "[browser]" in err, err
    # Alice's group maps to team eng: echo only.
    assert "py__echo" in out and "py__add" not in out, out

    # The Inspector kept the token (in its state under HOME): a second run
    # calls a tool with it, non-interactively.
    code, out, err = inspector_oauth(warden, redirect, home, "alice", "--stored-auth-only", "--method",
                                     "tools/call", "--tool-name", "py__echo", "--tool-arg", "text=from-inspector")
    assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "from-inspector" in out, out
    assert "[browser]" not in err, "no second sign-in"
    # She exists as an end user of the org, created just in time.
    users = warden.admin.call("GET", f"/orgs/{ORG}/end-users")
    assert "alice" in {u["external_id"] for u in users["items"]}, users
