"""Which CIFAR-10 a run uses, and fetching the official archive."""
