"""Address normalisation: USPS Pub 28 standardisation (pub28), one-line parsing and the cache."""

from voterpipe.addresses.pub28 import standardize_street_parts, standardize_unit  # noqa: F401
