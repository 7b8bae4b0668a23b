"""The PyTorch runner: the shared study (harness_contract.pipeline) driven through PyTorch."""
