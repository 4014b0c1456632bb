"""The Census batch file: the request rows sent (one per distinct address, commas removed) and
the CSV answer read back with fixed field names, short rows allowed and Tie kept distinct; every
id sent must come back exactly once."""

from __future__ import annotations

import csv
import io

import censusgeocode
import pandas as pd

from voterpipe.geocode.census_client import GEOCODE_COLUMNS, RETURNTYPE

NOT_SENT_PARSE_STATUSES = frozenset({"missing", "unparseable", "po_box"})
MATCH_INDICATORS = {"Match": "match", "No_Match": "no_match", "Tie": "tie"}


class CensusResponseError(Exception):
    """A batch answer that cannot be trusted. Messages carry counts and ids, never addresses."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _clean_field(values: pd.Series) -> pd.Series:
    # An unquoted comma shifts the Census fields and loses the ZIP, so commas go (reference §2.1).
    return (values.fillna("").astype(str).str.replace(",", " ", regex=False)
            .str.replace(r"\s+", " ", regex=True).str.strip())


def street_line(addresses: pd.DataFrame) -> pd.Series:
    """'123 N MAIN ST' from the parts; the unit is left out because the geocoder ignores it."""
    parts = [_clean_field(addresses[c]) for c in
             ("house_number", "pre_dir", "street_name", "street_type", "post_dir")]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + " " + part
    return joined.str.replace(r"\s+", " ", regex=True).str.strip()


def sendable_mask(addresses: pd.DataFrame) -> pd.Series:
    """Addresses worth sending: parsed, with a house number and a street name."""
    status = addresses["parse_status"].fillna("missing").astype(str)
    number = addresses["house_number"].fillna("").astype(str).str.strip()
    name = addresses["street_name"].fillna("").astype(str).str.strip()
    return ~status.isin(NOT_SENT_PARSE_STATUSES) & (number != "") & (name != "")


def request_rows(addresses: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(requests, key_map): one request per distinct street/city/state/zip, and address_key ->
    request id. Units of one building share a request."""
    fields = pd.DataFrame({
        "street": street_line(addresses).to_numpy(),
        "city": _clean_field(addresses["city"]).to_numpy(),
        "state": _clean_field(addresses["state"]).to_numpy(),
        "zip": _clean_field(addresses["zip5"]).to_numpy(),
    })
    codes = fields.groupby(["street", "city", "state", "zip"], sort=False, dropna=False).ngroup()
    key_map = pd.DataFrame({"address_key": addresses["address_key"].to_numpy(),
                            "request_id": (codes + 1).astype(str).to_numpy()})
    first = ~codes.duplicated()
    requests_df = fields[first.to_numpy()].copy()
    requests_df.insert(0, "id", (codes[first] + 1).astype(str).to_numpy())
    return requests_df.reset_index(drop=True), key_map


def encode_batch_csv(rows: pd.DataFrame) -> bytes:
    """The headerless id,street,city,state,zip file the batch endpoint takes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows[["id", "street", "city", "state", "zip"]].itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


# -- response parsing ---------------------------------------------------------------------------
def parse_batch_response(text: str, sent_ids: list[str] | None = None,
                         returntype: str = RETURNTYPE) -> pd.DataFrame:
    """The Census batch CSV as a frame keyed by request `id` with GEOCODES columns.

    Rows are headerless, every field quoted, widths 12/8 for Match and 3 for No_Match/Tie, in any
    order. With `sent_ids`, the ids returned must equal the ids sent, each exactly once.
    """
    fieldnames = censusgeocode.CensusGeocode.batchfields[returntype]
    match_width = len(fieldnames)
    stripped = text.lstrip()
    if stripped[:1] == "<" or stripped[:15].lower().startswith("<!doctype"):
        raise CensusResponseError("an HTML page came back instead of CSV")
    records = []
    try:
        reader = csv.reader(io.StringIO(text), strict=True)
        for line_number, row in enumerate(reader, 1):
            if not row:
                continue
            if len(row) < 3:
                raise CensusResponseError(f"response line {line_number}: {len(row)} fields, need 3+")
            indicator = MATCH_INDICATORS.get(row[2])
            if indicator is None:
                raise CensusResponseError(f"response line {line_number}: unknown match indicator")
            record = {"id": row[0], "status": indicator}
            if indicator == "match":
                if len(row) != match_width:
                    raise CensusResponseError(
                        f"response line {line_number}: a Match row has {len(row)} fields, "
                        f"expected {match_width}")
                values = dict(zip(fieldnames, row))
                try:
                    lon_text, lat_text = values["coordinate"].split(",")
                    record.update(lon=float(lon_text), lat=float(lat_text),
                                  tiger_line_id=int(values["tigerlineid"]))
                except ValueError as exc:
                    raise CensusResponseError(
                        f"response line {line_number}: bad coordinate or TIGER line id") from exc
                record.update(
                    match_type=values["matchtype"].lower() or None,
                    matched_address=values["parsed"] or None,
                    side=values["side"] or None,
                )
                if returntype == "geographies":
                    block = values["block"] or None
                    record.update(state_fips=values["statefp"] or None,
                                  county_fips=values["countyfp"] or None,
                                  tract=values["tract"] or None,
                                  block=block, block_group=block[:1] if block else None)
            records.append(record)
    except csv.Error as exc:  # e.g. a body cut inside a quoted field
        raise CensusResponseError(f"unreadable CSV ({exc})") from exc
    result = pd.DataFrame.from_records(records, columns=["id", *GEOCODE_COLUMNS[1:]])
    if sent_ids is not None:
        check_ids(result["id"], sent_ids)
    return result


def check_ids(returned: pd.Series, sent_ids: list[str]) -> None:
    duplicated = returned[returned.duplicated()]
    if len(duplicated):
        raise CensusResponseError(f"{len(duplicated)} ids came back more than once "
                                  f"(e.g. {duplicated.iloc[0]!r})")
    sent = set(sent_ids)
    got = set(returned)
    missing, unknown = sent - got, got - sent
    if missing or unknown:
        example = sorted(missing or unknown)[0]
        raise CensusResponseError(f"{len(missing)} ids missing and {len(unknown)} unknown ids "
                                  f"in the answer (e.g. {example!r})")
