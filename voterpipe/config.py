"""Configuration: luigi.Config classes read from luigi.cfg (one section each)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi

from voterpipe import SHIPPED_CONFIG_DIR

DATA_ROOT_ENV = "VOTERPIPE_DATA_ROOT"
SCRATCH_ENV = "VOTERPIPE_SCRATCH"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
PG_DSN_ENV = "VOTERPIPE_PG_DSN"


class voterpipe(luigi.Config):  # noqa: N801 - Luigi maps the class name to the [voterpipe] section
    data_root = luigi.Parameter(default="data", description="root of the layered data tree")
    chunk_rows = luigi.IntParameter(default=200_000, description="rows per streaming chunk")
    formats_dir = luigi.Parameter(
        default="", description="a directory of your own layout TOMLs; they add to the shipped "
                                "ones and override a shipped layout of the same file name")
    cohorts_file = luigi.Parameter(default="", description="cohort definitions (default: the shipped cohorts.toml)")
    file_mode = luigi.Parameter(
        default="0600", description="mode of the files the pipeline writes (octal; directories get the "
                                    "matching x bits): personal data stays readable by its owner only")
    scratch_dir = luigi.Parameter(
        default="", description="with an s3:// data root: this worker's local working copy of it "
                                "($VOTERPIPE_SCRATCH wins; default ~/.cache/voterpipe/<bucket>/<prefix>)")
    staging_sweep_minutes = luigi.FloatParameter(
        default=60.0, description="with an s3:// data root: a stage's object prefixes that no manifest "
                                  "names are deleted once this old (a live writer may still be using them)")


class s3(luigi.Config):  # noqa: N801 - Luigi's own [s3] section: boto3 client keyword arguments
    endpoint_url = luigi.Parameter(default="", description="S3-compatible endpoint ($AWS_ENDPOINT_URL "
                                                           "when empty; AWS itself when both are)")


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


class scale(luigi.Config):  # noqa: N801 - per state: [scale.<state>] (voterpipe/tasks/partitions.py)
    partitions = luigi.IntParameter(
        default=1, description="partition tasks per snapshot for address normalisation, geocoding and "
                               "households (1: one task each, as on one machine)")


class warehouse(luigi.Config):  # noqa: N801
    backend = luigi.ChoiceParameter(choices=["duckdb", "postgres"], default="duckdb")
    duckdb_path = luigi.Parameter(default="warehouse.duckdb")
    dsn = luigi.Parameter(default="", visibility=luigi.parameter.ParameterVisibility.PRIVATE)
    schema = luigi.Parameter(default="voterpipe")
    duckdb_memory_limit = luigi.Parameter(
        default="1GB", description="DuckDB memory cap in BuildVoterFile and the DuckDB publish ('' = 80% of RAM)")


class drop(luigi.Config):  # noqa: N801 - per state: [drop.<state>]
    marker = luigi.Parameter(default="_READY", description="the file a sender writes when the drop is complete")
    settle_seconds = luigi.FloatParameter(
        default=600.0, description="without a marker: how long every file must be unchanged (0: marker required)")
    partial_counties = luigi.BoolParameter(default=False, description="a per-county layout may deliver some counties")


class quality(luigi.Config):  # noqa: N801 - per state: [quality.<state>]
    voter_count_change = luigi.FloatParameter(default=0.10, description="most |voters / previous voters - 1|")
    rejected_lines = luigi.FloatParameter(default=0.01, description="most rejected / read lines")
    column_nulled = luigi.FloatParameter(default=0.02, description="most share of a column's non-empty raw values nulled")
    history_not_on_roll = luigi.FloatParameter(default=0.05, description="most history rows of voters not in the voter file")
    address_parse_rate = luigi.FloatParameter(default=0.90, description="least share of voter addresses parsed")
    geocode_match_rate = luigi.FloatParameter(default=0.90, description="least geocode match rate among parsed addresses")
    accept = luigi.Parameter(default="", description="gates whose failure is accepted for this run (voterpipe run --accept)")
    exit_code = luigi.IntParameter(default=50, description="voterpipe run's exit code when a gate failed")


class cron(luigi.Config):  # noqa: N801 - `voterpipe cron` (voterpipe/ops/cron.py)
    states = luigi.Parameter(default="", description="states to process, comma-separated (empty: every "
                                                     "state with drops under 01_raw/)")
    workers = luigi.IntParameter(default=1, description="luigi workers per run")
    log_file = luigi.Parameter(default="var/log/voterpipe.log", description="one line per stage run, rotated")
    log_max_bytes = luigi.IntParameter(default=5_000_000)
    log_backups = luigi.IntParameter(default=5)
    lock_exit_code = luigi.IntParameter(default=11, description="exit code when another run holds the data root's lock")


class alerts(luigi.Config):  # noqa: N801 - voterpipe/ops/alerts.py; off unless a destination is set
    webhook_url = luigi.Parameter(default="", visibility=luigi.parameter.ParameterVisibility.PRIVATE,
                                  description="POST a JSON notice here (a URL may hold a token: never logged)")
    email_to = luigi.Parameter(default="", description="comma-separated addresses")
    email_from = luigi.Parameter(default="voterpipe@localhost")
    smtp_host = luigi.Parameter(default="localhost")
    smtp_port = luigi.IntParameter(default=25)
    timeout_seconds = luigi.FloatParameter(default=10.0, description="per delivery attempt")
    time_limit_minutes = luigi.FloatParameter(default=0.0, description="alert when a stage runs longer (0: never)")
    time_limits = luigi.Parameter(default="", description="per task, minutes: 'GeocodeAddresses=120, ImportSnapshot=30'")


QUALITY_GATES = ("voter_count_change", "rejected_lines", "column_nulled", "history_not_on_roll",
                 "address_parse_rate", "geocode_match_rate")


_SECTIONS = {"voterpipe": voterpipe, "addresses": addresses, "households": households,
             "geocoder": geocoder, "warehouse": warehouse, "drop": drop, "quality": quality}


def state_values(section: str, state: str, options: tuple[str, ...] | None = None) -> dict:
    """A section's effective values for one state: [section.<state>] options override [section]."""
    settings = _SECTIONS[section]()
    params = dict(settings.get_params())
    options = tuple(params) if options is None else options
    values = {option: getattr(settings, option) for option in options}
    parser = luigi.configuration.get_config()
    override = f"{section}.{state.lower()}"
    for option in options:
        if parser.has_option(override, option):
            values[option] = params[option].parse(parser.get(override, option))
    return values


def quality_gate_retcode() -> int:
    """[quality] exit_code: above luigi's own [retcode] codes, so it wins when a gate failed."""
    return quality().exit_code


def section_values(section: str, options: tuple[str, ...]) -> dict:
    """The effective values (luigi.cfg, else defaults) of some options of one section."""
    settings = _SECTIONS[section]()
    return {option: getattr(settings, option) for option in options}


def formats_dirs() -> list[Path]:
    """Where layouts are read from: the shipped ones, then [voterpipe] formats_dir (which wins)."""
    dirs = [SHIPPED_CONFIG_DIR / "formats"]
    if voterpipe().formats_dir:
        dirs.append(Path(voterpipe().formats_dir).expanduser().resolve())
    return dirs


def cohorts_path() -> Path:
    """[voterpipe] cohorts_file, else the shipped config/cohorts.toml."""
    configured = voterpipe().cohorts_file
    return Path(configured).expanduser().resolve() if configured else SHIPPED_CONFIG_DIR / "cohorts.toml"


PipelineConfig = voterpipe
AddressConfig = addresses
HouseholdConfig = households
GeocoderConfig = geocoder
WarehouseConfig = warehouse


def _configured_root() -> str:
    return os.environ.get(DATA_ROOT_ENV) or voterpipe().data_root


def remote_root() -> str | None:
    """'s3://bucket/prefix' when the data root is on object storage, else None."""
    configured = _configured_root().strip()
    if not configured.startswith("s3://"):
        return None
    bucket, _, prefix = configured[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"data root {configured!r} names no bucket (expected s3://bucket/prefix)")
    return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")


def data_root() -> Path:
    """The data root: $VOTERPIPE_DATA_ROOT, else [voterpipe] data_root, relative to the cwd. For an
    s3:// root, this worker's local working copy of it (scratch_root())."""
    remote = remote_root()
    if remote is not None:
        return scratch_root(remote)
    return Path(_configured_root()).expanduser().resolve()


def scratch_root(remote: str) -> Path:
    """$VOTERPIPE_SCRATCH, else [voterpipe] scratch_dir, else ~/.cache/voterpipe/<bucket>/<prefix>."""
    configured = os.environ.get(SCRATCH_ENV) or voterpipe().scratch_dir
    if configured:
        return Path(configured).expanduser().resolve()
    return (Path("~/.cache/voterpipe").expanduser() / remote[len("s3://"):]).resolve()


def s3_endpoint() -> str:
    """[s3] endpoint_url, else $AWS_ENDPOINT_URL ('' = AWS itself)."""
    return s3().endpoint_url or os.environ.get(ENDPOINT_ENV, "")


def file_modes() -> tuple[int, int]:
    """([voterpipe] file_mode, the directory mode with an x bit wherever the file mode has r)."""
    text = str(voterpipe().file_mode).strip()
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f"[voterpipe] file_mode must be an octal mode such as 0600, got {text!r}") from None
    if not 0 <= mode <= 0o777 or not mode & 0o600 == 0o600:
        raise ValueError(f"[voterpipe] file_mode {text} must let the owner read and write (0600 to 0666)")
    return mode, mode | ((mode & 0o444) >> 2)


def warehouse_dsn() -> str:
    """PostgreSQL DSN: $VOTERPIPE_PG_DSN wins over [warehouse] dsn. Never log the result."""
    return os.environ.get(PG_DSN_ENV) or warehouse().dsn
