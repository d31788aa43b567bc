#!/usr/bin/env python3
"""Constant load on a few apps through one router, for bench/recovery.sh.

Each app gets THREADS threads doing GET / one after another (a new connection each, so a
restarted router is found at once). Every answer that is not a 2xx and every failed
exchange (refused, reset, timed out) is counted; so is the longest gap between two
successful answers per app. Runs until the file STOP exists, then prints one line per app:
  app requests ok non2xx errors longest_gap_ms
"""
import http.client
import os
import sys
import threading
import time

router, stop_file, threads_per_app = sys.argv[1], sys.argv[2], int(sys.argv[3])
apps = sys.argv[4:]
host, port = router.rsplit(":", 1)
lock = threading.Lock()
stats = {app: {"requests": 0, "ok": 0, "non2xx": 0, "errors": 0, "last_ok": None, "gap": 0.0} for app in apps}


def run(app):
    mine = stats[app]
    while not os.path.exists(stop_file):
        outcome = "errors"
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
            response = conn.getresponse()
            response.read()
            conn.close()
            outcome = "ok" if 200 <= response.status < 300 else "non2xx"
        except (OSError, http.client.HTTPException):
            time.sleep(0.001)
        now = time.monotonic()
        with lock:
            mine["requests"] += 1
            mine[outcome] += 1
            if outcome == "ok":
                if mine["last_ok"] is not None:
                    mine["gap"] = max(mine["gap"], now - mine["last_ok"])
                mine["last_ok"] = now


workers = [threading.Thread(target=run, args=(app,)) for app in apps for _ in range(threads_per_app)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
for app in apps:
    s = stats[app]
    print(app, s["requests"], s["ok"], s["non2xx"], s["errors"], round(s["gap"] * 1000, 1))
