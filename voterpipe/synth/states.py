"""Per-state facts the generator needs: counties, code tables, id formats and election calendars.

Codes and labels follow shared/reference/formats.md (NC §1, OH §2, FL §3, MI §4, WA §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from voterpipe.synth.county import CountySpec


@dataclass(frozen=True)
class Election:
    on: date
    kind: str  # general / primary / presidential_primary / special / other
    label: str  # the state's own label: NC "GENERAL", FL "GEN", OH "GENERAL", MI title

    @property
    def turnout(self) -> float:
        """Base turnout share among registered voters."""
        if self.kind == "general":
            return {0: 0.78, 2: 0.58}.get(self.on.year % 4, 0.28)
        return {"presidential_primary": 0.33, "primary": 0.25, "special": 0.12}.get(self.kind, 0.15)


@dataclass(frozen=True)
class StatusCode:
    raw: str
    canonical: str  # active / inactive / removed / other
    weight: float
    description: str = ""
    reasons: tuple[tuple[str, str], ...] = ()  # (reason_cd, reason description), NC only


@dataclass(frozen=True)
class PartyCode:
    raw: str
    canonical: str | None  # DEM, REP, UNA, LIB, GRE, OTH
    weight: float
    description: str = ""


@dataclass(frozen=True)
class StateProfile:
    state: str
    fips: str
    counties: tuple[CountySpec, ...]
    statuses: tuple[StatusCode, ...]
    removed_status: str | None  # raw code a removed voter keeps in the file; None = dropped from it
    parties: tuple[PartyCode, ...] = ()
    elections: tuple[Election, ...] = ()
    placeholder_registration: str | None = None  # a placeholder registration date this state writes
    placeholder_share: float = 0.0
    extras: dict = field(default_factory=dict)


def _e(iso: str, kind: str, label: str) -> Election:
    return Election(date.fromisoformat(iso), kind, label)


NC_REASONS_ACTIVE = (("AV", "VERIFIED"), ("AV", "VERIFIED"), ("AV", "VERIFIED"), ("AN", "UNVERIFIED NEW"),
                     ("A1", "UNVERIFIED"), ("A2", "CONFIRMATION PENDING"), ("AL", "LEGACY DATA"))
NC = StateProfile(
    state="nc", fips="37",
    counties=(
        CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.70, 35.74)),
        CountySpec("37", "063", "32", "DURHAM", 27701, ("DURHAM", "BAHAMA"), (-78.95, 35.95)),
        CountySpec("37", "051", "26", "CUMBERLAND", 28301, ("FAYETTEVILLE", "HOPE MILLS"), (-78.93, 35.02)),
    ),
    statuses=(
        StatusCode("A", "active", 0.82, "ACTIVE", NC_REASONS_ACTIVE),
        StatusCode("I", "inactive", 0.10, "INACTIVE", (("IN", "CONFIRMATION NOT RETURNED"),
                                                      ("IU", "CONFIRMATION RETURNED UNDELIVERABLE"))),
        StatusCode("R", "removed", 0.055, "REMOVED", (
            ("RL", "MOVED FROM COUNTY"), ("RS", "MOVED FROM STATE"), ("RD", "DECEASED"), ("R2", "DUPLICATE"),
            ("RM", "REMOVED AFTER 2 FED GENERAL ELECTIONS IN INACTIVE STATUS"), ("RF", "FELONY CONVICTION"))),
        StatusCode("D", "removed", 0.01, "DENIED", (("DI", "UNAVAILABLE ESSENTIAL INFORMATION"),
                                                    ("DN", "NOT A CITIZEN"))),
        StatusCode("S", "active", 0.015, "TEMPORARY", (("SM", "UNIFORMED SERVICES"), ("SO", "OVERSEAS CITIZEN"))),
    ),
    removed_status="R",
    parties=(
        PartyCode("DEM", "DEM", 0.33, "DEMOCRATIC"), PartyCode("REP", "REP", 0.30, "REPUBLICAN"),
        PartyCode("UNA", "UNA", 0.35, "UNAFFILIATED"), PartyCode("LIB", "LIB", 0.012, "LIBERTARIAN"),
        PartyCode("GRE", "GRE", 0.004, "GREEN"), PartyCode("NLB", "OTH", 0.003, "NO LABELS"),
        PartyCode("JFA", "OTH", 0.001, "JUSTICE FOR ALL"),
    ),
    elections=(
        _e("2018-05-08", "primary", "PRIMARY"), _e("2018-11-06", "general", "GENERAL"),
        _e("2019-09-10", "special", "SPECIAL"), _e("2020-03-03", "primary", "PRIMARY"),
        _e("2020-11-03", "general", "GENERAL"), _e("2022-05-17", "primary", "PRIMARY"),
        _e("2022-11-08", "general", "GENERAL"), _e("2024-03-05", "primary", "PRIMARY"),
        _e("2024-11-05", "general", "GENERAL"), _e("2026-03-03", "primary", "PRIMARY"),
        _e("2026-11-03", "general", "GENERAL"),
    ),
    placeholder_registration="##/##/####", placeholder_share=0.002,
    # About 47 % of NC's placeholder registration dates are in Cumberland (formats.md §1.7).
    extras={"placeholder_county": "26", "placeholder_county_share": 0.47},
)

OH = StateProfile(
    state="oh", fips="39",
    counties=(
        CountySpec("39", "035", "18", "CUYAHOGA", 44101, ("CLEVELAND", "LAKEWOOD"), (-81.75, 41.45)),
        CountySpec("39", "041", "21", "DELAWARE", 43015, ("DELAWARE", "POWELL"), (-83.10, 40.28)),
        CountySpec("39", "049", "25", "FRANKLIN", 43201, ("COLUMBUS", "WORTHINGTON"), (-83.05, 39.93)),
    ),
    statuses=(StatusCode("ACTIVE", "active", 0.88), StatusCode("CONFIRMATION", "inactive", 0.12)),
    removed_status=None,
    parties=(
        PartyCode("", "UNA", 0.43), PartyCode("D", "DEM", 0.25, "DEMOCRAT"), PartyCode("R", "REP", 0.30, "REPUBLICAN"),
        PartyCode("L", "LIB", 0.01, "LIBERTARIAN"), PartyCode("G", "GRE", 0.005, "GREEN"),
        PartyCode("C", "OTH", 0.002, "CONSTITUTION"), PartyCode("N", "OTH", 0.001, "NATURAL LAW"),
        PartyCode("S", "OTH", 0.001, "SOCIALIST"), PartyCode("E", "OTH", 0.001, "REFORM"),
    ),
    elections=(
        _e("2018-05-08", "primary", "PRIMARY"), _e("2018-11-06", "general", "GENERAL"),
        _e("2020-04-28", "primary", "PRIMARY"), _e("2020-11-03", "general", "GENERAL"),
        _e("2022-05-03", "primary", "PRIMARY"), _e("2022-08-02", "primary", "PRIMARY"),
        _e("2022-11-08", "general", "GENERAL"), _e("2023-08-08", "special", "SPECIAL"),
        _e("2024-03-19", "primary", "PRIMARY"), _e("2024-11-05", "general", "GENERAL"),
        _e("2026-05-05", "primary", "PRIMARY"), _e("2026-11-03", "general", "GENERAL"),
    ),
    placeholder_registration="1900-01-01", placeholder_share=0.004,
)

FL = StateProfile(
    state="fl", fips="12",
    counties=(
        CountySpec("12", "001", "ALA", "ALACHUA", 32601, ("GAINESVILLE", "ALACHUA"), (-82.40, 29.62)),
        CountySpec("12", "073", "LEO", "LEON", 32301, ("TALLAHASSEE", "WOODVILLE"), (-84.32, 30.41)),
        CountySpec("12", "086", "DAD", "MIAMI-DADE", 33125, ("MIAMI", "HIALEAH"), (-80.30, 25.74)),
    ),
    statuses=(StatusCode("ACT", "active", 0.86), StatusCode("INA", "inactive", 0.14),
              StatusCode("PRE", "other", 0.0)),  # PRE is given by age (16-17), not drawn
    removed_status=None,
    parties=(
        PartyCode("DEM", "DEM", 0.36), PartyCode("REP", "REP", 0.38), PartyCode("NPA", "UNA", 0.225),
        PartyCode("LPF", "LIB", 0.006), PartyCode("GRE", "GRE", 0.001), PartyCode("IDP", "OTH", 0.008),
        PartyCode("ECO", "OTH", 0.0005), PartyCode("CPF", "OTH", 0.0005), PartyCode("PSL", "OTH", 0.0003),
        PartyCode("REF", "OTH", 0.0003), PartyCode("AIP", "OTH", 0.0002), PartyCode("INT", "OTH", 0.0002),
    ),
    elections=(
        _e("2018-08-28", "primary", "PRI"), _e("2018-11-06", "general", "GEN"),
        _e("2020-03-17", "presidential_primary", "PPP"), _e("2020-08-18", "primary", "PRI"),
        _e("2020-11-03", "general", "GEN"), _e("2022-08-23", "primary", "PRI"),
        _e("2022-11-08", "general", "GEN"), _e("2023-03-07", "other", "OTH"),
        _e("2024-03-19", "presidential_primary", "PPP"), _e("2024-08-20", "primary", "PRI"),
        _e("2024-11-05", "general", "GEN"), _e("2026-08-18", "primary", "PRI"),
        _e("2026-11-03", "general", "GEN"),
    ),
)

MI = StateProfile(
    state="mi", fips="26",
    counties=(
        CountySpec("26", "065", "33", "INGHAM", 48910, ("LANSING", "OKEMOS"), (-84.60, 42.68)),
        CountySpec("26", "081", "41", "KENT", 49503, ("GRAND RAPIDS", "WYOMING"), (-85.70, 42.93)),
        CountySpec("26", "161", "81", "WASHTENAW", 48103, ("ANN ARBOR", "YPSILANTI"), (-83.78, 42.25)),
    ),
    statuses=(
        StatusCode("A", "active", 0.86, "ACTIVE"), StatusCode("V", "inactive", 0.06, "VERIFY"),
        StatusCode("C", "removed", 0.05, "CANCELLED"), StatusCode("CH", "other", 0.02, "CHALLENGED"),
        StatusCode("R", "removed", 0.01, "REJECTED"),
    ),
    removed_status="C",
    elections=(
        _e("2018-08-07", "primary", "AUGUST 2018 PRIMARY"), _e("2018-11-06", "general", "NOVEMBER 2018 GENERAL"),
        _e("2020-03-10", "presidential_primary", "MARCH 2020 PRES PRIMARY"),
        _e("2020-08-04", "primary", "AUGUST 2020 PRIMARY"), _e("2020-11-03", "general", "NOVEMBER 2020 GENERAL"),
        _e("2022-08-02", "primary", "AUGUST 2022 PRIMARY"), _e("2022-11-08", "general", "NOVEMBER 2022 GENERAL"),
        _e("2023-05-02", "special", "MAY 2023 SPECIAL"),
        _e("2024-02-27", "presidential_primary", "FEB 2024 PRES PRIMARY"),
        _e("2024-08-06", "primary", "AUGUST 2024 PRIMARY"), _e("2024-11-05", "general", "NOVEMBER 2024 GENERAL"),
        _e("2026-08-04", "primary", "AUGUST 2026 PRIMARY"), _e("2026-11-03", "general", "NOVEMBER 2026 GENERAL"),
    ),
)

WA = StateProfile(
    state="wa", fips="53",
    counties=(
        CountySpec("53", "033", "KI", "KING", 98101, ("SEATTLE", "BELLEVUE"), (-122.40, 47.55)),
        CountySpec("53", "063", "SP", "SPOKANE", 99201, ("SPOKANE", "CHENEY"), (-117.47, 47.62)),
        CountySpec("53", "067", "TH", "THURSTON", 98501, ("OLYMPIA", "LACEY"), (-122.95, 47.00)),
    ),
    statuses=(
        StatusCode("A", "active", 0.55), StatusCode("Active", "active", 0.25), StatusCode("A-DUP", "active", 0.01),
        StatusCode("I", "inactive", 0.08), StatusCode("Inactive", "inactive", 0.05),
        StatusCode("I-DUP", "inactive", 0.005), StatusCode("IM-DUP", "inactive", 0.002),
        StatusCode("P", "other", 0.025), StatusCode("Pending", "other", 0.01), StatusCode("PDETH", "other", 0.005),
        StatusCode("PDUPL", "other", 0.003), StatusCode("PFELN", "other", 0.002),
    ),
    removed_status=None,
    elections=(
        _e("2018-08-07", "primary", "PRIMARY"), _e("2018-11-06", "general", "GENERAL"),
        _e("2020-03-10", "presidential_primary", "PRESIDENTIAL PRIMARY"), _e("2020-08-04", "primary", "PRIMARY"),
        _e("2020-11-03", "general", "GENERAL"), _e("2022-08-02", "primary", "PRIMARY"),
        _e("2022-11-08", "general", "GENERAL"), _e("2023-02-14", "special", "SPECIAL"),
        _e("2024-03-12", "presidential_primary", "PRESIDENTIAL PRIMARY"), _e("2024-08-06", "primary", "PRIMARY"),
        _e("2024-11-05", "general", "GENERAL"), _e("2026-08-04", "primary", "PRIMARY"),
        _e("2026-11-03", "general", "GENERAL"),
    ),
)

PROFILES: dict[str, StateProfile] = {p.state: p for p in (NC, OH, FL, MI, WA)}


def profile_for(state: str) -> StateProfile:
    try:
        return PROFILES[state.lower()]
    except KeyError:
        raise ValueError(f"no synthetic profile for state {state!r}; known: {sorted(PROFILES)}") from None
