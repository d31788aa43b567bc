"""A notes service on the three data stores tovuk serves.

GET /add?text=...   stores a note: a row in SQLite, its body in the bucket, a KV count
GET /notes          every note, read back from all three stores (JSON)
GET /kv?key=K&value=V  sets one KV key (to see a cap stop writes)
GET /health         ok
"""

import json
import os
import sqlite3
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import redis

# Each store is configured by the platform's variables alone: DB is the database's path,
# boto3 reads AWS_ENDPOINT_URL_S3 and the keys, REDIS_URL names the KV with its password.
db = sqlite3.connect(os.environ["DB"], check_same_thread=False, timeout=10)
db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
db.commit()
s3 = boto3.client("s3")
bucket = os.environ["BUCKET_NAME"]
kv = redis.Redis.from_url(os.environ["REDIS_URL"])


def add(text):
    cursor = db.execute("INSERT INTO notes (text) VALUES (?)", (text,))
    db.commit()
    note = cursor.lastrowid
    s3.put_object(Bucket=bucket, Key=f"notes/{note}.txt", Body=text.encode(), ContentType="text/plain")
    kv.incr("notes:added")
    kv.set(f"note:{note}", text)
    return {"id": note}


def notes():
    rows = db.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="notes/")
    bodies = {}
    for entry in listed.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode()
        bodies[entry["Key"]] = body
    added = kv.get("notes:added")
    return {
        "sqlite": [{"id": row[0], "text": row[1]} for row in rows],
        "objects": bodies,
        "kv_added": int(added) if added else 0,
        "kv_notes": {str(row[0]): (kv.get(f"note:{row[0]}") or b"").decode() for row in rows},
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path == "/health":
                status, body = 200, {"ok": True}
            elif url.path == "/add":
                status, body = 200, add(query["text"])
            elif url.path == "/notes":
                status, body = 200, notes()
            elif url.path == "/kv":
                kv.set(query["key"], query["value"])
                status, body = 200, {"ok": True}
            else:
                status, body = 404, {"error": "not found"}
        except Exception as error:  # the store's own error, for the caller to read
            status, body = 500, {"error": f"{type(error).__name__}: {error}"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
