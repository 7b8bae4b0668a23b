"""The ``harness`` command line: options and commands, wired to the packages that do the work."""
