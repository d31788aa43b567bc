#!/usr/bin/env python3
"""Producers and consumers of one queue workload, for bench/queue.sh.

Sends N messages in batches from P producer processes, each message's body carrying the
time it was sent, while consumers take them; prints one JSON line with the rate (N over the
time from the first send to the last message received) and the latency from send to receipt
(p50, p99), plus duplicates seen.

  queue-load.py tovuk-pull  URL TOKEN N BATCH PRODUCERS CONSUMERS
  queue-load.py tovuk-push  URL TOKEN N BATCH PRODUCERS APP_HOSTPORT APP
  queue-load.py redis-brpop  PORT N BATCH PRODUCERS CONSUMERS
  queue-load.py redis-blmpop PORT N BATCH PRODUCERS CONSUMERS

tovuk-pull: consumers POST $URL/pull (max = BATCH, wait_seconds 1) and ack each batch.
tovuk-push: the platform delivers to the app; its GET /stats (on its own port, APP_HOSTPORT)
says what it received. redis-*: LPUSH of BATCH values per
command; consumers BRPOP one at a time, or BLMPOP COUNT BATCH (redis 7). Clients speak HTTP
(http.client, one keep-alive connection each) and RESP (a small client below) with the
standard library only.
"""
import http.client
import json
import multiprocessing
import socket
import sys
import time
import urllib.parse


def percentile(values, fraction):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))]


# --- HTTP --------------------------------------------------------------------------------


class Api:
    def __init__(self, url, token):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port, self.base = parsed.hostname, parsed.port, parsed.path
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, path, body):
        self.conn.request("POST", self.base + path, json.dumps(body), self.headers)
        answer = self.conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {data[:300]!r}")
        return json.loads(data)


def http_produce(url, token, first, count, batch, start_at):
    api = Api(url, token)
    while time.time() < start_at:
        time.sleep(0.001)
    for offset in range(0, count, batch):
        now = time.time()
        size = min(batch, count - offset)
        api.post("/messages/batch", {"messages": [{"body": {"i": first + offset + k, "t": now}} for k in range(size)]})


def http_pull(url, token, batch, total, received, out):
    api = Api(url, token)
    latencies, ids = [], []
    while received.value < total:
        pulled = api.post("/pull", {"max": batch, "visibility_timeout_seconds": 60, "wait_seconds": 1})["messages"]
        if not pulled:
            continue
        now = time.time()
        latencies.extend(now - message["body"]["t"] for message in pulled)
        ids.extend(message["body"]["i"] for message in pulled)
        api.post("/ack", {"acks": [message["lease_id"] for message in pulled]})
        with received.get_lock():
            received.value += len(pulled)
    out.put((latencies, ids, time.time()))


# --- RESP --------------------------------------------------------------------------------


class Resp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            arg = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.sock.sendall(b"".join(parts))
        return self.read()

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise RuntimeError(f"unexpected reply {line!r}")


def redis_produce(port, first, count, batch, start_at):
    redis = Resp(port)
    while time.time() < start_at:
        time.sleep(0.001)
    for offset in range(0, count, batch):
        now = time.time()
        size = min(batch, count - offset)
        values = [json.dumps({"i": first + offset + k, "t": now}) for k in range(size)]
        redis.call("LPUSH", "queue", *values)


def redis_consume(port, mode, batch, total, received, out):
    redis = Resp(port)
    latencies, ids = [], []
    while received.value < total:
        if mode == "brpop":
            reply = redis.call("BRPOP", "queue", "1")
            values = [reply[1]] if reply else []
        else:
            reply = redis.call("BLMPOP", "1", "1", "queue", "RIGHT", "COUNT", batch)
            values = reply[1] if reply else []
        if not values:
            continue
        now = time.time()
        for value in values:
            body = json.loads(value)
            latencies.append(now - body["t"])
            ids.append(body["i"])
        with received.get_lock():
            received.value += len(values)
    out.put((latencies, ids, time.time()))


# --- runs --------------------------------------------------------------------------------


def run(produce, consume, total, batch, producers, consumers):
    received = multiprocessing.Value("q", 0)
    out = multiprocessing.Queue()
    start_at = time.time() + 0.5
    share = total // producers
    procs = [
        multiprocessing.Process(target=produce, args=(p * share, share if p < producers - 1 else total - p * share, batch, start_at))
        for p in range(producers)
    ]
    takers = [multiprocessing.Process(target=consume, args=(received, out)) for _ in range(consumers)]
    for proc in takers + procs:
        proc.start()
    latencies, ids, ends = [], [], []
    for _ in takers:
        got_latencies, got_ids, ended = out.get()
        latencies.extend(got_latencies)
        ids.extend(got_ids)
        ends.append(ended)
    for proc in takers + procs:
        proc.join()
    failed = [proc.exitcode for proc in procs + takers if proc.exitcode != 0]
    if failed:
        raise SystemExit(f"a client failed (exit codes {failed})")
    return report(total, latencies, ids, max(ends) - start_at)


def report(total, latencies, ids, elapsed):
    distinct = len(set(ids))
    if distinct < total:
        raise SystemExit(f"only {distinct} of {total} messages arrived")
    return {
        "messages": total,
        "elapsed_s": round(elapsed, 3),
        "rate": round(total / elapsed),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "duplicates": len(ids) - distinct,
    }


def push(url, token, total, batch, producers, stats_hostport, app):
    host, port = stats_hostport.rsplit(":", 1)

    def stats(path):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", path, headers={"Host": f"{app}.localhost"})
        answer = conn.getresponse()
        return json.loads(answer.read())

    stats("/reset")
    start_at = time.time() + 0.5
    share = total // producers
    procs = [
        multiprocessing.Process(
            target=http_produce,
            args=(url, token, p * share, share if p < producers - 1 else total - p * share, batch, start_at),
        )
        for p in range(producers)
    ]
    for proc in procs:
        proc.start()
    deadline = time.time() + 600
    while True:
        seen = stats("/stats")
        if seen["distinct"] >= total or time.time() > deadline:
            break
        time.sleep(0.2)
    for proc in procs:
        proc.join()
    if any(proc.exitcode != 0 for proc in procs):
        raise SystemExit("a producer failed")
    if seen["distinct"] < total:
        raise SystemExit(f"only {seen['distinct']} of {total} messages arrived")
    elapsed = seen["last_at"] - start_at
    return {
        "messages": total,
        "elapsed_s": round(elapsed, 3),
        "rate": round(total / elapsed),
        "p50_ms": seen["p50_ms"],
        "p99_ms": seen["p99_ms"],
        "duplicates": seen["received"] - seen["distinct"],
    }


def main(argv):
    mode = argv[1]
    if mode == "tovuk-pull":
        url, token = argv[2], argv[3]
        total, batch, producers, consumers = map(int, argv[4:8])
        result = run(
            lambda first, count, size, at: http_produce(url, token, first, count, size, at),
            lambda received, out: http_pull(url, token, batch, total, received, out),
            total, batch, producers, consumers,
        )
    elif mode == "tovuk-push":
        url, token = argv[2], argv[3]
        total, batch, producers = map(int, argv[4:7])
        result = push(url, token, total, batch, producers, argv[7], argv[8])
    elif mode in ("redis-brpop", "redis-blmpop"):
        port = int(argv[2])
        total, batch, producers, consumers = map(int, argv[3:7])
        how = mode.split("-")[1]
        result = run(
            lambda first, count, size, at: redis_produce(port, first, count, size, at),
            lambda received, out: redis_consume(port, how, batch, total, received, out),
            total, batch, producers, consumers,
        )
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    main(sys.argv)
