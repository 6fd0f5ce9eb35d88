"""Smoke runs of the scripts in benchmarks/."""
