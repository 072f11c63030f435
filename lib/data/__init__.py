"""Datasets behind one interface (``ImageSet``): generated tuxphoto and shapes, file-backed ImageNet 64x64,
CIFAR-10, class folders, Fashion-MNIST, and memory-mapped uint8 pools for training."""
