"""warehouse: ships the orders the shop sends (Python standard library only).

POST /orders        the platform delivers batches of the shop's ORDERS queue here
POST /fix           repairs the poison order, so its next delivery ships it
GET  /stats         what was shipped, failed and tallied, and who called
GET  /shipped       every shipped order id (to check that none was lost)
POST /count/<name>  adds 1 to the counter <name>, a State object; GET /count/<name> reads it
GET  /health        the [health] path
"""

import json
import os
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import db


def ship(messages):
    """Handles one delivery; answers which messages the platform should retry."""
    retry = []
    conn = db.connect()
    with conn:  # the whole batch in one transaction
        fixed = conn.execute("SELECT 1 FROM fixes WHERE what = 'poison'").fetchone() is not None
        for message in messages:
            order = message["body"]
            why = None
            if order.get("poison") and not fixed:
                why = "poison: this order cannot be shipped until POST /fix"
            elif order.get("flaky") and message["attempt"] == 1:
                why = "flaky: the first attempt fails on purpose"
            if why:
                row = (order["order"], message["id"], message["attempt"], why)
                conn.execute("INSERT INTO failures VALUES (?, ?, ?, ?)", row)
                retry.append({"id": message["id"], "error": why})
                continue
            # Delivery is at least once: a message may come again (an answer lost in a crash).
            # The order id is the key, so an order is shipped once; a repeat is only counted.
            conn.execute(
                "INSERT INTO shipped VALUES (?, ?, ?, 0)"
                " ON CONFLICT (order_id) DO UPDATE SET duplicates = duplicates + 1",
                (order["order"], message["id"], message["attempt"]),
            )
    conn.close()
    if retry:
        print(f"{len(retry)} of {len(messages)} to retry: {retry[0]['error']}", flush=True)
    # A 2xx acknowledges every message except those listed here. (Any other status would
    # retry the whole batch, shipped orders too.)
    return {"retry": retry}


def stats(caller):
    conn = db.connect()
    shipped, duplicates = conn.execute("SELECT COUNT(*), COALESCE(SUM(duplicates), 0) FROM shipped").fetchone()
    (failures,) = conn.execute("SELECT COUNT(*) FROM failures").fetchone()
    fixed = conn.execute("SELECT 1 FROM fixes WHERE what = 'poison'").fetchone() is not None
    tally = conn.execute("SELECT run, at, shipped FROM tallies ORDER BY at DESC LIMIT 1").fetchone()
    conn.close()
    return {
        "shipped": shipped,
        "duplicates": duplicates,
        "failed_attempts": failures,
        "poison_fixed": fixed,
        "last_tally": dict(zip(["run", "at", "shipped"], tally)) if tally else None,
        # Set by the platform on a call through a service binding; removed from public requests.
        "caller": caller,
    }


def counters(method, path, call=None, value=None):
    """A request to the COUNTERS State binding: (status, JSON answer or None)."""
    headers = {"Authorization": "Bearer " + os.environ["COUNTERS_TOKEN"], "Content-Type": "application/json"}
    if call:
        headers["Tovuk-State-Call"] = call  # storage is opened only inside a call, with its id
    request = urllib.request.Request(
        os.environ["COUNTERS_URL"] + path,
        data=None if value is None else json.dumps(value).encode(),
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, None


def on_counter(name, call, path):
    """A call to the State object `name`. The platform runs one call at a time per object,
    so this read-then-write (not atomic on its own) never loses an increment."""
    status, stored = counters("GET", f"/_storage/{name}/count", call)
    if status not in (200, 404):  # 404: nothing stored yet
        return 502, {"error": f"reading the count answered {status}"}
    count = stored["value"] if status == 200 else 0
    if path == "/counter/increment":
        count += 1
        status, _ = counters("PUT", f"/_storage/{name}/count", call, count)
        if status != 200:
            return 502, {"error": f"storing the count answered {status}"}
    return 200, {"counter": name, "count": count}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # one line per request would drown the app's log
        pass

    def route(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        parts = self.path.strip("/").split("/")
        call = self.headers.get("Tovuk-State-Call")
        if call:  # the platform delivering a call to one of our State objects
            return self.answer(*on_counter(self.headers["Tovuk-State-Object"], call, self.path))
        if (method, self.path) == ("POST", "/orders"):
            return self.answer(200, ship(body["messages"]))
        if (method, self.path) == ("POST", "/fix"):
            with db.connect() as conn:
                conn.execute("INSERT OR IGNORE INTO fixes VALUES ('poison')")
            return self.answer(200, {"fixed": "poison"})
        if (method, self.path) == ("GET", "/stats"):
            return self.answer(200, stats(self.headers.get("Tovuk-Caller-App")))
        if (method, self.path) == ("GET", "/shipped"):
            with db.connect() as conn:
                rows = conn.execute("SELECT order_id FROM shipped ORDER BY order_id").fetchall()
            return self.answer(200, [row[0] for row in rows])
        if len(parts) == 2 and parts[0] == "count":
            # Call the object named by the path: the platform delivers it back to this app
            # at /counter/increment (or /counter/value), one call at a time per object.
            if method == "POST":
                status, counted = counters("POST", f"/{parts[1]}/counter/increment", value={})
            else:
                status, counted = counters("GET", f"/{parts[1]}/counter/value")
            return self.answer(status, counted)
        if (method, self.path) == ("GET", "/health"):
            return self.answer(200, {"ok": True})
        self.answer(404, {"error": "no such route"})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")


db.connect().close()  # make the tables before the first request
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128  # many /count calls at once
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
