"""switchyard's benchmark: exact-length streaming throughput and latency, several targets in one run.

``python -m bench --target NAME=KIND:ADDRESS ...`` runs the same load against each target in turn
(interleaved per step) and reports tokens/s, time to first token and inter-token latency, with
each target's ratio to the first one. See ``python -m bench --help``.
"""
