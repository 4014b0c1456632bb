"""Configuration: luigi.Config classes read from luigi.cfg (one section each)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi

DATA_ROOT_ENV = "VOTERPIPE_DATA_ROOT"
PG_DSN_ENV = "VOTERPIPE_PG_DSN"


class voterpipe(luigi.Config):  # noqa: N801 - Luigi maps the class name to the [voterpipe] section
    data_root = luigi.Parameter(default="data", description="root of the layered data tree")
    chunk_rows = luigi.IntParameter(default=200_000, description="rows per streaming chunk")


class addresses(luigi.Config):  # noqa: N801
    processes = luigi.IntParameter(default=0, description="tagging processes (0 = all cores)")


class households(luigi.Config):  # noqa: N801
    group_quarters_min_surnames = luigi.IntParameter(default=4)
    group_quarters_min_voters = luigi.IntParameter(default=8)


class geocoder(luigi.Config):  # noqa: N801
    backend = luigi.ChoiceParameter(choices=["tiger", "census"], default="tiger")
    census_url = luigi.Parameter(default="https://geocoding.geo.census.gov/geocoder/")
    benchmark = luigi.Parameter(default="Public_AR_Current")
    vintage = luigi.Parameter(default="Current_Current")
    batch_size = luigi.IntParameter(default=1000)
    batches_in_flight = luigi.IntParameter(default=4)
    timeout_seconds = luigi.FloatParameter(default=300.0)
    max_retries = luigi.IntParameter(default=6)
    census_districts = luigi.BoolParameter(default=False, description="census: districts by one JSON call per block")


class warehouse(luigi.Config):  # noqa: N801
    backend = luigi.ChoiceParameter(choices=["duckdb", "postgres"], default="duckdb")
    duckdb_path = luigi.Parameter(default="warehouse.duckdb")
    dsn = luigi.Parameter(default="", visibility=luigi.parameter.ParameterVisibility.PRIVATE)
    schema = luigi.Parameter(default="voterpipe")


PipelineConfig = voterpipe
AddressConfig = addresses
HouseholdConfig = households
GeocoderConfig = geocoder
WarehouseConfig = warehouse


def data_root() -> Path:
    """The data root: $VOTERPIPE_DATA_ROOT, else [voterpipe] data_root, relative to the cwd."""
    configured = os.environ.get(DATA_ROOT_ENV) or voterpipe().data_root
    return Path(configured).expanduser().resolve()


def warehouse_dsn() -> str:
    """PostgreSQL DSN: $VOTERPIPE_PG_DSN wins over [warehouse] dsn. Never log the result."""
    return os.environ.get(PG_DSN_ENV) or warehouse().dsn
