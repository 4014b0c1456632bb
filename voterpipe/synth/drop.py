"""write_drop: one synthetic state delivery in 01_raw, plus the truth behind it in cache/synth.

The drop directory is published atomically and carries a manifest.json with the summary. The
truth (people with ids, households and dwellings; the damage ledger; counters) lives in
<data_root>/cache/synth/<state>/<snapshot>/ so a later snapshot can continue the same state.

Planted damage and the agreed import policy: extra_fields / missing_fields rows are rejected;
nul_bytes rows load with the NUL stripped; bad_date (02/30/2019) and bad_zip (ABCDE, 123) rows
load with that value null. The drop's manifest.json counts each kind; damage.parquet in the
truth lists file, line and voter id of every damaged row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe import storage
from voterpipe.config import data_root
from voterpipe.formats.drops import write_marker
from voterpipe.formats.layouts import Layout, layouts_for_state
from voterpipe.synth.geography import buildings_per_county_for, dwellings_for, networks_for
from voterpipe.synth.layouts.common import DropContext
from voterpipe.synth.layouts.writer import damage_kinds, write_layout
from voterpipe.synth.population import churn_rates, new_population, next_population, simulate_history
from voterpipe.synth.render import DAMAGE_KINDS, write_text_file
from voterpipe.synth.states import PROFILES, Election, StateProfile, profile_for

log = logging.getLogger("voterpipe.synth")

TRUTH_FILE = "people.parquet"
META_FILE = "meta.json"
DAMAGE_FILE = "damage.parquet"
ADDRESS_COLUMNS = ["building_id", "house_number", "pre_dir", "street_name", "street_type", "post_dir", "unit",
                   "city", "zip5", "zip4", "tlid", "side", "lon", "lat", "tractce", "blkgrpce", "blockce",
                   "cd119fp", "sldust", "sldlst", "units"]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def truth_dir(state: str, snapshot: date | str, root: Path | None = None) -> Path:
    return (root or data_root()) / "cache" / "synth" / state.lower() / _as_date(snapshot).isoformat()


def tiger_dir(state: str, root: Path | None = None) -> Path:
    return (root or data_root()) / "cache" / "synth" / state.lower() / "tiger"


def read_truth(state: str, snapshot: date | str, root: Path | None = None) -> pd.DataFrame:
    """The people behind a synthetic drop (ids, household, dwelling and its address)."""
    return pd.read_parquet(truth_dir(state, snapshot, root) / TRUTH_FILE)


def elections_for(profile: StateProfile, snapshot: date, extra: list[dict]) -> list[Election]:
    """Calendar elections before the snapshot plus the specials added for later snapshots."""
    added = [Election(date.fromisoformat(e["on"]), e["kind"], e["label"]) for e in extra]
    return sorted([e for e in (*profile.elections, *added) if e.on < snapshot], key=lambda e: e.on)


def _special_between(profile: StateProfile, start: date, end: date) -> dict:
    """A special election between two snapshots, so each new snapshot adds at least one election."""
    day = start + timedelta(days=max(1, (end - start).days // 2))
    if day >= end:
        day = start
    label = {"fl": "OTH", "mi": f"{day.strftime('%B').upper()} {day.year} SPECIAL"}.get(profile.state, "SPECIAL")
    return {"on": day.isoformat(), "kind": "other" if profile.state == "fl" else "special", "label": label}


def _plan_damage(people: pd.DataFrame, rows: np.ndarray, dirty_rate: float, seed: int,
                 profile: StateProfile, snapshot: date, kinds: list[str]) -> np.ndarray:
    """Damage code per written row (0 = clean), spread evenly over `kinds` (of DAMAGE_KINDS)."""
    damage = np.zeros(len(rows), dtype=np.int8)
    total = int(round(len(rows) * dirty_rate))
    if total <= 0:
        return damage
    kind = people["addr_kind"].to_numpy()[rows]
    placeholder = people["reg_placeholder"].to_numpy()[rows]
    eligible = np.flatnonzero((kind == "street") & ~placeholder)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(profile.fips), snapshot.toordinal(), 3]))
    chosen = rng.permutation(rng.choice(eligible, size=min(total, len(eligible)), replace=False))
    codes = np.array([DAMAGE_KINDS.index(k) + 1 for k in kinds], dtype=np.int8)
    if len(codes):
        damage[chosen] = codes[np.arange(len(chosen)) % len(codes)]
    return damage


def _file_order(people: pd.DataFrame) -> np.ndarray:
    """Written rows: people still in the file, grouped by county as the states deliver them."""
    in_file = np.flatnonzero(people["in_file"].to_numpy())
    order = np.lexsort((people["county_local_id"].to_numpy()[in_file], people["county_index"].to_numpy()[in_file]))
    return in_file[order]


def _quirk_counts(people: pd.DataFrame, rows: np.ndarray, profile: StateProfile) -> dict:
    kind = people["addr_kind"].to_numpy()[rows]
    counts = {k: int((kind == k).sum()) for k in ("confidential", "po_box", "rural_route", "removed_marker")}
    counts["placeholder_registration_dates"] = int(people["reg_placeholder"].to_numpy()[rows].sum())
    counts["spelled_out_street_types"] = int((people["type_style"].to_numpy()[rows] > 0).sum())
    counts["zip_plus4"] = int((people["zip9"].to_numpy()[rows] & (kind == "street")).sum())
    counts["accented_names"] = int(pd.Series(people["last_name"].to_numpy()[rows]).str.contains(r"[^\x00-\x7f]").sum()
                                   + pd.Series(people["first_name"].to_numpy()[rows]).str.contains(r"[^\x00-\x7f]").sum())
    counts["group_quarters_voters"] = int((people["household_kind"].to_numpy()[rows] == "group_quarters").sum())
    return counts


def choose_layout(state: str, layout: str | None, formats_dir: Path | list[Path] | None = None) -> Layout:
    """The layout a drop is written in: the named one, else the state's preferred one, from config/formats/."""
    found = layouts_for_state(state, formats_dir)
    by_name = {item.name: item for item in found}
    if layout is None and found:
        return found[0]
    if layout not in by_name:
        raise ValueError(f"layout {layout!r} is not a {state.upper()} layout; use one of {sorted(by_name)}")
    return by_name[layout]


def write_drop(state: str, voters: int, snapshot: date | str, seed: int, layout: str | None = None,
               dirty_rate: float = 0.001, from_snapshot: date | str | None = None,
               root: Path | None = None, formats_dir: Path | list[Path] | None = None,
               churn_rate: float | None = None) -> dict:
    """Write one synthetic drop of `state` into 01_raw/<state>/<snapshot>/ and return its summary.

    The files follow the state's layout in config/formats/ (or `formats_dir`). With
    `from_snapshot`, continue that earlier synthetic snapshot of the same state (movers, new
    registrants, removals, name and party changes, one more election); `voters` is then ignored,
    and `churn_rate` (default: population.CHURN_RATES, 7.5 %) is the share of the roll changed.
    The same arguments always give the same bytes.
    """
    state = state.lower()
    chosen = choose_layout(state, layout, formats_dir)
    profile = _people_profile(chosen, state)
    snapshot = _as_date(snapshot)
    if from_snapshot is None and voters < 1:
        raise ValueError(f"voters must be at least 1, got {voters}")
    if not 0.0 <= dirty_rate <= 0.2:
        raise ValueError(f"dirty_rate must be between 0 and 0.2, got {dirty_rate}")
    root = Path(root) if root is not None else data_root()

    clock = _Clock()
    if from_snapshot is not None:
        from_snapshot = _as_date(from_snapshot)
        population = _continued_population(profile, state, from_snapshot, snapshot, seed, root,
                                           churn_rates(churn_rate))
    else:
        population = _first_population(profile, voters, snapshot, seed, state)
    clock.lap("population")
    people = population.people
    elections = elections_for(profile, snapshot, population.extra_elections)
    rows = _file_order(people)
    damage = _plan_damage(people, rows, dirty_rate, seed, profile, snapshot, damage_kinds(chosen))
    history = simulate_history(people, elections, population.network_seed)
    clock.lap("history")
    ctx = DropContext(profile=profile, snapshot=snapshot, seed=seed, people=people, rows=rows,
                      dwellings=population.dwellings, history=history, elections=elections, damage=damage,
                      dirty_rate=dirty_rate)
    files = write_layout(ctx, chosen)
    clock.lap("columns")

    summary = {"state": state, "snapshot": snapshot.isoformat(), "layout": chosen.name, "seed": seed,
               "from_snapshot": from_snapshot.isoformat() if from_snapshot else None}
    ledger = _publish_files(files, storage.raw_dir(state, snapshot, root), summary, ctx, population.churn)
    write_marker(storage.raw_dir(state, snapshot, root), chosen)  # the drop is complete (formats/drops.py)
    clock.lap("write_files")
    _save_truth(state, snapshot, root, people, population.dwellings, ledger, {
        **{k: summary[k] for k in ("state", "snapshot", "layout", "seed")},
        "network_seed": population.network_seed, "buildings_per_county": population.buildings,
        "counters": population.counters, "extra_elections": population.extra_elections,
        "from_snapshot": summary["from_snapshot"]})
    summary["directory"] = str(storage.raw_dir(state, snapshot, root))
    summary["truth"] = str(truth_dir(state, snapshot, root))
    clock.lap("truth")
    summary["tiger"] = _write_tiger(state, population.networks, root, population.network_seed, population.buildings)
    clock.lap("tiger")
    summary["seconds"] = clock.laps  # wall-clock, so kept out of the manifest
    log.info("synthetic %s %s: %d voter rows, %d history rows, %d damaged", state, snapshot,
             summary["voters"], summary["history_rows"], summary["damaged_total"])
    return summary


def _people_profile(layout: Layout, state: str) -> StateProfile:
    """Whose synthetic people fill the drop: the state's, or those [synth] people names."""
    people = layout.synth.get("people", state)
    if people not in PROFILES:
        raise ValueError(f"{layout.source.name}: no synthetic people for state {people!r}; set [synth] people "
                         f"to one of {sorted(PROFILES)}")
    return profile_for(people)


@dataclass
class _Population:
    people: pd.DataFrame
    counters: dict
    churn: dict
    extra_elections: list[dict]
    network_seed: int
    buildings: int
    networks: list
    dwellings: pd.DataFrame


def _first_population(profile: StateProfile, voters: int, snapshot: date, seed: int, state: str) -> _Population:
    buildings = buildings_per_county_for(profile.state, voters)
    networks = networks_for(profile.state, seed, buildings, zip_state=state)  # the delivered state's ZIPs
    dwellings = dwellings_for(networks)
    people, counters = new_population(profile, voters, snapshot, seed, dwellings)
    return _Population(people, counters, {}, [], seed, buildings, networks, dwellings)


def _continued_population(profile: StateProfile, state: str, from_snapshot: date, snapshot: date, seed: int,
                          root: Path, rates: dict[str, float]) -> _Population:
    """The people of `from_snapshot`'s truth, a snapshot later (same networks, one more election)."""
    if from_snapshot >= snapshot:
        raise ValueError(f"from_snapshot {from_snapshot} must be before snapshot {snapshot}")
    previous_dir = truth_dir(state, from_snapshot, root)
    if not (previous_dir / META_FILE).is_file():
        raise FileNotFoundError(f"no synthetic truth for {state} {from_snapshot} at {previous_dir}; "
                                f"write that snapshot first")
    meta = storage.read_json(previous_dir / META_FILE)
    network_seed, buildings = int(meta["network_seed"]), int(meta["buildings_per_county"])
    networks = networks_for(profile.state, network_seed, buildings, zip_state=state)
    dwellings = dwellings_for(networks)
    previous = pd.read_parquet(previous_dir / TRUTH_FILE, columns=None)
    previous = previous[[c for c in previous.columns if c not in ADDRESS_COLUMNS]]
    extra = list(meta.get("extra_elections", []))
    if not any(from_snapshot <= e.on < snapshot for e in elections_for(profile, snapshot, extra)):
        extra.append(_special_between(profile, from_snapshot, snapshot))
    people, counters, churn = next_population(profile, previous, meta["counters"], dwellings,
                                              from_snapshot, snapshot, seed, **rates)
    return _Population(people, counters, churn, extra, network_seed, buildings, networks, dwellings)


def _publish_files(files: list, raw: Path, summary: dict, ctx: DropContext, churn: dict) -> list[dict]:
    """Write the files and the manifest into the raw drop directory; fill `summary`; return the damage ledger."""
    written, ledger = [], []
    with storage.publish_dir(raw) as staging:
        for tf in files:
            result = write_text_file(tf, staging)
            ledger.extend(result.pop("damaged"))
            written.append({**result, "kind": tf.meta.get("kind", "voters"), **{k: v for k, v in tf.meta.items()
                                                                              if k != "kind"}})
        damaged = {k: sum(1 for d in ledger if d["kind"] == k) for k in DAMAGE_KINDS}
        summary.update({
            "files": written,
            "voters": sum(f["rows"] for f in written if f["kind"] in ("voters", "voters_with_history")),
            "people": int(len(ctx.people)),
            "history_rows": sum(f["history_cells"] if f["kind"] == "voters_with_history" else f["rows"]
                                for f in written if f["kind"] in ("history", "voters_with_history")),
            "votes_cast": int(len(ctx.history)),
            "damaged": damaged, "damaged_total": sum(damaged.values()),
            "quirks": _quirk_counts(ctx.people, ctx.rows, ctx.profile),
            "elections": [{"date": e.on.isoformat(), "kind": e.kind, "label": e.label} for e in ctx.elections],
            "churn": churn,
        })
        storage.write_manifest(staging, {"stage": "SyntheticDrop", **summary})
    return ledger


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _save_truth(state: str, snapshot: date, root: Path, people: pd.DataFrame, dwellings: pd.DataFrame,
                ledger: list[dict], meta: dict) -> None:
    truth = pa.Table.from_pandas(people, preserve_index=False)
    address = pa.Table.from_pandas(dwellings[ADDRESS_COLUMNS], preserve_index=False).take(
        pa.array(people["dwelling_id"].to_numpy()))
    for name in address.column_names:
        truth = truth.append_column(name, address.column(name))
    with storage.publish_dir(truth_dir(state, snapshot, root)) as staging:
        storage.write_parquet(truth, staging / TRUTH_FILE)
        damage = pd.DataFrame(ledger, columns=["file", "line", "kind", "voter_id"])
        storage.write_parquet(pa.Table.from_pandas(damage, preserve_index=False), staging / DAMAGE_FILE)
        storage.write_json(meta, staging / META_FILE)


def _write_tiger(state: str, networks: list, root: Path, network_seed: int, buildings: int) -> str:
    """TIGER-style ADDRFEAT/EDGES/FACES for the counties, via H4's writer when it is installed."""
    try:
        from voterpipe.synth import tiger_files
    except ImportError:
        return "skipped: voterpipe.synth.tiger_files is not available"
    target = tiger_dir(state, root)
    signature = {"network_seed": network_seed, "buildings_per_county": buildings}
    marker = target / "network.json"
    if marker.is_file() and storage.read_json(marker) == signature:
        return f"unchanged: {target}"
    with storage.publish_dir(target) as staging:
        for network in networks:
            tiger_files.write_tiger_files(network, staging)
        storage.write_json(signature, staging / "network.json")
    return f"written: {target}"
