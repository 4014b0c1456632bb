"""The baseline of `make bench-e2e`: the NC pipeline as a careful pandas user writes it in one script
(read_csv; usaddress.tag per row with apply; groupbys for households and turnout by age band;
to_sql into PostgreSQL). It prints its stage times as JSON.

Careful means: every column read as text from the state's own layout (TAB, Latin-1, no quoting),
bad lines skipped rather than fatal, the usaddress errors caught, dates parsed once, and to_sql
in chunks of 1,000 rows with method="multi" (one INSERT per chunk, not one per row).

Run: `VOTERPIPE_PG_DSN=... .venv/bin/python -m bench.naive --drop DATA/01_raw/nc/2026-11-01 [--schema naive]`
(the DSN comes from the environment, so its password shows in no process list).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import pandas as pd
import usaddress

VOTER_COLUMNS = ["county_id", "county_desc", "ncid", "last_name", "first_name", "res_street_address",
                 "res_city_desc", "zip_code", "party_cd", "birth_year", "registr_dt", "status_cd"]
HISTORY_COLUMNS = ["ncid", "election_lbl", "election_desc", "voting_method"]
AGE_BANDS = [18, 25, 35, 45, 55, 65, 75, 200]
AGE_LABELS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+"]


def read_drop(drop: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    options = dict(sep="\t", encoding="latin-1", dtype=str, keep_default_na=False,
                   quoting=csv.QUOTE_NONE, on_bad_lines="skip")
    voters = pd.read_csv(drop / "ncvoter_Statewide.txt", usecols=VOTER_COLUMNS, **options)
    history = pd.read_csv(drop / "ncvhis_Statewide.txt", usecols=HISTORY_COLUMNS, **options)
    # state files carry stray NUL bytes, which PostgreSQL refuses in text
    for frame in (voters, history):
        for column in frame.columns:
            frame[column] = frame[column].str.replace("\x00", "", regex=False)
    return voters, history


def tag_address(text: str) -> dict:
    try:
        tagged, _ = usaddress.tag(text)
    except usaddress.RepeatedLabelError:
        return {}
    return dict(tagged)


def parse_addresses(voters: pd.DataFrame) -> pd.DataFrame:
    tags = voters["res_street_address"].apply(tag_address)
    parsed = pd.DataFrame(tags.tolist(), index=voters.index)
    wanted = ["AddressNumber", "StreetNamePreDirectional", "StreetName", "StreetNamePostType",
              "StreetNamePostDirectional", "OccupancyType", "OccupancyIdentifier"]
    return voters.join(parsed.reindex(columns=wanted).fillna(""))


def households(voters: pd.DataFrame) -> pd.DataFrame:
    """One household per normalised street address, unit and ZIP."""
    key = ["AddressNumber", "StreetNamePreDirectional", "StreetName", "StreetNamePostType",
           "StreetNamePostDirectional", "OccupancyIdentifier", "zip_code"]
    voters = voters.copy()
    normalised = voters[key].apply(lambda column: column.str.upper().str.strip())
    has_address = normalised["StreetName"] != ""
    voters["household_id"] = normalised.groupby(key, sort=False).ngroup().where(has_address)
    voters["household_size"] = voters.groupby("household_id")["ncid"].transform("size").where(has_address)
    return voters


def turnout_by_age_band(voters: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Registered voters and voters who voted, by general election and age band at that election."""
    elections = history.loc[history["election_desc"].str.contains("GENERAL"), ["election_lbl"]].drop_duplicates()
    elections["election_date"] = pd.to_datetime(elections["election_lbl"], format="%m/%d/%Y")
    voters = voters.assign(birth_year=pd.to_numeric(voters["birth_year"], errors="coerce"),
                           registered_on=pd.to_datetime(voters["registr_dt"], format="%m/%d/%Y", errors="coerce"))
    grid = voters[["ncid", "birth_year", "registered_on"]].merge(elections, how="cross")
    grid = grid[grid["registered_on"] <= grid["election_date"]]
    grid["age"] = grid["election_date"].dt.year - grid["birth_year"]
    grid["age_band"] = pd.cut(grid["age"], AGE_BANDS, right=False, labels=AGE_LABELS)
    voted = history[["ncid", "election_lbl"]].drop_duplicates().assign(voted=True)
    grid = grid.merge(voted, on=["ncid", "election_lbl"], how="left")
    grid["voted"] = grid["voted"].fillna(False).astype(bool)
    table = grid.groupby(["election_date", "age_band"], observed=True).agg(
        registered=("ncid", "size"), voted=("voted", "sum")).reset_index()
    table["turnout"] = table["voted"] / table["registered"]
    return table


def to_postgres(voters: pd.DataFrame, turnout: pd.DataFrame, dsn: str, schema: str) -> None:
    import sqlalchemy
    from psycopg2.extensions import parse_dsn

    parts = parse_dsn(dsn)
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg2", username=parts.get("user"), password=parts.get("password"),
        host=parts.get("host"), port=int(parts["port"]) if parts.get("port") else None,
        database=parts.get("dbname"))
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    for name, frame in (("voters", voters), ("turnout_by_age_band", turnout)):
        frame.to_sql(name, engine, schema=schema, if_exists="replace", index=False, method="multi",
                     chunksize=1_000)
    engine.dispose()


def run(drop: Path, dsn: str, schema: str) -> dict:
    seconds = {}
    started = time.perf_counter()
    voters, history = read_drop(drop)
    seconds["read_csv"] = time.perf_counter() - started

    clock = time.perf_counter()
    voters = parse_addresses(voters)
    seconds["usaddress_apply"] = time.perf_counter() - clock

    clock = time.perf_counter()
    voters = households(voters)
    seconds["households_groupby"] = time.perf_counter() - clock

    clock = time.perf_counter()
    turnout = turnout_by_age_band(voters, history)
    seconds["turnout_groupby"] = time.perf_counter() - clock

    clock = time.perf_counter()
    to_postgres(voters, turnout, dsn, schema)
    seconds["to_sql"] = time.perf_counter() - clock
    seconds["total"] = time.perf_counter() - started
    return {"seconds": seconds, "voters": len(voters), "history_rows": len(history),
            "households": int(voters["household_id"].nunique()), "turnout_rows": len(turnout)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop", required=True, type=Path)
    parser.add_argument("--schema", default="naive")
    args = parser.parse_args(argv)
    result = run(args.drop, os.environ["VOTERPIPE_PG_DSN"], args.schema)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
