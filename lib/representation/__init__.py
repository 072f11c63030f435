"""phi: noise-averaged spatial means of block outputs, in memory or extracted to a resumable disk cache."""
