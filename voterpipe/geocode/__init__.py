"""Geocoding: the offline TIGER/Line engine, the Census backend and the persistent geocode cache."""

from voterpipe.geocode.cache import GeocodeCache  # noqa: F401
