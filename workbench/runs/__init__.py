"""Runs: the run folder contract, run processes (start, stop, resume, queue), lifecycle, metric sinks and the preflight
checks that refuse a run before it starts."""
