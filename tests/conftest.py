"""Shared fixtures: a temporary data root, a clean Luigi instance cache per test, and a published good NC snapshot to copy."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import luigi
import pytest

from voterpipe.config import DATA_ROOT_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _luigi_isolation(monkeypatch):
    # luigi.cfg is read relative to the cwd; pin it so tests see the repo's configuration.
    monkeypatch.chdir(REPO_ROOT)
    luigi.task_register.Register.clear_instance_cache()
    yield
    luigi.task_register.Register.clear_instance_cache()


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def good_root(tmp_path_factory) -> Path:
    """A data root where NC's first snapshot is built and published (bad_snapshots.FIRST), built
    once per test session; tests take a copy of it (`root`)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bad_snapshots

    root = tmp_path_factory.mktemp("good") / "data"
    root.mkdir()
    bad_snapshots.build_good_root(root)
    return root


@pytest.fixture
def root(good_root, data_root) -> Path:
    """This test's data root: a copy of good_root, whose current snapshot is NC's first."""
    shutil.copytree(good_root, data_root, dirs_exist_ok=True)
    return data_root


@dataclass
class Postgres:
    dsn: str
    password: str | None


@pytest.fixture(scope="session")
def pg() -> Postgres:
    """One throwaway PostgreSQL server for the session (or $VOTERPIPE_TEST_PG_DSN); tests keep
    apart by schema."""
    import psycopg2.extensions

    sys.path.insert(0, str(Path(__file__).parent))
    import pg_server

    dsn = os.environ.get("VOTERPIPE_TEST_PG_DSN")
    if dsn:
        yield Postgres(dsn, psycopg2.extensions.parse_dsn(dsn).get("password"))
        return
    try:
        server = pg_server.start_server()
    except pg_server.PostgresUnavailable as exc:
        print(f"skipping PostgreSQL tests: {exc}")
        pytest.skip(f"no PostgreSQL server available: {exc}")
    try:
        yield Postgres(server.dsn, server.password)
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(pg) -> str:
    return pg.dsn
