"""Synthetic state drops in each state's real layout (the only data tests and the demo use)."""
