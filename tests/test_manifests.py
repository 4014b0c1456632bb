"""Typed manifests: what a stage writes reads back as the same dataclasses, extra keys ignored."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from voterpipe.geocode.cache import match_rates
from voterpipe.manifests import CohortManifest, GeocodeManifest, HouseholdManifest, ImportManifest, MatchRate


def test_geocode_manifest_reads_the_match_rates_the_geocode_stage_computes():
    geocodes = pd.DataFrame({"address_key": ["a", "b", "c", "d"],
                             "status": ["match", "no_match", "not_sent", "match"]})
    county = pd.Series({"a": "001", "b": "001", "c": "001", "d": "002"})
    body = {"stage": "GeocodeAddresses", "state": "nc", "fingerprint": {"value": "sha256:1"},
            "backend": "tiger", "rows": 4, "cache_hits": 1, "cache_misses": 3,
            "match_rate_by_county": match_rates(geocodes, county)}
    manifest = GeocodeManifest.from_json(json.loads(json.dumps(body)))
    first = manifest.match_rate_by_county["001"]
    assert isinstance(first, MatchRate)
    assert (first.addresses, first.match, first.not_sent, first.match_rate) == (3, 1, 1, 0.5)
    assert manifest.match_rate_by_county["002"].match_rate == 1.0
    assert manifest.backend == "tiger" and manifest.cache_misses == 3
    assert GeocodeManifest.from_json(manifest.to_json()) == manifest
    assert "stage" not in manifest.to_json()


def test_missing_manifests_read_as_defaults_and_non_objects_are_refused():
    assert ImportManifest.from_json(None).files == []
    assert CohortManifest.from_json({}).voters_geocoded is None  # "not recorded", not zero
    assert HouseholdManifest.from_json({"households": 3, "party_mix": {"mixed": 1}}).party_mix == {"mixed": 1}
    with pytest.raises(TypeError, match="ImportManifest: expected a JSON object, got list"):
        ImportManifest.from_json([{"name": "x"}])
