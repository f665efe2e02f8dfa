"""Shared fixtures: every test gets its own processes, logs and databases."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Iterator

import pytest

from wardenkit import Postgres, Procs, Warden, new_secret_key


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def procs(request, tmp_path: Path) -> Iterator[Procs]:
    """Starts processes for one test; stops them after it and, when the test
    failed, prints the tail of each one's log."""
    owner = Procs(tmp_path)
    yield owner
    owner.close()
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    if failed:
        for proc in owner.all:
            print(f"\n----- {proc.name}: {' '.join(proc.argv)}\n{proc.log_tail(6000)}")


@pytest.fixture
def admin_token() -> str:
    return "wadm_" + secrets.token_urlsafe(24)


@pytest.fixture
def warden(procs: Procs, tmp_path: Path, admin_token: str) -> Warden:
    """A real `warden serve` on a temp SQLite database."""
    return Warden(procs, database_url=f"sqlite://{tmp_path / 'warden.db'}", admin_token=admin_token,
                  secret_key=new_secret_key())


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.close()
