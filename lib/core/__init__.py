"""Foundation shared by every layer: input checks, paths, devices and threads, atomic files, image metrics."""
