"""README.md's snippets, run as shown against a real `warden serve --demo`,
and the code the `--demo` banner prints.

What a test substitutes, and nothing else:

- `cargo run --release -p warden -- serve --demo` runs as the built binary
  (`WARDEN_BIN`) with the arguments after `--`, in a temp directory that
  stands for the repository root (its `target/release/warden` is a link to
  that binary), with `WARDEN_LISTEN` set to a free port instead of 8080.
- The Python block: the demo key for `wdn_...` and that port's URL for
  `http://127.0.0.1:8080/mcp`; it runs with the e2e venv's `python`.
- The shell block: the printed admin token for `wdna_...`; `WARDEN_URL`
  (which the CLI reads) points at that port. Each line runs in `bash` from
  the temp "repository root", after the block's earlier `export` lines.
- The banner's curl and Python code run verbatim: the server prints its real
  address and key into them.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import stat
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from wardenkit import REPO, Proc, Procs, RawMcp, free_port, python, wait_for_tools, warden_bin

README = REPO / "README.md"
CARGO_RUN = "cargo run --release -p warden -- "


def code_blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block in README.md, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```[ \t]*$", README.read_text(), re.M | re.S)


def block(lang: str, first_line: str) -> str:
    found = [body for tag, body in code_blocks() if tag == lang and body.startswith(first_line)]
    assert len(found) == 1, f"README.md should have one ```{lang} block starting {first_line!r}; found {len(found)}"
    return found[0]


def substitute(text: str, placeholder: str, value: str) -> str:
    assert text.count(placeholder) == 1, f"expected {placeholder!r} once in:\n{text}"
    return text.replace(placeholder, value)


@dataclass
class Demo:
    proc: Proc
    root: Path
    port: int
    key: str
    admin_token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp(self) -> str:
        return f"{self.base}/mcp"

    def tools(self) -> set[str]:
        client = RawMcp(self.mcp, self.key)
        try:
            client.initialize()
            return {t["name"] for t in client.request("tools/list", {})["result"]["tools"]}
        finally:
            client.close()


@pytest.fixture
def demo(procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """The README's first command, started the way the module docstring says."""
    command = block("sh", "cargo run").strip()
    assert command.startswith(CARGO_RUN), command
    root = tmp_path / "repo"
    (root / "target" / "release").mkdir(parents=True)
    (root / "target" / "release" / "warden").symlink_to(warden_bin().resolve())
    # A first start on the defaults: no configuration from the environment.
    for name in [n for n in os.environ if n.startswith("WARDEN_") and n not in ("WARDEN_BIN", "WARDEN_PG_BIN",
                                                                                 "WARDEN_E2E_NODE")]:
        monkeypatch.delenv(name)
    port = free_port()
    argv = [str(root / "target" / "release" / "warden"), *shlex.split(command.removeprefix(CARGO_RUN))]
    proc = procs.start(argv, "warden-readme-demo", cwd=root, env={"WARDEN_LISTEN": f"127.0.0.1:{port}"})
    token = proc.wait_line("  WARDEN_ADMIN_TOKEN=", 60).split("=", 1)[1].strip()
    key = re.search(r"Demo key\s*:\s*(\S+)", proc.wait_line("  Demo key", 30)).group(1)
    proc.wait_line("  asyncio.run(main())", 30)  # the whole banner is out
    demo = Demo(proc, root, port, key, token)
    # The demo upstream's catalog arrives a moment after start-up.
    wait_for_tools(demo.mcp, key, {"demo__echo"})
    return demo


def test_readme_has_only_blocks_these_tests_run() -> None:
    """A new README snippet needs a test here; `bash scripts/test.sh` is the
    command that runs this suite, so running it is the suite itself."""
    firsts = [(lang, body.splitlines()[0]) for lang, body in code_blocks()]
    assert firsts == [
        ("sh", "cargo run --release -p warden -- serve --demo"),
        ("python", "import asyncio"),
        ("sh", 'export PATH="$PWD/target/release:$PATH"   # the warden that cargo run --release built'),
        ("sh", "bash scripts/test.sh"),
    ], "README.md's code blocks changed: run each new one in e2e/tests/test_readme.py"
    assert block("sh", "bash scripts/test.sh").strip() == "bash scripts/test.sh"
    assert (REPO / "scripts" / "test.sh").is_file()


def test_serve_demo_uses_the_files_the_readme_names(demo: Demo) -> None:
    assert f"  MCP endpoint : {demo.mcp} " in "\n".join(demo.proc.stdout_lines())
    assert (demo.root / "warden.db").is_file()
    key_file = demo.root / "warden.db.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert demo.admin_token.startswith("wdna_") and demo.key.startswith("wdn_")


def test_readme_python_snippet(demo: Demo, tmp_path: Path) -> None:
    code = block("python", "import asyncio")
    code = substitute(code, '"Bearer wdn_..."', f'"Bearer {demo.key}"')
    code = substitute(code, '"http://127.0.0.1:8080/mcp"', f'"{demo.mcp}"')
    script = tmp_path / "demo.py"
    script.write_text(code)
    run = subprocess.run([python(), str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2, run.stdout
    listed = ast.literal_eval(lines[0])
    assert listed[:2] == ["demo__echo", "demo__add"], listed  # as the comment in the snippet says
    assert lines[1] == "hi"


def test_readme_shell_block(demo: Demo) -> None:
    shell = substitute(block("sh", "export PATH="), "wdna_...", demo.admin_token)
    env = {**os.environ, "WARDEN_URL": demo.base}
    exports: list[str] = []
    ran: list[str] = []

    def run(line: str) -> str:
        result = subprocess.run(["bash", "-c", "\n".join([*exports, line])], capture_output=True, text=True,
                                timeout=60, cwd=demo.root, env=env)
        assert result.returncode == 0, f"{line}\nexit {result.returncode}\n{result.stdout}{result.stderr}"
        return result.stdout

    for line in shell.splitlines():
        command = line.split("#", 1)[0].strip()
        out = run(line)
        ran.append(command)
        if command.startswith("export "):
            assert out == ""
            exports.append(line)
        elif command == "warden key list demo":
            rows = [row.split() for row in out.splitlines()[1:]]
            # The demo key is key 1 on a first start, as `--key 1` below assumes.
            assert rows[0][0] == "1" and demo.key.startswith(rows[0][2]), out
        elif command == "warden grant disable demo demo":
            assert re.search(r"^enabled\s+false$", out, re.M), out
            assert not {t for t in demo.tools() if t.startswith("demo__")}
        elif command == "warden explain demo --key 1 --server demo --tool echo":
            assert out.startswith("DENIED server_disabled_by_org"), out
            assert re.search(r"^org_grant_enabled\s+fail\s+server_disabled_by_org$", out, re.M), out
        elif command == "warden grant enable demo demo":
            assert re.search(r"^enabled\s+true$", out, re.M), out
            assert {"demo__echo", "demo__add"} <= demo.tools()
        else:
            pytest.fail(f"no expectation for README command {command!r}: add one here")
    assert ran[2:] == ["warden key list demo", "warden grant disable demo demo",
                       "warden explain demo --key 1 --server demo --tool echo", "warden grant enable demo demo"]


def banner_block(lines: list[str], header: str, last: str) -> str:
    """The indented lines after `header` up to and including `last`, dedented."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    end = next(i for i in range(start, len(lines)) if lines[i] == last)
    return textwrap.dedent("\n".join(lines[start:end + 1])) + "\n"


def test_demo_banner_curl_and_python_run_as_printed(demo: Demo, tmp_path: Path) -> None:
    lines = demo.proc.stdout_lines()

    curl = banner_block(lines, "List the tools with curl:", next(line for line in lines if "tools/list" in line))
    listed = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert '"demo__echo"' in listed.stdout and '"demo__add"' in listed.stdout, listed.stdout

    code = banner_block(lines, "Or with the Python MCP SDK", "  asyncio.run(main())")
    script = tmp_path / "banner.py"
    script.write_text(code)
    run = subprocess.run([python(), str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, f"{code}\n{run.stderr}"
    assert run.stdout == "hi\n"
