"""Shared fixtures: an isolated data directory per test, and a real PostgreSQL server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_core() -> None:
    from core import config, db
    from core.jobs import stop_workers
    from core.llm import close_providers, set_gateway

    stop_workers(requeue=False)  # this test's job workers must not poll the next test's database
    old = set_gateway(None)
    if old is not None:
        old.log.flush()
        old.log.close()
        close_providers(old)
    config.reset_settings()
    db.dispose_engine()


@pytest.fixture
def keel_home(tmp_path, monkeypatch):
    """A fresh KEEL_HOME (SQLite) with migrations applied; core singletons reset before and after."""
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "keel"))
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    _reset_core()
    from core import services

    services.prepare()
    yield tmp_path / "keel"
    _reset_core()


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists():
            return base
    return None


@pytest.fixture(scope="session")
def postgres_url():
    """Start a throwaway PostgreSQL cluster on 127.0.0.1 for this test session; yields its base URL."""
    import tempfile

    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: run `make test` (it installs Debian's postgresql package)")
    # Its own folder under /tmp: pytest's tmp folders are private to root, and PostgreSQL refuses to run as root.
    workdir = Path(tempfile.mkdtemp(prefix="keel-pg-"))
    data = workdir / "data"
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(workdir, "postgres")
    port = free_port()
    init = subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "keel", "--auth=trust",
                           "-E", "UTF8"], capture_output=True, text=True)
    if init.returncode:
        pytest.fail(f"initdb failed: {init.stderr[-2000:]}")
    log = workdir / "pg.log"
    subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start",
                    "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {workdir} -c fsync=off"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://keel@127.0.0.1:{port}"
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, monkeypatch):
    """The same test against a fresh SQLite file and a fresh PostgreSQL database, migrated to head."""
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "keel"))
    if request.param == "postgresql":
        base = request.getfixturevalue("postgres_url")
        name = f"t_{uuid.uuid4().hex[:12]}"
        import psycopg

        with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        monkeypatch.setenv("KEEL_DATABASE_URL", f"{base}/{name}")
    else:
        monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    _reset_core()
    from core import services

    services.prepare()
    yield request.param
    _reset_core()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")
