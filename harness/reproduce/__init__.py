"""``harness reproduce RUN_DIR``: check a finished run bit for bit by running it again.

original  open the run and refuse what cannot be reproduced (one line each)
verify    the original's model files against the digests its metrics.json recorded
plan      the rerun's options, from what the run recorded (spec, data, frameworks, backend)
compare   old against new per framework and variant (artifacts, figures, latency band)
explain   why bits differ, from the two recorded contexts
render    the verdict table, reproduction.md, .html and .json
command   the steps above in order, with the exit code
"""
