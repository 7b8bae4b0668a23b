"""Host side of the quantization comparison harness: CLI, run planning, backends, report.

Imports no deep-learning framework: frameworks live in their runners, started by a backend.
"""

from harness_contract import __version__

__all__ = ["__version__"]
