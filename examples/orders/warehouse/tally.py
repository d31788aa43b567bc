"""The TALLY cron job: writes one row counting what the warehouse has shipped so far.

`tovuk cron history warehouse` lists each run; `tovuk cron run warehouse TALLY` runs it now.
"""

import datetime
import os

import db

conn = db.connect()
with conn:  # one transaction
    shipped, duplicates = conn.execute("SELECT COUNT(*), COALESCE(SUM(duplicates), 0) FROM shipped").fetchone()
    (failures,) = conn.execute("SELECT COUNT(*) FROM failures").fetchone()
    run = os.environ.get("TOVUK_CRON_RUN_ID")  # the run's id, as `tovuk cron history` shows it
    at = datetime.datetime.now(datetime.timezone.utc).isoformat()
    conn.execute("INSERT INTO tallies VALUES (?, ?, ?, ?, ?)", (run, at, shipped, duplicates, failures))
print(f"tally {run}: {shipped} shipped, {duplicates} duplicate deliveries, {failures} failed attempts")
