"""Shared fixtures: a temporary data root and a clean Luigi instance cache per test."""

from __future__ import annotations

import os
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
