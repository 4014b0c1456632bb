"""Resolve the two repeated-label shapes usaddress raises RepeatedLabelError on that have one
standard reading: several unit levels, and a street type word inside a longer street name."""

from __future__ import annotations

from voterpipe.addresses import pub28

_UNIT_TYPES = ("OccupancyType", "SubaddressType")
_UNIT_IDS = ("OccupancyIdentifier", "SubaddressIdentifier")
_NAME_RUN = ("StreetName", "StreetNamePostType")


def unit_levels(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """[designator, id] per unit level, in the order written. A designator (or a lone '#') opens
    a level, unless the open level of the same label family (Occupancy/Subaddress) has an id but
    no designator ("14TH FLOOR" is one level) or is a bare '#' ("# APT 2"); ids join the open
    level of their family and otherwise open one."""
    levels: list[list[str]] = []  # [designator, id, family]
    for label, token in pairs:
        family = label[:9]
        same = bool(levels) and levels[-1][2] == family
        if label in _UNIT_TYPES or token == "#":
            if same and ((levels[-1][1] and not levels[-1][0]) or (levels[-1][0] == "#" and not levels[-1][1])):
                levels[-1][0] = token
            else:
                levels.append([token, "", family])
        elif same:
            levels[-1][1] = f"{levels[-1][1]} {token}".strip()
        else:
            levels.append(["", token, family])
    return [level[:2] for level in levels]


def _street_run(pairs: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """RIVER(name) RD(type) LIBERTY GROVE(name) RD(type): only the last type word is the suffix,
    earlier ones are words of the name (as in PARK AVE). A directional usaddress reads as post-
    directional between the types stays one: OTTER(name) CREEK(type) SOUTH(post) RD(type) ->
    OTTER CREEK, RD, S. None unless the types sit in one run of name, type and at most one
    directional word, that ends with a type."""
    positions = [i for i, (label, _) in enumerate(pairs) if label == "StreetNamePostType"]
    first_name = next((i for i, (label, _) in enumerate(pairs) if label == "StreetName"), None)
    if len(positions) < 2 or first_name is None or first_name > positions[0]:
        return None
    run = pairs[first_name:positions[-1] + 1]
    directionals = [token for label, token in run if label == "StreetNamePostDirectional"]
    if len(directionals) > 1 or any(label not in _NAME_RUN + ("StreetNamePostDirectional",) for label, _ in run):
        return None
    renamed = [("StreetName", token) for label, token in run[:-1] if label != "StreetNamePostDirectional"]
    renamed += [run[-1]] + [("StreetNamePostDirectional", token) for token in directionals]
    return pairs[:first_name] + renamed + pairs[positions[-1] + 1:]


def resolve_repeats(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """usaddress-style labels for (label, token) pairs that repeat a label, or None when the
    repeats are not one of the two resolvable shapes (or the unit levels repeat a designator,
    as in APT 1 APT 2, which names two dwellings)."""
    street = _street_run(pairs) if sum(label == "StreetNamePostType" for label, _ in pairs) > 1 else pairs
    if street is None:
        return None
    units = [(label, token) for label, token in street if label in _UNIT_TYPES + _UNIT_IDS]
    rest = [(label, token) for label, token in street if label not in _UNIT_TYPES + _UNIT_IDS]
    labels: dict[str, str] = {}
    previous = None
    for label, token in rest:
        if label in labels and label != previous:
            return None  # another label repeats
        labels[label] = f"{labels[label]} {token}" if label in labels else token
        previous = label
    levels = unit_levels(units)
    designators = [pub28.SECONDARY_UNITS.get(pub28.clean_text(d), d) for d, _ in levels if d]
    if len(designators) != len(set(designators)):
        return None
    if levels:
        labels["OccupancyType"], labels["OccupancyIdentifier"] = levels[0]
    if len(levels) > 1:
        # The second level, with any further ones written into its id (designator + id).
        labels["SubaddressType"] = levels[1][0]
        labels["SubaddressIdentifier"] = " ".join(
            [levels[1][1]] + [f"{d} {i}".strip() for d, i in levels[2:]]).strip()
    return {k: v for k, v in labels.items() if v}
