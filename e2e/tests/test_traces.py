"""OpenTelemetry traces: a real warden exporting OTLP/HTTP to a receiver that
decodes the real protocol (fixtures/otlp_receiver.py), with client trace
context from HTTP headers and from `params._meta` (2026-07-28 wire), passed
on to a recording upstream; and no secret in anything exported."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx2

from wardenkit import FIXTURES, Procs, RawMcp, Warden, new_secret_key, parse_reply, python, wait_until

ORG = "acme"
UPSTREAM_SECRET = "upstream-secret-" + secrets.token_hex(12)


def new_parent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def call(client: RawMcp, name: str, args: dict, extra_headers: dict[str, str]) -> dict:
    client.next_id += 1
    msg = {"jsonrpc": "2.0", "id": client.next_id, "method": "tools/call",
           "params": {"name": name, "arguments": args}}
    resp = client.http.post(client.url, headers={**client.headers(), **extra_headers}, content=json.dumps(msg))
    assert resp.status_code == 200, resp.text
    return parse_reply(resp, client.next_id)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_spans_follow_the_client_trace_and_carry_no_secret(procs: Procs, tmp_path: Path, admin_token: str) -> None:
    spans_file, raw_file, record = tmp_path / "spans.jsonl", tmp_path / "otlp.raw", tmp_path / "upstream.jsonl"
    receiver = procs.start([python(), str(FIXTURES / "otlp_receiver.py"), "--port", "0",
                            "--out", str(spans_file), "--raw", str(raw_file)], "otlp-receiver")
    otlp_port = receiver.listening_port()
    upstream = procs.py_upstream(record=record)
    warden = Warden(procs, database_url=f"sqlite://{tmp_path / 'warden.db'}", admin_token=admin_token,
                    secret_key=new_secret_key(),
                    extra_env={"WARDEN_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}"})
    admin = warden.admin
    admin.create_org(ORG)
    admin.create_server("py", {"type": "http", "url": upstream}, secret_headers={"X-Upstream-Token": UPSTREAM_SECRET},
                        timeout_ms=1500)
    admin.grant(ORG, "py", ["echo", "slow"])
    key = admin.create_key(ORG, "traced-client")

    # The server's catalog arrives in the background: wait for `echo`.
    def echo_listed() -> bool:
        c = RawMcp(warden.server_url("py"), key)
        try:
            c.initialize()
            return "echo" in {t["name"] for t in c.request("tools/list", {})["result"]["tools"]}
        finally:
            c.close()
    wait_until(echo_listed, 20, interval=0.1, what="echo listed")

    client = RawMcp(warden.server_url("py"), key)
    client.initialize()
    # 1. Allowed, trace context in the HTTP headers.
    t1, s1, tp1 = new_parent()
    allowed = call(client, "echo", {"text": "traced"}, {"traceparent": tp1, "tracestate": "vendor=e2e"})
    assert allowed["result"]["content"][0]["text"] == "traced"
    allowed_decision = allowed["result"]["_meta"]["warden.dev/decision_id"]
    # 2. Denied (not in the grant's filter), trace context in the headers.
    t2, s2, tp2 = new_parent()
    denied = call(client, "add", {"a": 1, "b": 2}, {"traceparent": tp2})
    denied_data = denied["error"]["data"]
    # 4. Allowed, but the upstream times out: the upstream span says so.
    t4, s4, tp4 = new_parent()
    timed_out = call(client, "slow", {"seconds": 5, "tag": "t4"}, {"traceparent": tp4})
    assert "error" in timed_out, timed_out
    client.close()
    # 3. The 2026-07-28 wire: trace context in `params._meta`.
    t3, s3, tp3 = new_parent()
    stateless = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"text": "meta"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}, "traceparent": tp3}}}
    resp = httpx2.post(warden.server_url("py"), content=json.dumps(stateless), timeout=30, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
    assert resp.status_code == 200, resp.text
    assert parse_reply(resp, 7)["result"]["content"][0]["text"] == "meta"

    # Graceful shutdown flushes the batch exporter.
    warden.stop()

    def spans_of_traces() -> list[dict] | None:
        spans = read_jsonl(spans_file)
        requests = {s["trace_id"] for s in spans if s["name"] == "mcp.request"}
        return spans if {t1, t2, t3, t4} <= requests else None
    spans = wait_until(spans_of_traces, 20, interval=0.1, what="exported mcp.request spans")

    def one(trace: str, name: str) -> dict:
        found = [s for s in spans if s["trace_id"] == trace and s["name"] == name]
        assert len(found) == 1, (trace, name, [s["name"] for s in spans if s["trace_id"] == trace])
        return found[0]

    for span in spans:
        assert span["resource"]["service.name"] == "warden"

    # 1. Allowed: request (child of the client's span) > decision, upstream.
    req1 = one(t1, "mcp.request")
    assert req1["parent_span_id"] == s1
    assert req1["kind"] == "SPAN_KIND_SERVER"
    a = req1["attributes"]
    assert a["mcp.method"] == "tools/call"
    assert a["mcp.mount"] == "/mcp/servers/py"
    assert isinstance(a["warden.org_id"], int)
    assert isinstance(a["warden.key_id"], int)
    assert a["warden.server"] == "py"
    assert a["warden.tool"] == "echo"
    assert a["warden.decision_id"] == allowed_decision
    assert a["warden.revision"] >= 1
    assert "warden.reason" not in a
    dec1 = one(t1, "warden.decision")
    assert dec1["parent_span_id"] == req1["span_id"]
    assert dec1["attributes"]["warden.decision_id"] == allowed_decision
    assert dec1["attributes"]["warden.allowed"] is True
    up1 = one(t1, "mcp.upstream")
    assert up1["parent_span_id"] == req1["span_id"]
    assert up1["kind"] == "SPAN_KIND_CLIENT"
    assert up1["attributes"]["warden.server"] == "py"
    assert up1["attributes"]["warden.upstream.latency_ms"] >= 0
    assert "error.type" not in up1["attributes"]

    # 2. Denied: the reason and decision id, and nothing went upstream.
    req2 = one(t2, "mcp.request")
    assert req2["parent_span_id"] == s2
    assert req2["attributes"]["warden.reason"] == denied_data["reason"]
    assert req2["attributes"]["warden.decision_id"] == denied_data["decision_id"]
    assert req2["attributes"]["warden.tool"] == "add"
    dec2 = one(t2, "warden.decision")
    assert dec2["parent_span_id"] == req2["span_id"]
    assert dec2["attributes"]["warden.reason"] == denied_data["reason"]
    assert dec2["attributes"]["warden.allowed"] is False
    assert not [s for s in spans if s["trace_id"] == t2 and s["name"] == "mcp.upstream"]

    # 3. `_meta` trace context on the 2026-07-28 wire.
    req3 = one(t3, "mcp.request")
    assert req3["parent_span_id"] == s3
    up3 = one(t3, "mcp.upstream")
    assert up3["parent_span_id"] == req3["span_id"]

    # 4. An upstream failure: error kind and status on `mcp.upstream`, the
    # refusal's reason on the request.
    req4 = one(t4, "mcp.request")
    up4 = one(t4, "mcp.upstream")
    assert up4["parent_span_id"] == req4["span_id"]
    assert up4["attributes"]["error.type"] == "timeout"
    assert up4["status"]["code"] == "STATUS_CODE_ERROR"
    assert req4["attributes"]["warden.reason"]

    # The upstream received the trace: an HTTP `traceparent` naming Warden's
    # `mcp.upstream` span, and `_meta.traceparent` where the client used it.
    calls = [r for r in read_jsonl(record) if '"tools/call"' in r["body"]]
    by_trace: dict[str, dict] = {}
    for r in calls:
        headers = {k.lower(): v for k, v in r["headers"]}
        if "traceparent" in headers:
            by_trace[headers["traceparent"].split("-")[1]] = {"headers": headers, "body": json.loads(r["body"])}
    assert by_trace[t1]["headers"]["traceparent"] == f"00-{t1}-{up1['span_id']}-01"
    assert by_trace[t1]["headers"].get("tracestate") == "vendor=e2e"
    # The fixture speaks 2026-07-28, where the trace context also rides in
    # `_meta` on every request (naming the same span), even when the client
    # sent it as HTTP headers only.
    assert by_trace[t1]["body"]["params"]["_meta"]["traceparent"] == f"00-{t1}-{up1['span_id']}-01"
    assert t2 not in by_trace
    assert by_trace[t3]["headers"]["traceparent"] == f"00-{t3}-{up3['span_id']}-01"
    assert by_trace[t3]["body"]["params"]["_meta"]["traceparent"] == f"00-{t3}-{up3['span_id']}-01"

    # No secret anywhere in what was exported.
    exported = raw_file.read_bytes() + spans_file.read_bytes()
    for secret in (key, admin_token, UPSTREAM_SECRET):
        assert secret.encode() not in exported
    assert b"Bearer" not in exported


def test_no_endpoint_no_trace_headers_upstream(procs: Procs, warden: Warden, tmp_path: Path) -> None:
    """Tracing is off by default: nothing is added to upstream requests."""
    record = tmp_path / "upstream.jsonl"
    upstream = procs.py_upstream(record=record)
    admin = warden.admin
    admin.create_org(ORG)
    admin.create_server("py", {"type": "http", "url": upstream})
    admin.grant(ORG, "py", "*")
    key = admin.create_key(ORG, "untraced")
    client = RawMcp(warden.server_url("py"), key)

    def echoed() -> bool:
        try:
            client.session = None
            client.initialize()
            return "result" in call(client, "echo", {"text": "x"}, {"traceparent": new_parent()[2]})
        except AssertionError:
            return False
    wait_until(echoed, 20, interval=0.1, what="echo answered")
    client.close()
    for r in read_jsonl(record):
        assert "traceparent" not in {k.lower() for k, _ in r["headers"]}
