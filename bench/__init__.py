"""Benchmarks: `make bench` runs them all; each records its numbers in bench/results/."""
