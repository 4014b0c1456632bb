"""A non-editable install: build the wheel offline, install it into a fresh venv, run it from a bare directory."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voterpipe import storage
from voterpipe.config import DATA_ROOT_ENV

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE, SNAPSHOT = "nc", "2026-11-01"
# What setuptools reads to build the wheel; voterpipe/_config stays a link, as in the checkout.
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "config", "voterpipe")
# Variables that could lead the installed package back to the checkout or to the caller's configuration.
CALLER_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LUIGI_CONFIG_PATH", DATA_ROOT_ENV,
                    "VOTERPIPE_FORMATS_DIR")


def _run(command: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CALLER_VARIABLES}
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(map(str, command))} exited {done.returncode}\n"
                                  f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}")
    return done


def _build_wheel(work: Path) -> Path:
    source = work / "source"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in BUILD_INPUTS:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    # No build isolation and no index: the build uses this interpreter's setuptools, with no network.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          source, "-w", work / "dist"], cwd=work)
    (wheel,) = (work / "dist").glob("voterpipe-*.whl")
    return wheel


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel_install")
    assert not work.resolve().is_relative_to(REPO_ROOT.resolve())
    return work


@pytest.fixture(scope="module")
def venv_python(work) -> Path:
    """A fresh venv holding the wheel; the dependencies come from this interpreter's site-packages."""
    wheel = _build_wheel(work)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=work)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work)
    # Plain path lines only: .pth files inside those directories (the checkout's editable finder) stay inactive.
    Path(purelib.stdout.strip(), "voterpipe_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages()))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
         cwd=work)
    return python


@pytest.fixture(scope="module")
def bare_dir(work) -> Path:
    """A working directory with no luigi.cfg and no checkout around it."""
    cwd = work / "elsewhere"
    cwd.mkdir()
    return cwd


def test_installed_package_finds_its_formats_and_cohorts(venv_python, bare_dir):
    probe = (
        "import voterpipe\n"
        "from voterpipe.cohorts import load_cohort_config\n"
        "from voterpipe.formats.layouts import load_layouts\n"
        "print(voterpipe.__file__)\n"
        "print(voterpipe.SHIPPED_CONFIG_DIR.is_symlink())\n"
        "print(','.join(sorted(load_layouts())))\n"
        "print(load_cohort_config().source)\n"
    )
    package_file, config_is_link, layouts, cohorts_source = _run(
        [venv_python, "-c", probe], cwd=bare_dir).stdout.splitlines()

    venv = venv_python.parents[1]
    assert Path(package_file).is_relative_to(venv), f"imported from {package_file}, not the installed wheel"
    assert config_is_link == "False"  # the wheel holds a copy, not the link
    shipped = sorted(path.stem for path in (REPO_ROOT / "config" / "formats").glob("*.toml"))
    assert layouts.split(",") == shipped
    assert Path(cohorts_source).is_relative_to(venv)


def test_pipeline_runs_from_a_bare_directory(venv_python, bare_dir, work, monkeypatch):
    data = work / "data"
    voterpipe = [venv_python.parent / "voterpipe", "--data-root", data]
    _run(voterpipe + ["synth", "--state", STATE, "--voters", 1000, "--snapshot", SNAPSHOT], cwd=bare_dir)
    monkeypatch.setenv(DATA_ROOT_ENV, str(data))
    tiger = storage.cache_dir("synth") / STATE / "tiger"
    _run(voterpipe + ["tiger", "import", "--dir", tiger], cwd=bare_dir)

    _run(voterpipe + ["run", "--state", STATE, "--snapshot", SNAPSHOT, "--local-scheduler"], cwd=bare_dir,
         timeout=300)

    assert not (bare_dir / "luigi.cfg").exists()
    voters = pq.ParquetFile(storage.stage_dir("canonical", STATE, SNAPSHOT) / "voters.parquet").metadata.num_rows
    voter_file = storage.stage_dir("reporting/voter_file", STATE, SNAPSHOT) / "voters_enriched.parquet"
    assert voters > 0 and pq.ParquetFile(voter_file).metadata.num_rows == voters
    assert (storage.stage_dir("reporting/report", STATE, SNAPSHOT) / "report.html").stat().st_size > 0
