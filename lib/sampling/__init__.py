"""Reconstruction from phi with the same network: projections onto a target phi, the unconditional and
self-guided samplers, their noise schedules and the quality of their samples."""
