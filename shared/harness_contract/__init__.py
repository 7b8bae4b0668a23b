"""The contract shared by the host (``harness``) and every framework runner.

It holds everything both sides must agree on: the experiment spec and presets,
the CIFAR-10 reader, the seeded input stream, the framework-neutral initial
weights, the latency method and the metrics schema. It imports no framework.
"""

__version__ = "0.1.0"
