"""The synthetic truth: people in households and dwellings, and how they change between snapshots.

One row per person ever registered (the truth), whether or not the state's file still lists them.
Every random draw comes from a generator seeded by (seed, state, snapshot), so a seed reproduces
the same people; vote decisions use a counter-based hash of (seed, person, election) so the
history of past elections stays the same from one snapshot to the next.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from voterpipe.synth import names
from voterpipe.synth.states import Election, StateProfile

HOUSEHOLD_SIZES = np.array([1, 2, 3, 4, 5, 6])
HOUSEHOLD_SHARES = np.array([0.30, 0.36, 0.16, 0.11, 0.05, 0.02])
MIXED_HOUSEHOLD_SHARE = 0.12  # roommates: unrelated surnames under one roof
BLENDED_SURNAME_SHARE = 0.10  # a family member keeping another surname
GROUP_QUARTERS_SHARE = 0.015
GROUP_QUARTERS_SIZE = (12, 40)

RACES = np.array(["W", "B", "A", "I", "M", "O", "P", "U"], dtype=object)
RACE_SHARES = np.array([0.62, 0.22, 0.03, 0.01, 0.02, 0.03, 0.002, 0.068])
# Adult age density per year of age, by band (left edges); heads of household skew older.
AGE_BANDS = np.array([18, 25, 35, 45, 55, 65, 75, 85, 96])
AGE_DENSITY = np.array([0.45, 0.85, 1.0, 1.05, 1.05, 0.95, 0.55, 0.2])

SURNAMES = np.array(names.SURNAMES, dtype=object)
MALE = np.array(names.MALE_FIRST, dtype=object)
FEMALE = np.array(names.FEMALE_FIRST, dtype=object)
MALE_INITIAL = np.array([s[0] for s in names.MALE_FIRST], dtype=object)
FEMALE_INITIAL = np.array([s[0] for s in names.FEMALE_FIRST], dtype=object)
HISPANIC = np.array([s in names.HISPANIC_SURNAMES for s in names.SURNAMES])

# Address presentation quirks: shares of people (mutually exclusive).
CONFIDENTIAL_SHARE = 0.0015
PO_BOX_SHARE = 0.0015
RURAL_ROUTE_SHARE = 0.0015
REMOVED_MARKER_SHARE = 0.35  # of NC voters with status R
SPELLED_TYPE_SHARE = 0.04
MIXED_CASE_SHARE = 0.02
ZIP9_SHARE = 0.15

TRUTH_COLUMNS = [
    "seq", "voter_id", "household_id", "household_kind", "dwelling_id", "county_index", "county_local_id",
    "last_name", "first_name", "middle_name", "name_suffix", "gender", "birth_date", "race", "ethnic",
    "party_raw", "party_first_raw", "status_raw", "status_reason", "registered_on", "propensity",
    "addr_kind", "type_style", "zip9", "reg_placeholder", "mail_kind", "box_number", "phone",
    "birth_state", "drivers_lic", "in_file", "moved_on", "renamed",
]


def _rng(seed: int, profile: StateProfile, snapshot: date, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, int(profile.fips), snapshot.toordinal(), purpose]))


def _draw_ages(rng: np.random.Generator, size: int) -> np.ndarray:
    widths = np.diff(AGE_BANDS)
    band_p = AGE_DENSITY * widths / (AGE_DENSITY * widths).sum()
    band = rng.choice(len(widths), size=size, p=band_p)
    return AGE_BANDS[band] + rng.random(size) * widths[band]


def draw_household_sizes(rng: np.random.Generator, people: int) -> np.ndarray:
    """Household sizes summing exactly to `people`."""
    if people <= 0:
        return np.zeros(0, dtype=np.int64)
    estimate = int(people / 2.3 * 1.2) + 10
    sizes = rng.choice(HOUSEHOLD_SIZES, size=estimate, p=HOUSEHOLD_SHARES)
    while sizes.sum() < people:
        sizes = np.concatenate([sizes, rng.choice(HOUSEHOLD_SIZES, size=estimate, p=HOUSEHOLD_SHARES)])
    total = np.cumsum(sizes)
    last = int(np.searchsorted(total, people))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= total[last] - people
    return sizes[sizes > 0]


def _weights(values) -> np.ndarray:
    w = np.array([v.weight for v in values], dtype=float)
    return w / w.sum()


def make_people(rng: np.random.Generator, profile: StateProfile, snapshot: date, sizes: np.ndarray,
                kinds: np.ndarray, dwelling_ids: np.ndarray, household_ids: np.ndarray,
                recent_since: date | None = None, ages: np.ndarray | None = None) -> pd.DataFrame:
    """People for households given by size, kind and dwelling (one array entry per household).

    `recent_since`: everyone registered after this date (new registrants of a later snapshot).
    `ages`: a fixed age per household head (used for joiners), else drawn.
    """
    n_households = len(sizes)
    hh = np.repeat(np.arange(n_households), sizes)
    n = len(hh)
    starts = np.cumsum(sizes) - sizes
    rank = np.arange(n) - starts[hh]
    kind = kinds[hh]
    family = kind == "family"
    independent = ~family  # single, mixed, group quarters

    # Surnames: families share one, others draw their own.
    hh_surname = names.draw(names.SURNAMES, rng, n_households)
    own_surname = names.draw(names.SURNAMES, rng, n)
    blended = family & (rank >= 1) & (rng.random(n) < BLENDED_SURNAME_SHARE)
    surname_idx = np.where(family & ~blended, hh_surname[hh], own_surname)

    # Gender: a family's second member is mostly of the other gender.
    gender = rng.choice(np.array(["F", "M", "U"], dtype=object), size=n, p=[0.52, 0.47, 0.01])
    head_gender = gender[starts][hh]
    partner = family & (rank == 1) & (rng.random(n) < 0.9) & (head_gender != "U")
    gender = np.where(partner, np.where(head_gender == "F", "M", "F"), gender).astype(object)

    # Ages relative to the head of the household.
    head_age = _draw_ages(rng, n_households) if ages is None else ages.astype(float)
    age = head_age[hh].copy()
    spouse = family & (rank == 1)
    age[spouse] += rng.normal(0, 4, spouse.sum())
    child = family & (rank >= 2)
    older_head = head_age[hh] >= 42
    age[child & older_head] -= rng.uniform(22, 34, (child & older_head).sum())
    age[child & ~older_head] += rng.normal(0, 3, (child & ~older_head).sum())
    mixed = kind == "mixed"
    age[mixed] = rng.uniform(19, 40, mixed.sum())
    gq = kind == "group_quarters"
    if gq.any():
        dorm = dwelling_ids[hh] % 2 == 0  # half the group quarters are dorms, half care homes
        age[gq & dorm] = rng.uniform(18, 23, (gq & dorm).sum())
        age[gq & ~dorm] = rng.uniform(72, 98, (gq & ~dorm).sum())
    age = np.clip(age, 18.0, 99.0)
    preregistered = np.zeros(n, dtype=bool)
    if profile.state == "fl":  # 16- and 17-year-olds pre-register in Florida (status PRE)
        preregistered = child & older_head & (rng.random(n) < 0.04)
        age[preregistered] = rng.uniform(16, 17.99, preregistered.sum())
    snap = np.datetime64(snapshot, "D")
    birth = snap - np.ceil(age * 365.25).astype("timedelta64[D]")

    # Names.
    female = gender == "F"
    either = gender == "U"
    first = np.where(female | (either & (rng.random(n) < 0.5)),
                     FEMALE[names.draw(names.FEMALE_FIRST, rng, n)], MALE[names.draw(names.MALE_FIRST, rng, n)])
    female_middle = names.draw(names.FEMALE_FIRST, rng, n, 0.7)
    male_middle = names.draw(names.MALE_FIRST, rng, n, 0.7)
    middle_draw = np.where(female, FEMALE[female_middle], MALE[male_middle])
    initial = np.where(female, FEMALE_INITIAL[female_middle], MALE_INITIAL[male_middle])
    m = rng.random(n)
    middle = np.where(m < 0.65, middle_draw, np.where(m < 0.80, initial, ""))
    suffix = np.where((gender == "M") & (rng.random(n) < 0.04),
                      np.array(names.SUFFIXES, dtype=object)[rng.choice(5, size=n, p=[0.6, 0.2, 0.08, 0.1, 0.02])], "")

    # Race and ethnicity, mostly shared within a household.
    hispanic = HISPANIC[surname_idx]
    race = RACES[rng.choice(len(RACES), size=n_households, p=RACE_SHARES)][hh]
    own_race = rng.random(n) < np.where(family, 0.1, 1.0)
    race = np.where(own_race, RACES[rng.choice(len(RACES), size=n, p=RACE_SHARES)], race)
    race = np.where(hispanic, np.array(["W", "O", "U"], dtype=object)[rng.integers(0, 3, n)], race).astype(object)
    e = rng.random(n)
    ethnic = np.where(hispanic, np.where(e < 0.85, "HL", "UN"), np.where(e < 0.7, "NL", "UN")).astype(object)

    # Party: a household leans one way, members follow it most of the time.
    if profile.parties:
        codes = np.array([p.raw for p in profile.parties], dtype=object)
        hh_party = rng.choice(len(codes), size=n_households, p=_weights(profile.parties))[hh]
        own_party = rng.choice(len(codes), size=n, p=_weights(profile.parties))
        party = codes[np.where(rng.random(n) < 0.7, hh_party, own_party)]
    else:
        party = np.full(n, "", dtype=object)

    # Registration: tenure up to the years since the 18th birthday.
    adult_years = np.maximum(age - 18.0, 0.05)
    tenure = np.minimum(rng.exponential(14.0, n), adult_years) + rng.random(n) * 0.02
    if recent_since is not None:
        window = max((snapshot - recent_since).days, 1)
        tenure = rng.random(n) * window / 365.25
    tenure[preregistered] = rng.random(preregistered.sum()) * 0.9
    registered = snap - (tenure * 365.25).astype("timedelta64[D]")

    # Status from the state's code table; FL pre-registrants are PRE.
    drawable = [s for s in profile.statuses if s.weight > 0]
    status_idx = rng.choice(len(drawable), size=n, p=_weights(drawable))
    if recent_since is not None:  # a new registrant is active
        status_idx[:] = 0
    status = np.array([s.raw for s in drawable], dtype=object)[status_idx]
    if profile.state == "fl":
        status = np.where(preregistered, "PRE", status).astype(object)
    reason = np.full(n, "", dtype=object)
    for s_i, s in enumerate(drawable):
        if s.reasons:
            hit = status_idx == s_i
            reason[hit] = np.array([r[0] for r in s.reasons], dtype=object)[rng.integers(0, len(s.reasons), hit.sum())]
    in_file = np.ones(n, dtype=bool)
    # Turnout propensity, fixed for life: inactive and removed registrations voted less.
    canonical = np.array([s.canonical for s in drawable], dtype=object)[status_idx]
    propensity = rng.normal(0, 1, n) - np.where(canonical == "inactive", 1.0, np.where(canonical == "removed", 1.2, 0.0))

    # Presentation quirks.
    q = rng.random(n)
    addr_kind = np.full(n, "street", dtype=object)
    addr_kind[q < CONFIDENTIAL_SHARE] = "confidential"
    addr_kind[(q >= CONFIDENTIAL_SHARE) & (q < CONFIDENTIAL_SHARE + PO_BOX_SHARE)] = "po_box"
    addr_kind[(q >= CONFIDENTIAL_SHARE + PO_BOX_SHARE)
              & (q < CONFIDENTIAL_SHARE + PO_BOX_SHARE + RURAL_ROUTE_SHARE)] = "rural_route"
    if profile.removed_status == "R":  # NC writes REMOVED as the address of some removed voters
        marker = (status == "R") & (rng.random(n) < REMOVED_MARKER_SHARE) & (addr_kind == "street")
        addr_kind[marker] = "removed_marker"
    t = rng.random(n)
    type_style = np.where(t < SPELLED_TYPE_SHARE, 1, np.where(t < SPELLED_TYPE_SHARE + MIXED_CASE_SHARE, 2, 0))
    if profile.state == "nc":  # NCSBE's file is upper case with abbreviated types
        type_style[:] = 0
    zip9 = rng.random(n) < ZIP9_SHARE
    reg_placeholder = np.zeros(n, dtype=bool)
    if profile.placeholder_registration:
        reg_placeholder = (rng.random(n) < profile.placeholder_share) & (addr_kind == "street")
    mk = rng.random(n)
    if profile.state == "nc":
        mail_kind = np.where(mk < 0.75, "same", np.where(mk < 0.83, "po_box", "none"))
    else:
        mail_kind = np.where(mk < 0.05, "same", np.where(mk < 0.15, "po_box", "none"))
    box_number = rng.integers(1, 9999, n)
    ph = rng.random(n)
    # Ten digits, 0 for none, -1 for the dummy 0000000 some records carry.
    phone_digits = rng.integers(200, 999, n) * 10_000_000 + rng.integers(2_000_000, 9_999_999, n)
    phone = np.where(ph < 0.4, phone_digits, np.where(ph < 0.41, -1, 0)).astype(np.int64)
    bs = rng.random(n)
    other_states = np.array(["VA", "NY", "SC", "PA", "FL", "OH", "CA", "GA", "NJ", "TX"], dtype=object)
    birth_state = np.where(bs < 0.55, profile.state.upper(),
                           np.where(bs < 0.9, other_states[rng.integers(0, len(other_states), n)], "")).astype(object)
    drivers_lic = np.where(rng.random(n) < 0.87, "Y", "N").astype(object)

    return pd.DataFrame({
        "household_id": household_ids[hh], "household_kind": kind, "dwelling_id": dwelling_ids[hh],
        "last_name": SURNAMES[surname_idx], "first_name": first, "middle_name": middle, "name_suffix": suffix,
        "gender": gender, "birth_date": birth, "race": race, "ethnic": ethnic,
        "party_raw": party, "party_first_raw": party.copy(), "status_raw": status, "status_reason": reason,
        "registered_on": registered, "propensity": propensity.astype(np.float32),
        "addr_kind": addr_kind, "type_style": type_style.astype(np.int8), "zip9": zip9,
        "reg_placeholder": reg_placeholder, "mail_kind": mail_kind.astype(object),
        "box_number": box_number.astype(np.int32), "phone": phone, "birth_state": birth_state,
        "drivers_lic": drivers_lic, "in_file": in_file,
        "moved_on": np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"), "renamed": np.zeros(n, dtype=bool),
    })


def format_voter_ids(state: str, seq: np.ndarray) -> np.ndarray:
    """The state's statewide voter id for each person sequence number (stable for life)."""
    seq = np.asarray(seq, dtype=np.int64)
    if state == "nc":  # NCSBE ncid: two letters and digits
        block = seq // 1_000_000 + 27  # starts at "BB"
        letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), dtype=object)
        prefix = letters[(block // 26) % 26] + letters[block % 26]
        return prefix + np.char.zfill((seq % 1_000_000).astype(str), 6).astype(object)
    if state == "oh":
        return "OH" + np.char.zfill((seq + 10_000_000).astype(str), 10).astype(object)
    if state == "fl":
        return np.char.zfill((seq + 100_000_000).astype(str), 9).astype(object)
    if state == "mi":
        return np.char.zfill((seq + 1_000_000_000).astype(str), 13).astype(object)
    if state == "wa":
        return "WA" + np.char.zfill((seq + 1_000_000).astype(str), 9).astype(object)
    raise ValueError(f"no voter id format for state {state!r}")


def _assign_ids(people: pd.DataFrame, state: str, next_seq: int, county_counters: np.ndarray,
                dwellings: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Statewide and county-local ids, handed out in a random order (registration order is not
    household order), so files sorted by id do not list households together."""
    people = people.copy()
    rank = np.argsort(rng.permutation(len(people)))
    people.insert(0, "seq", next_seq + rank.astype(np.int64))
    people.insert(1, "voter_id", format_voter_ids(state, people["seq"].to_numpy()))
    county = dwellings["county_index"].to_numpy()[people["dwelling_id"].to_numpy()]
    people.insert(5, "county_index", county.astype(np.int8))
    people.insert(6, "county_local_id", _county_local_ids(county, county_counters, rank))
    return people


def _county_local_ids(county: np.ndarray, counters: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Next county-local registration numbers (NC voter_reg_num, OH COUNTY_ID), handed out in
    `order` (default: row order); updates counters."""
    out = np.zeros(len(county), dtype=np.int64)
    order = np.arange(len(county)) if order is None else order
    for c in range(len(counters)):
        hit = np.flatnonzero(county == c)
        hit = hit[np.argsort(order[hit], kind="stable")]
        out[hit] = counters[c] + 1 + np.arange(len(hit))
        counters[c] += len(hit)
    return out


def new_population(profile: StateProfile, voters: int, snapshot: date, seed: int,
                   dwellings: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The first snapshot's people, housed in `dwellings`. Returns (people, counters for later snapshots)."""
    rng = _rng(seed, profile, snapshot, 1)
    n_counties = int(dwellings["county_index"].max()) + 1

    # Group quarters: a few single-unit buildings hold many unrelated voters.
    gq_sizes = np.zeros(0, dtype=np.int64)
    gq_dwellings = np.zeros(0, dtype=np.int64)
    if voters >= 300:
        n_gq = max(n_counties, round(voters * GROUP_QUARTERS_SHARE / np.mean(GROUP_QUARTERS_SIZE)))
        candidates = dwellings.index[(dwellings["units"] == 0).to_numpy()].to_numpy()
        gq_dwellings = np.sort(rng.choice(candidates, size=min(n_gq, len(candidates)), replace=False))
        gq_sizes = rng.integers(GROUP_QUARTERS_SIZE[0], GROUP_QUARTERS_SIZE[1] + 1, len(gq_dwellings))
    sizes = draw_household_sizes(rng, voters - int(gq_sizes.sum()))
    is_free = np.ones(len(dwellings), dtype=bool)
    is_free[gq_dwellings] = False
    free = dwellings["dwelling_id"].to_numpy()[is_free]
    if len(sizes) > len(free):
        raise ValueError(f"{len(sizes)} households do not fit in {len(free)} dwellings")
    homes = np.sort(rng.permutation(free)[: len(sizes)])
    kinds = np.where(sizes == 1, "single", np.where(rng.random(len(sizes)) < MIXED_HOUSEHOLD_SHARE, "mixed", "family"))

    all_sizes = np.concatenate([sizes, gq_sizes])
    all_kinds = np.concatenate([kinds, np.full(len(gq_sizes), "group_quarters")]).astype(object)
    all_homes = np.concatenate([homes, gq_dwellings])
    household_numbers = np.arange(len(all_sizes), dtype=np.int64)
    people = make_people(rng, profile, snapshot, all_sizes, all_kinds, all_homes, household_numbers)
    people["household_id"] = _household_ids(profile.state, people["household_id"].to_numpy())
    counters = np.zeros(n_counties, dtype=np.int64)
    people = _assign_ids(people, profile.state, 0, counters, dwellings, rng)
    _concentrate_placeholders(people, profile, rng)
    state = {"next_seq": int(len(people)), "next_household": int(len(all_sizes)),
             "county_counters": counters.tolist()}
    return people[TRUTH_COLUMNS], state


def _concentrate_placeholders(people: pd.DataFrame, profile: StateProfile, rng: np.random.Generator) -> None:
    """Move the state's placeholder registration dates towards the county that has most of them."""
    code = profile.extras.get("placeholder_county")
    if not code or not profile.placeholder_share:
        return
    target = next(i for i, c in enumerate(profile.counties) if c.county_code == code)
    county = people["county_index"].to_numpy()
    in_target = county == target
    share_target = profile.extras["placeholder_county_share"]
    n = len(people)
    p = np.where(in_target, profile.placeholder_share * share_target * n / max(in_target.sum(), 1),
                 profile.placeholder_share * (1 - share_target) * n / max((~in_target).sum(), 1))
    street = people["addr_kind"].to_numpy() == "street"
    people["reg_placeholder"] = (rng.random(n) < p) & street


def _household_ids(state: str, numbers: np.ndarray) -> np.ndarray:
    return (state.upper() + "-H" + np.char.zfill(numbers.astype(np.int64).astype(str), 8)).astype(object)


# next_population's default share of the live roll changed per kind (7.5 % in all)
CHURN_RATES = {"movers": 0.03, "newcomers": 0.02, "removals": 0.01, "renames": 0.005, "party_changes": 0.01}


def churn_rates(churn_rate: float | None = None) -> dict[str, float]:
    """next_population's rates per kind: the defaults, or the defaults scaled in proportion so
    that together they change `churn_rate` of the live roll (0.02: 2 %)."""
    if churn_rate is None:
        return dict(CHURN_RATES)
    if not 0.0 <= churn_rate <= 0.5:
        raise ValueError(f"churn_rate must be between 0 and 0.5, got {churn_rate}")
    scale = churn_rate / sum(CHURN_RATES.values())
    return {kind: rate * scale for kind, rate in CHURN_RATES.items()}


def next_population(profile: StateProfile, previous: pd.DataFrame, counters: dict, dwellings: pd.DataFrame,
                    previous_snapshot: date, snapshot: date, seed: int,
                    movers: float = 0.03, newcomers: float = 0.02, removals: float = 0.01,
                    renames: float = 0.005, party_changes: float = 0.01) -> tuple[pd.DataFrame, dict, dict]:
    """The next snapshot's people: movers, new registrants, removals, name and party changes.

    Returns (people, counters, churn counts). Voter ids never change; NC county-local numbers
    change when a voter moves to another county, as in the real file.
    """
    rng = _rng(seed, profile, snapshot, 2)
    people = previous.copy().reset_index(drop=True)
    people["renamed"] = False
    county_counters = np.array(counters["county_counters"], dtype=np.int64)
    removed_codes = {s.raw for s in profile.statuses if s.canonical == "removed"}
    live = people["in_file"].to_numpy() & ~people["status_raw"].isin(removed_codes).to_numpy()
    n_live = int(live.sum())
    dwelling_county = dwellings["county_index"].to_numpy()
    occupied = np.zeros(len(dwellings), dtype=bool)
    occupied[people.loc[live, "dwelling_id"].to_numpy()] = True
    gq_homes = set(people.loc[people["household_kind"] == "group_quarters", "dwelling_id"].tolist())
    occupied[list(gq_homes)] = True
    n_counties = len(profile.counties)
    vacant = [rng.permutation(np.flatnonzero(~occupied & (dwelling_county == c))) for c in range(n_counties)]
    cursor = np.zeros(n_counties, dtype=np.int64)

    def take_homes(counties: np.ndarray) -> np.ndarray:
        """Vacant dwellings, one per entry, in the requested counties."""
        out = np.zeros(len(counties), dtype=np.int64)
        for c in range(n_counties):
            want = np.flatnonzero(counties == c)
            if cursor[c] + len(want) > len(vacant[c]):
                raise ValueError("the synthetic county has no vacant dwellings left; start from more voters")
            out[want] = vacant[c][cursor[c]: cursor[c] + len(want)]
            cursor[c] += len(want)
        return out

    def destination(current: np.ndarray) -> np.ndarray:
        """Most moves stay in the county; one in five goes to another county."""
        away = rng.random(len(current)) < 0.2
        return np.where(away, rng.integers(0, n_counties, len(current)), current)

    churn = {}
    # Whole households move (80 % of movers) ...
    hh = people.loc[live & (people["household_kind"] != "group_quarters").to_numpy(), ["household_id"]]
    hh_ids, hh_sizes = np.unique(hh["household_id"].to_numpy().astype(str), return_counts=True)
    order = rng.permutation(len(hh_ids))
    cumulative = np.cumsum(hh_sizes[order])
    n_moving_hh = int(np.searchsorted(cumulative, movers * 0.8 * n_live))
    moving_hh = hh_ids[order[:n_moving_hh]]
    hh_county = people.drop_duplicates("household_id").set_index("household_id")["county_index"]
    new_homes = take_homes(destination(hh_county.loc[moving_hh].to_numpy().astype(np.int64)))
    home_of = dict(zip(moving_hh, new_homes))
    moving = live & people["household_id"].isin(home_of).to_numpy()
    people.loc[moving, "dwelling_id"] = people.loc[moving, "household_id"].map(home_of).to_numpy()
    # ... and some grown children or partners leave to live alone.
    candidates = np.flatnonzero(live & ~moving & (people["household_kind"] == "family").to_numpy())
    n_leavers = min(len(candidates), int(movers * 0.2 * n_live))
    leavers = np.sort(rng.choice(candidates, size=n_leavers, replace=False)) if n_leavers else np.zeros(0, int)
    people.loc[leavers, "dwelling_id"] = take_homes(
        destination(people.loc[leavers, "county_index"].to_numpy().astype(np.int64)))
    next_household = int(counters["next_household"])
    people.loc[leavers, "household_id"] = _household_ids(profile.state, np.arange(next_household, next_household + len(leavers)))
    people.loc[leavers, "household_kind"] = "single"
    next_household += len(leavers)
    moved = moving.copy()
    moved[leavers] = True
    people.loc[moved, "moved_on"] = np.datetime64(previous_snapshot, "D") + rng.integers(
        1, max((snapshot - previous_snapshot).days, 2), moved.sum()).astype("timedelta64[D]")
    new_county = dwelling_county[people.loc[moved, "dwelling_id"].to_numpy()]
    changed_county = new_county != people.loc[moved, "county_index"].to_numpy()
    moved_idx = np.flatnonzero(moved)
    people.loc[moved, "county_index"] = new_county.astype(np.int8)
    switchers = moved_idx[changed_county]
    people.loc[switchers, "county_local_id"] = _county_local_ids(new_county[changed_county], county_counters)
    churn["movers"] = int(moved.sum())
    churn["county_changes"] = int(len(switchers))

    # Removals: the state keeps them with its removed code, or drops them from the file.
    candidates = np.flatnonzero(live & ~moved)
    n_removed = min(len(candidates), int(removals * n_live))
    removed = np.sort(rng.choice(candidates, size=n_removed, replace=False)) if n_removed else np.zeros(0, int)
    if profile.removed_status:
        people.loc[removed, "status_raw"] = profile.removed_status
        reasons = next(s.reasons for s in profile.statuses if s.raw == profile.removed_status)
        if reasons:
            people.loc[removed, "status_reason"] = np.array([r[0] for r in reasons], dtype=object)[
                rng.integers(0, len(reasons), len(removed))]
    else:
        people.loc[removed, "in_file"] = False
    churn["removals"] = int(len(removed))

    # Name changes (mostly on marriage: take the household head's surname) and party changes.
    still = np.flatnonzero(people["in_file"].to_numpy() & ~people["status_raw"].isin(removed_codes).to_numpy())
    n_renamed = int(renames * len(still))
    renamed = np.sort(rng.choice(still, size=n_renamed, replace=False)) if n_renamed else np.zeros(0, int)
    new_surnames = SURNAMES[names.draw(names.SURNAMES, rng, len(renamed))]
    people.loc[renamed, "last_name"] = np.where(
        people.loc[renamed, "last_name"].to_numpy() == new_surnames, new_surnames + "-SMITH", new_surnames)
    people.loc[renamed, "renamed"] = True
    churn["renames"] = int(len(renamed))
    if profile.parties:
        n_switch = int(party_changes * len(still))
        switch = np.sort(rng.choice(still, size=n_switch, replace=False)) if n_switch else np.zeros(0, int)
        codes = np.array([p.raw for p in profile.parties], dtype=object)
        current = people.loc[switch, "party_raw"].to_numpy()
        drawn = codes[rng.choice(len(codes), size=len(switch), p=_weights(profile.parties))]
        drawn = np.where(drawn == current, np.where(current == codes[0], codes[1], codes[0]), drawn)
        people.loc[switch, "party_raw"] = drawn
        churn["party_changes"] = int(len(switch))

    # New registrants: new households in vacant dwellings, and young adults joining a family.
    n_new = int(newcomers * n_live)
    n_joiners = int(n_new * 0.4)
    sizes = draw_household_sizes(rng, n_new - n_joiners)
    homes = take_homes(rng.integers(0, n_counties, len(sizes)))
    kinds = np.where(sizes == 1, "single", np.where(rng.random(len(sizes)) < MIXED_HOUSEHOLD_SHARE, "mixed", "family"))
    household_numbers = np.arange(next_household, next_household + len(sizes))
    next_household += len(sizes)
    newcomers_df = make_people(rng, profile, snapshot, sizes, kinds.astype(object), homes, household_numbers,
                               recent_since=previous_snapshot)
    newcomers_df["household_id"] = _household_ids(profile.state, newcomers_df["household_id"].to_numpy())
    families = np.flatnonzero(live & ~moved & (people["household_kind"] == "family").to_numpy())
    frames = [newcomers_df]
    if n_joiners and len(families):
        hosts = people.iloc[np.sort(rng.choice(families, size=min(n_joiners, len(families)), replace=False))]
        joiners = make_people(rng, profile, snapshot, np.ones(len(hosts), dtype=np.int64),
                              np.full(len(hosts), "single", dtype=object), hosts["dwelling_id"].to_numpy(),
                              np.arange(len(hosts)), recent_since=previous_snapshot,
                              ages=rng.uniform(18.0, 19.9, len(hosts)))
        joiners["household_id"] = hosts["household_id"].to_numpy()
        joiners["household_kind"] = "family"
        joiners["last_name"] = hosts["last_name"].to_numpy()
        frames.append(joiners)
    arrivals = pd.concat(frames, ignore_index=True)
    arrivals = _assign_ids(arrivals, profile.state, int(counters["next_seq"]), county_counters, dwellings, rng)
    churn["new_registrants"] = int(len(arrivals))
    people = pd.concat([people, arrivals[TRUTH_COLUMNS]], ignore_index=True)
    state = {"next_seq": int(counters["next_seq"]) + len(arrivals), "next_household": next_household,
             "county_counters": county_counters.tolist()}
    return people[TRUTH_COLUMNS], state, churn


# -- vote history ------------------------------------------------------------------------------

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def hashed_uniform(seed: int, seq: np.ndarray, salt: int) -> np.ndarray:
    """A uniform [0, 1) per (seed, person, salt) from splitmix64: stable whatever else changes."""
    with np.errstate(over="ignore"):
        x = seq.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.uint64((seed * 1_000_003 + salt * 7_919 + 0x632BE5AB) & 0xFFFFFFFFFFFFFFFF)
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _age_effect(age: np.ndarray) -> np.ndarray:
    bins = np.array([25, 35, 50, 65, 80])
    effects = np.array([-0.9, -0.5, 0.0, 0.4, 0.7, 0.3])
    return effects[np.searchsorted(bins, age, side="right")]


def election_salt(election: Election) -> int:
    return election.on.toordinal()


def simulate_history(people: pd.DataFrame, elections: list[Election], seed: int) -> pd.DataFrame:
    """Long history: one row per (person position, election) voted. Columns: person, election, u.

    `u` is a second stable uniform the layouts use to pick the voting method and ballot.
    Only people registered before the election and 18 on election day vote; older people vote more.
    Everything used is fixed for life, so past elections look the same in every later snapshot.
    """
    seq = people["seq"].to_numpy()
    birth = people["birth_date"].to_numpy().astype("datetime64[D]")
    registered = people["registered_on"].to_numpy().astype("datetime64[D]")
    propensity = people["propensity"].to_numpy().astype(float)
    frames = []
    for k, election in enumerate(elections):
        day = np.datetime64(election.on, "D")
        age = (day - birth).astype(np.int64) / 365.25
        eligible = (registered < day) & (age >= 18.0)
        base = np.log(election.turnout / (1 - election.turnout))
        p = 1.0 / (1.0 + np.exp(-(base + _age_effect(age) + 1.1 * propensity)))
        voted = eligible & (hashed_uniform(seed, seq, election_salt(election)) < p)
        idx = np.flatnonzero(voted)
        frames.append(pd.DataFrame({
            "person": idx.astype(np.int64), "election": np.full(len(idx), k, dtype=np.int16),
            "u": hashed_uniform(seed, seq[idx], election_salt(election) + 1),
        }))
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"person": np.zeros(0, np.int64), "election": np.zeros(0, np.int16), "u": np.zeros(0)})
    order = np.lexsort((history["election"].to_numpy(), history["person"].to_numpy()))
    return history.iloc[order].reset_index(drop=True)
