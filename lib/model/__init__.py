"""The blind UNet denoiser, its named blocks, forward hooks that record them, and checkpoints on disk."""
