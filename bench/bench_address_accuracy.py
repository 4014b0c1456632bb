"""Address accuracy against hand-labelled public addresses (the usaddress corpora): per-component
agreement and exact-match rate for OURS (parse.normalise_line) and the BASELINE (plain
usaddress.tag followed by Pub 28 table lookups), on the same addresses in the same run.

The truth for an address is its hand labels put through the same Pub 28 lookups as the baseline
(`plain_components`: pub28.standardize_street_parts on the labelled directionals, name and type,
pub28.standardize_unit per unit level, parse.standardize_house_number), so the baseline loses only
where usaddress tags differently from the labeller, and ours loses wherever our tagging or repairs
land elsewhere. Labels are read where they stand, as Pub 28 orders the parts (`_read_by_position`:
a type label followed by more name labels is a name word; a pre-directional label after the name
is the post-directional), and several unit levels are written as ours writes them (first
designator, then the rest in order).

Usable addresses are street lines: they start with the house number, have a street name, carry no
recipient, building, landmark, box or intersection labels; place, state and ZIP (after the street
part) are dropped, as our lines never hold them. Duplicate lines are counted once. The labels have
slips (a directional after the suffix labelled pre-directional, "GATE WAY" as one type); the exact
rate is also reported on the addresses whose labels fit Pub 28 (`labels_fit_pub28`).

Corpora: bench/data/usaddress/*.xml (copies, MIT, see bench/data/usaddress/SOURCE.md), or the
files named on the command line or in VOTERPIPE_ADDRESS_CORPORA (os.pathsep-separated).

Run: .venv/bin/python -m bench.bench_address_accuracy [corpus.xml ...] [--show-failures]
"""

from __future__ import annotations

import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import usaddress

from bench.common import record
from voterpipe.addresses import parse, pub28

DATA_DIR = Path(__file__).resolve().parent / "data" / "usaddress"
DEFAULT_CORPORA = (DATA_DIR / "training_labeled.xml", DATA_DIR / "test_labeled.xml")
CORPORA_ENV = "VOTERPIPE_ADDRESS_CORPORA"
COMPONENTS = parse.FIELDS[:7]
STREET_LABELS = frozenset({
    "AddressNumberPrefix", "AddressNumber", "AddressNumberSuffix", "StreetNamePreModifier",
    "StreetNamePreDirectional", "StreetNamePreType", "StreetName", "StreetNamePostType",
    "StreetNamePostDirectional", "StreetNamePostModifier", "OccupancyType", "OccupancyIdentifier",
    "SubaddressType", "SubaddressIdentifier"})
TRAILING_LABELS = frozenset({"PlaceName", "StateName", "ZipCode", "CountryName"})
_NAME_LABELS = ("StreetNamePreModifier", "StreetNamePreType", "StreetName", "StreetNamePostModifier")
TARGET_EXACT = 0.99


def read_corpus(path: Path) -> list[list[tuple[str, str]]]:
    """Each labelled address as its (label, token) pairs, in order."""
    root = ET.parse(path).getroot()
    return [[(child.tag, (child.text or "").strip()) for child in address] for address in root]


def street_line(pairs: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]] | None:
    """(the street part as one line, its labelled pairs) for a usable address, else None."""
    labels = [label for label, _ in pairs]
    if set(labels) - STREET_LABELS - TRAILING_LABELS:
        return None
    if "AddressNumber" not in labels or "StreetName" not in labels:
        return None
    if labels[0] not in ("AddressNumber", "AddressNumberPrefix"):
        return None
    street = [i for i, label in enumerate(labels) if label in STREET_LABELS]
    if street != list(range(len(street))):  # a place or ZIP inside the street part
        return None
    kept = pairs[:len(street)]
    line = " ".join(token for _, token in kept).strip(" ,;")
    return line, kept


def _joined(pairs: list[tuple[str, str]], *labels: str) -> str:
    return " ".join(token for label, token in pairs if label in labels)


def _levels(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Unit levels in the order written, one designator word each: a designator (or '#') opens a
    level, unless the open level of the same label family (Occupancy/Subaddress) has an id and no
    designator ("14th Floor") or is a bare '#' ("# APT 2"); an id joins the open level of its
    family. So "2nd floor conference room" is FL 2ND, CONFERENCE, RM."""
    levels: list[list[str]] = []  # [designator, id, family]
    for label, token in pairs:
        family = label[:9]
        same = bool(levels) and levels[-1][2] == family
        if label.endswith("Type") or token == "#":
            if same and ((levels[-1][1] and not levels[-1][0]) or (levels[-1][0] == "#" and not levels[-1][1])):
                levels[-1][0] = token
            else:
                levels.append([token, "", family])
        elif same:
            levels[-1][1] = f"{levels[-1][1]} {token}".strip()
        else:
            levels.append(["", token, family])
    return [pub28.standardize_unit(d, i) for d, i, _ in levels]


def _read_by_position(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Labels read where they stand, as Pub 28 orders the parts: a type label followed by more
    street-name labels is a word of the name (RIVER RD LIBERTY GROVE RD), and a directional
    labelled pre-directional that stands after the name or type is the post-directional."""
    last_name = max((i for i, (label, _) in enumerate(pairs) if label == "StreetName"), default=-1)
    first_name = next((i for i, (label, _) in enumerate(pairs) if label == "StreetName"), len(pairs))
    read = []
    for i, (label, token) in enumerate(pairs):
        if label == "StreetNamePostType" and i < last_name:
            label = "StreetName"
        elif label == "StreetNamePreDirectional" and i > first_name:
            label = "StreetNamePostDirectional"
        read.append((label, token))
    return read


def plain_components(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    """The seven components from labelled tokens by Pub 28 table lookups alone (no repairs).
    Several unit levels are written as ours writes them: the first designator, then the rest."""
    pairs = _read_by_position(pairs)
    number = _joined(pairs, "AddressNumberPrefix", "AddressNumber").replace("#", "")
    suffix = _joined(pairs, "AddressNumberSuffix").strip(" -.,")
    house = parse.standardize_house_number(number, suffix)
    pre, name, stype, post = pub28.standardize_street_parts(
        _joined(pairs, "StreetNamePreDirectional"), _joined(pairs, *_NAME_LABELS),
        _joined(pairs, "StreetNamePostType"), _joined(pairs, "StreetNamePostDirectional"))
    levels = _levels([(label, token) for label, token in pairs
                      if label.startswith(("Occupancy", "Subaddress"))])
    unit = levels[0] if levels else ("", "")
    for designator, ident in levels[1:]:
        unit = (unit[0], " ".join(p for p in (unit[1], designator if designator != "#" else "", ident) if p))
    return (house, pre, name, stype, post, *unit)


_RANK = {"AddressNumberPrefix": 0, "AddressNumber": 0, "AddressNumberSuffix": 0,
         "StreetNamePreDirectional": 1, "StreetNamePreModifier": 2, "StreetNamePreType": 2,
         "StreetName": 3, "StreetNamePostType": 4, "StreetNamePostModifier": 4,
         "StreetNamePostDirectional": 5}


def labels_fit_pub28(pairs: list[tuple[str, str]]) -> bool:
    """Whether the labels describe a Pub 28 delivery line: parts in Pub 28 order (number, pre-
    directional, name, suffix, post-directional, units), directionals and suffixes from the
    Pub 28 tables, unit designators from C2. Labels that do not are slips of the labeller (an
    "s." after the suffix labelled pre-directional) or shapes the seven components cannot hold."""
    pairs = _read_by_position(pairs)
    ranks = [_RANK.get(label, 6) for label, _ in pairs]
    if ranks != sorted(ranks):
        return False
    for labels, table in ((("StreetNamePreDirectional",), pub28.DIRECTIONALS),
                          (("StreetNamePostDirectional",), pub28.DIRECTIONALS),
                          (("StreetNamePostType",), pub28.STREET_SUFFIXES)):
        value = pub28.clean_text(_joined(pairs, *labels))
        if value and value not in table:
            return False
    designators = [pub28.clean_text(t) for label, t in pairs if label.endswith("Type") and label[:9] in
                   ("Occupancy", "Subaddres")]
    return all(d in pub28.SECONDARY_UNITS for d in designators)


def baseline_components(line: str) -> tuple[str, ...]:
    """usaddress.tag, then plain_components (a repeated label keeps every token, in order)."""
    try:
        tagged, _ = usaddress.tag(line)
        pairs = list(tagged.items())
    except usaddress.RepeatedLabelError as err:
        pairs = [(label, token) for token, label in err.parsed_string]
    return plain_components(pairs)


def ours_components(line: str) -> tuple[str, ...]:
    return tuple(parse.normalise_line(line)[:7])


def load_addresses(paths: list[Path]) -> tuple[list[tuple[str, tuple]], dict]:
    """Unique usable (line, truth) pairs and how many addresses each filter kept."""
    seen: dict[str, tuple] = {}
    counts = {"labelled": 0, "usable": 0}
    for path in paths:
        for pairs in read_corpus(path):
            counts["labelled"] += 1
            found = street_line(pairs)
            if found is None:
                continue
            counts["usable"] += 1
            line, kept = found
            if line not in seen:
                seen[line] = (plain_components(kept), labels_fit_pub28(kept))
    counts["unique_usable"] = len(seen)
    counts["unique_usable_labels_fit_pub28"] = sum(fits for _, fits in seen.values())
    return [(line, truth, fits) for line, (truth, fits) in seen.items()], counts


def score(addresses: list[tuple[str, tuple]], parser) -> tuple[dict, list]:
    """Per-component agreement, exact-match rate and the failures (line, truth, got)."""
    agree = dict.fromkeys(COMPONENTS, 0)
    exact, failures = 0, []
    for line, truth, *_ in addresses:
        got = parser(line)
        for name, t, g in zip(COMPONENTS, truth, got):
            agree[name] += t == g
        if tuple(got) == tuple(truth):
            exact += 1
        else:
            failures.append((line, truth, got))
    n = len(addresses)
    return {"exact": exact / n, **{name: count / n for name, count in agree.items()}}, failures


def corpus_paths(argv: list[str]) -> list[Path]:
    named = [a for a in argv if not a.startswith("--")]
    if not named and os.environ.get(CORPORA_ENV):
        named = os.environ[CORPORA_ENV].split(os.pathsep)
    paths = [Path(p) for p in named] or list(DEFAULT_CORPORA)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"address corpus not found: {', '.join(missing)}")
    return paths


def print_table(ours: dict, baseline: dict, n: int) -> None:
    print(f"{'component':<14}{'ours':>9}{'baseline':>10}   ({n} unique usable addresses)")
    for name in ("exact", *COMPONENTS):
        flag = "  <- worse" if ours[name] < baseline[name] else ""
        print(f"{name:<14}{ours[name]:>9.2%}{baseline[name]:>10.2%}{flag}")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    paths = corpus_paths(argv)
    addresses, counts = load_addresses(paths)
    start = time.perf_counter()
    ours, our_failures = score(addresses, ours_components)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    baseline, _ = score(addresses, baseline_components)
    baseline_seconds = time.perf_counter() - start
    print_table(ours, baseline, len(addresses))
    fitting = [a for a in addresses if a[2]]
    ours_fit, _ = score(fitting, ours_components)
    baseline_fit, _ = score(fitting, baseline_components)
    print(f"exact on the {len(fitting)} whose labels fit Pub 28 (no labelling slips): "
          f"ours {ours_fit['exact']:.2%}, baseline {baseline_fit['exact']:.2%}")
    if "--show-failures" in argv:
        for line, truth, got in our_failures:
            print(f"{line!r}\n   truth {'|'.join(truth)}\n   ours  {'|'.join(got)}\n"
                  f"   base  {'|'.join(baseline_components(line))}")
    results = {
        "corpora": [str(p.relative_to(DATA_DIR.parents[1])) if p.is_relative_to(DATA_DIR.parents[1])
                    else p.name for p in paths],
        **counts,
        "ours": {k: round(v, 4) for k, v in ours.items()},
        "baseline_usaddress_plus_pub28": {k: round(v, 4) for k, v in baseline.items()},
        "ours_failures": len(our_failures),
        "ours_failing_lines": [line for line, _, _ in our_failures],  # public sample addresses
        "labels_fit_pub28": {"ours": {k: round(v, 4) for k, v in ours_fit.items()},
                             "baseline_usaddress_plus_pub28": {k: round(v, 4) for k, v in baseline_fit.items()}},
        "components_worse_than_baseline": [c for c in COMPONENTS if ours[c] < baseline[c]],
        "exact_target_met": ours["exact"] >= TARGET_EXACT,
        "ours_seconds": round(ours_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "rules_version": parse.RULES_VERSION,
        "targets": {"exact": TARGET_EXACT, "no_component_worse_than_baseline": True},
    }
    record("address_accuracy", results)
    return results


if __name__ == "__main__":
    main()
