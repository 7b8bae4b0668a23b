"""The network both runners build: its canonical tensors and their initial weights."""
