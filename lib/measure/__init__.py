"""Measurements of a representation: channel statistics and sparsity, the readout (liveness, probes, kNN,
controls), k-means clustering, distances, denoising quality."""
