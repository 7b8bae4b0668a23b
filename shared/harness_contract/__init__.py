"""What the host (``harness``) and every framework runner share.

At the top, the contract both sides must agree on: the framework table, the experiment
spec and presets, the metrics schema, the output layout, the entrypoint, events, errors
and exit codes. Below it, the engine every runner drives: ``study/`` (phases, training,
measurement, ladder, probes), ``layers/`` (per-layer analysis), ``model/`` (the canonical
network and its initial weights), ``data/`` (CIFAR-10 and the input stream) and ``fs/``.
It imports no framework.
"""

__version__ = "0.1.0"
