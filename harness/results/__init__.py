"""Reading a run's results: metrics, profiler passes, traces, statistics, support matrix."""
