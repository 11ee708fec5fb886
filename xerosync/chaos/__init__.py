"""`xerosync chaos`: the whole system as processes, attacked on a seeded schedule, then
checked against what the Xero sandbox holds (see `run.py` for the sequence)."""
