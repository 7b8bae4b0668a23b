"""The PyTorch runner: the shared study (harness_contract.study.pipeline) driven through PyTorch."""
