"""shop: takes orders and sends them to the ORDERS queue (Python standard library only).

POST /produce?n=10000  sends n orders to the queue, 100 per request; a few are made to fail
                       on purpose: every 1000th is "flaky" (its first attempt fails) and the
                       one in the middle is "poison" (it fails until the warehouse is fixed)
GET  /warehouse        calls the warehouse's /stats through the WAREHOUSE service binding
GET  /health           the [health] path
"""

import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BATCH = 100  # the most messages one send may carry


def call(binding, method, path, payload=None):
    """One request to a binding's URL with its token: (status, JSON answer).

    The platform sets <BINDING>_URL and <BINDING>_TOKEN for the queue and the service binding.
    """
    request = urllib.request.Request(
        os.environ[binding + "_URL"] + path,
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={"Authorization": "Bearer " + os.environ[binding + "_TOKEN"], "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:  # 4xx and 5xx: the answer says why
        return error.code, json.loads(error.read() or b"null")


def produce(n, flaky_every=1000):
    """Sends orders <run>-0 .. <run>-(n-1) and says which ones will fail on purpose."""
    run = secrets.token_hex(3)  # tells this call's orders from those of other calls
    flaky, poison, sent = [], [], 0
    for start in range(0, n, BATCH):
        messages = []
        for i in range(start, min(n, start + BATCH)):
            order = {"order": f"{run}-{i}", "item": f"item-{i % 7}", "qty": 1 + i % 3}
            if i % flaky_every == flaky_every - 1:
                order["flaky"] = True
                flaky.append(order["order"])
            if i == n // 2:
                order["poison"] = True
                poison.append(order["order"])
            messages.append({"body": order})
        # Answered only once the batch is stored durably: from here on it is not lost.
        status, answer = call("ORDERS", "POST", "/messages/batch", {"messages": messages})
        if status != 200:  # e.g. 429 cap_reached: answer["error"]["next"] says what to do
            return status, {"run": run, "sent": sent, "error": answer["error"]}
        sent += len(answer["ids"])
    return 200, {"run": run, "sent": sent, "flaky": flaky, "poison": poison}


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

    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, {"ok": True})
        if self.path == "/warehouse":
            status, stats = call("WAREHOUSE", "GET", "/stats")
            return self.answer(200, {"status": status, "warehouse": stats})
        self.answer(404, {"error": "no such route"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/produce":
            query = urllib.parse.parse_qs(url.query)
            n = int(query.get("n", ["100"])[0])
            flaky_every = int(query.get("flaky_every", ["1000"])[0])
            return self.answer(*produce(n, flaky_every))
        self.answer(404, {"error": "no such route"})


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
