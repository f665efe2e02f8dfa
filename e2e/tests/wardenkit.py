"""Helpers for Warden's end-to-end tests: processes, the real `warden` binary,
its admin REST API, a real PostgreSQL server, and MCP clients (the Python MCP
SDK 2.x `Client`, and a hand-rolled one for exact wire checks)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

E2E_DIR = Path(__file__).resolve().parent.parent
REPO = E2E_DIR.parent
FIXTURES = E2E_DIR / "fixtures"
NODE_MODULES = E2E_DIR / "node_modules"
VENV_PYTHON = E2E_DIR / ".deps" / "venv" / "bin" / "python"


def node22() -> str:
    return os.environ.get("WARDEN_E2E_NODE", str(NODE_MODULES / "node" / "bin" / "node"))


def python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else "python3"


def warden_bin() -> Path:
    if os.environ.get("WARDEN_BIN"):
        return Path(os.environ["WARDEN_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "warden"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessDied(RuntimeError):
    """A process a test waits on exited; waiting longer cannot help."""


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except ProcessDied:
            raise
        except Exception as err:  # noqa: BLE001 - retried until the deadline
            last_error = err
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))


class Proc:
    """A child process whose output goes to a log file; killed on close."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 log_dir: Path, name: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._log, env=full_env,
                                      cwd=cwd, start_new_session=True)
        self._lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.write(raw)
            self._log.flush()
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines:
                    if line.startswith(prefix):
                        return line
                if self.popen.poll() is not None:
                    raise ProcessDied(f"{self.name} exited ({self.popen.returncode}) before printing {prefix!r}; "
                                       f"log:\n{self.log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name} did not print {prefix!r}; log:\n{self.log_tail()}")
                self._cond.wait(min(remaining, 0.2))

    def stdout_lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def listening_port(self, timeout: float = 30) -> int:
        return int(self.wait_line("LISTENING ", timeout).split()[1])

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


class Procs:
    """Owns every process a test starts and stops them all at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Proc] = []

    def start(self, argv: list[str], name: str, **kwargs: Any) -> Proc:
        proc = Proc(argv, log_dir=self.log_dir, name=f"{len(self.all):02d}-{name}", **kwargs)
        self.all.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.all):
            proc.stop()

    # --- fixtures ---------------------------------------------------------
    def py_upstream(self, *, record: Path | None = None, name: str = "py-fixture") -> str:
        argv = [python(), str(FIXTURES / "py_upstream.py"), "--port", "0", "--name", name]
        if record is not None:
            argv += ["--record", str(record)]
        port = self.start(argv, name).listening_port()
        return f"http://127.0.0.1:{port}/mcp"

    def conformance_upstream(self) -> str:
        proc = self.start([node22(), str(FIXTURES / "conformance_server.mjs"), "--port", "0"], "conformance-fixture",
                          cwd=E2E_DIR)
        return f"http://127.0.0.1:{proc.listening_port()}/mcp"

    def conformance_upstream_2026(self) -> str:
        """The dual-era (2025-11-25 and 2026-07-28) conformance fixture on the
        Python SDK 2.x (fixtures/conformance_server_2026.py)."""
        proc = self.start([python(), str(FIXTURES / "conformance_server_2026.py"), "--port", "0"],
                          "conformance-fixture-2026", cwd=E2E_DIR)
        return f"http://127.0.0.1:{proc.listening_port()}/mcp"

    def everything_http_upstream(self) -> str:
        port = free_port()
        proc = self.start([node22(), str(NODE_MODULES / "@modelcontextprotocol/server-everything/dist/index.js"),
                           "streamableHttp"], "everything-http", env={"PORT": str(port)}, cwd=E2E_DIR)
        url = f"http://127.0.0.1:{port}/mcp"
        wait_until(lambda: _port_open(port) or (not proc.alive() and _raise(proc)), 30, what="server-everything")
        return url

    def auth_proxy(self, target: str, key: str) -> str:
        proc = self.start([node22(), str(FIXTURES / "auth_proxy.mjs"), "--target", target, "--key", key],
                          "auth-proxy", cwd=E2E_DIR)
        return f"http://127.0.0.1:{proc.listening_port()}"


def _raise(proc: Proc) -> bool:
    raise ProcessDied(f"{proc.name} exited early:\n{proc.log_tail()}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- Warden --------------------------------------------------------------------


class AdminError(AssertionError):
    pass


@dataclass
class Admin:
    """A thin client of Warden's admin REST API (`/admin/v1`)."""

    base: str
    token: str
    client: httpx2.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx2.Client(base_url=self.base + "/admin/v1", timeout=30,
                                   headers={"Authorization": f"Bearer {self.token}"})

    def call(self, method: str, path: str, body: Any = None, *, expect: tuple[int, ...] = (200, 201),
             params: dict[str, str] | None = None) -> Any:
        resp = self.client.request(method, path, json=body, params=params)
        if resp.status_code not in expect:
            raise AdminError(f"{method} {path} -> {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    # Convenience wrappers over the documented routes.
    def create_org(self, slug: str) -> Any:
        return self.call("POST", "/orgs", {"slug": slug})

    def create_server(self, slug: str, transport: dict, *, org: str | None = None,
                      secret_headers: dict[str, str] | None = None, timeout_ms: int | None = None) -> Any:
        body: dict[str, Any] = {"slug": slug, "transport": transport}
        if secret_headers:
            body["secret_headers"] = secret_headers
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        return self.call("POST", f"/orgs/{org}/servers" if org else "/servers", body)

    def http_server(self, slug: str, url: str, **kwargs: Any) -> Any:
        return self.create_server(slug, {"type": "http", "url": url}, **kwargs)

    def grant(self, org: str, server: str, tool_filter: Any = "*", enabled: bool = True) -> Any:
        return self.call("PUT", f"/orgs/{org}/grants/{server}", {"enabled": enabled, "filter": tool_filter})

    def set_grant_enabled(self, org: str, server: str, enabled: bool, **params: str) -> Any:
        return self.call("PATCH", f"/orgs/{org}/grants/{server}", {"enabled": enabled}, params=params or None)

    def set_server_enabled(self, server: str, enabled: bool, org: str | None = None) -> Any:
        path = f"/orgs/{org}/servers/{server}" if org else f"/servers/{server}"
        return self.call("PATCH", path, {"enabled": enabled})

    def create_team(self, org: str, slug: str, scope: Any = None) -> Any:
        body: dict[str, Any] = {"slug": slug}
        if scope is not None:
            body["scope"] = scope
        return self.call("POST", f"/orgs/{org}/teams", body)

    def create_agent(self, org: str, slug: str, *, team: str | None = None, scope: Any = None) -> Any:
        body: dict[str, Any] = {"slug": slug}
        if team:
            body["team"] = team
        if scope is not None:
            body["scope"] = scope
        return self.call("POST", f"/orgs/{org}/agents", body)

    def set_agent_scope(self, org: str, agent: str, scope: Any) -> Any:
        return self.call("PUT", f"/orgs/{org}/agents/{agent}/scope", scope)

    def create_key(self, org: str, name: str, **fields: Any) -> str:
        created = self.call("POST", f"/orgs/{org}/keys", {"name": name, **fields})
        return created["secret"]

    def revoke_key(self, org: str, key_id: int) -> Any:
        return self.call("POST", f"/orgs/{org}/keys/{key_id}/revoke")

    def org_admin_token(self, org: str, name: str = "org-admin") -> str:
        return self.call("POST", f"/orgs/{org}/admin-tokens", {"name": name})["secret"]


class Warden:
    """One real `warden serve` process on a free port."""

    def __init__(self, procs: Procs, *, database_url: str, admin_token: str, secret_key: str,
                 extra_env: dict[str, str] | None = None, name: str = "warden", port: int | None = None) -> None:
        self.procs = procs
        self.database_url = database_url
        self.admin_token = admin_token
        self.secret_key = secret_key
        self.extra_env = dict(extra_env or {})
        self.name = name
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.start()
        self.admin = Admin(self.base, admin_token)

    def start(self) -> None:
        binary = warden_bin()
        if not binary.exists():
            raise FileNotFoundError(f"warden binary not built: {binary} (cargo build -p warden)")
        env = {
            "WARDEN_ADMIN_TOKEN": self.admin_token,
            "WARDEN_SECRET_KEY": self.secret_key,
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
            **self.extra_env,
        }
        argv = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--database-url", self.database_url]
        self.proc = self.procs.start(argv, self.name, env=env)
        wait_until(self._healthy, 60, interval=0.05, what=f"{self.name} /healthz")

    def _healthy(self) -> bool:
        assert self.proc is not None
        if not self.proc.alive():
            raise ProcessDied(f"{self.name} exited ({self.proc.popen.returncode}):\n{self.proc.log_tail()}")
        try:
            return httpx2.get(self.base + "/healthz", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            self.proc.stop(sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    def readyz(self) -> int:
        return httpx2.get(self.base + "/readyz", timeout=2).status_code

    @property
    def mcp(self) -> str:
        return self.base + "/mcp"

    def server_url(self, slug: str) -> str:
        return f"{self.base}/mcp/servers/{slug}"


def new_secret_key() -> str:
    import base64

    return base64.b64encode(os.urandom(32)).decode()


# --- PostgreSQL ------------------------------------------------------------------


def pg_bin_dir() -> Path:
    if os.environ.get("WARDEN_PG_BIN"):
        return Path(os.environ["WARDEN_PG_BIN"])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not candidates:
        raise FileNotFoundError("PostgreSQL initdb not found (scripts/test.sh installs it)")
    return candidates[-1].parent


class Postgres:
    """A throwaway PostgreSQL server in a temp dir, on a free loopback port."""

    def __init__(self) -> None:
        self.bin = pg_bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="warden-e2e-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as:
            shutil.chown(self.dir, self.run_as)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8"])
        conf = self.data / "postgresql.conf"
        with open(conf, "a") as out:
            out.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                      f"unix_socket_directories = '{self.dir}'\nfsync = off\nmax_connections = 200\n")
        self.start()

    def _run(self, argv: list[str]) -> None:
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--"] + argv
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}\n{result.stderr}")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w",
                   "-t", "30", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- The Python MCP SDK ------------------------------------------------------------

# `Client(mode=...)`: "legacy" is the 2025-11-25 era (initialize, Mcp-Session-Id,
# GET stream); "auto" is the SDK's default, which finds 2026-07-28 on Warden
# (server/discover, stateless, subscriptions/listen).
ERAS = ("legacy", "auto")


@contextlib.asynccontextmanager
async def mcp_client(url: str, key: str, *, mode: str = "legacy", headers: dict[str, str] | None = None,
                     **client_kwargs: Any) -> AsyncIterator[Client]:
    """An SDK `Client` on `url` sending `Authorization: Bearer <key>` (plus
    `headers`). The SDK takes headers through the httpx2 client it is given.
    Its response cache is off: these tests list right after a policy change
    and must see the gateway's answer, not a cached one."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}", **(headers or {})},
                             timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, cache=None,
                            **client_kwargs) as client:
        yield client


# --- JSON-RPC over Streamable HTTP by hand (for exact wire checks) ----------------


class RawMcp:
    """A minimal hand-rolled MCP client for checks the SDKs hide (status codes,
    headers, exact JSON)."""

    def __init__(self, url: str, key: str | None, protocol: str = "2025-11-25") -> None:
        self.url = url
        self.key = key
        self.protocol = protocol
        self.session: str | None = None
        self.next_id = 0
        self.last_session_header: str | None = None
        self.http = httpx2.Client(timeout=30)

    def headers(self) -> dict[str, str]:
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if self.key:
            h["Authorization"] = f"Bearer {self.key}"
        if self.session:
            h["Mcp-Session-Id"] = self.session
            h["MCP-Protocol-Version"] = self.protocol
        return h

    def post(self, message: dict) -> httpx2.Response:
        return self.http.post(self.url, headers=self.headers(), content=json.dumps(message))

    def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        resp = self.post(msg)
        assert resp.status_code == 200, f"{method}: HTTP {resp.status_code}: {resp.text}"
        self.last_session_header = resp.headers.get("mcp-session-id")
        return parse_reply(resp, self.next_id)

    def initialize(self) -> dict:
        reply = self.request("initialize", {"protocolVersion": self.protocol, "capabilities": {},
                                            "clientInfo": {"name": "warden-e2e-raw", "version": "1"}})
        self.session = self.last_session_header
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def close(self) -> None:
        self.http.close()


def parse_reply(resp: httpx2.Response, request_id: Any) -> dict:
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        for event in sse_events(resp.text):
            with contextlib.suppress(ValueError):
                msg = json.loads(event)
                if isinstance(msg, dict) and msg.get("id") == request_id:
                    return msg
        raise AssertionError(f"no reply with id {request_id} in SSE body: {resp.text[:2000]}")
    return resp.json()


def sse_events(body: str) -> Iterator[str]:
    data: list[str] = []
    for line in body.splitlines() + [""]:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and data:
            yield "\n".join(data)
            data = []


def wait_for_tools(url: str, key: str, names: set[str], timeout: float = 20) -> set[str]:
    """Until `names` are all in the caller's `tools/list` at `url`.

    Warden connects to a just-added upstream in the background, so its catalog
    (and hence its tools) appears a moment after the admin write returns."""

    def listed() -> set[str] | None:
        client = RawMcp(url, key)
        try:
            client.initialize()
            tools = client.request("tools/list", {})["result"]["tools"]
            seen = {t["name"] for t in tools}
            return seen if names <= seen else None
        finally:
            client.close()

    return wait_until(listed, timeout, interval=0.05, what=f"tools {sorted(names)} at {url}")
