"""Training the denoiser (config, resumable trainer), the evidence recorded during training, the factor
study, and the card written when a run is shipped as a checkpoint."""
