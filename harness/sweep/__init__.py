"""``harness sweep``: many ordinary runs over seeds and a grid of spec overrides, run by
one executor (local processes or Ray tasks), summarized with intervals over seeds.

plan.py turns a sweep spec (TOML and/or CLI shorthands) into validated points; index.py
keeps the sweep directory's record of them; point.py runs one point as a ``harness run``
process; executors.py and ray_executor.py schedule points; driver.py ties these together
with retries and resumption; aggregate.py, render.py and figures.py write the report.
"""
