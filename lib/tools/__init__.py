"""Benchmarks and the GPU check (speed and memory; printed as JSON by ``make bench``)."""
