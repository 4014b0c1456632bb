"""Synthetic state drops in each state's real layout (the only data tests and the demo use)."""

from voterpipe.synth.drop import read_truth, tiger_dir, truth_dir, write_drop
from voterpipe.synth.geography import counties_for, dwellings_for, networks_for
from voterpipe.synth.states import PROFILES, profile_for

__all__ = ["write_drop", "counties_for", "networks_for", "dwellings_for", "read_truth", "truth_dir",
           "tiger_dir", "profile_for", "PROFILES"]
