"""promotion-bot benchmark: round trips per operation, webhook answer times, start-up cost.

Run `python bench/run.py` (full) or `python bench/run.py --quick` (counts and import checks,
compared with bench/budgets.json). Results: bench/results.json and bench/RESULTS.md.
"""
