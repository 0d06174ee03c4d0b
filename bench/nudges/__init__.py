"""The nudge dispatch benchmark: ``make bench-nudges`` (``python -m bench.nudges``)."""
