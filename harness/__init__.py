"""Host side of the quantization comparison harness: the CLI (cli/), a study's run
(run/), launching runners (launch/), images, data, reading results (results/), reports,
sweeps and reproductions. The README's "Layout" names each package.

Imports no deep-learning framework: frameworks live in their runners, started by a
launcher (a "backend" on the command line: local or docker).
"""

from harness_contract import __version__

__all__ = ["__version__"]
