"""CIFAR-10 on disk (official format, synthetic stand-in) and the one input stream."""
