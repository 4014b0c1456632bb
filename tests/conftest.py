"""Shared fixtures: a temporary data root, a clean Luigi instance cache per test, and a published good NC snapshot to copy."""

from __future__ import annotations

import os
import shutil
import sys
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
