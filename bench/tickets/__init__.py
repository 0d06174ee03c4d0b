"""The tickets benchmark: ``make bench-tickets`` (see __main__.py)."""
