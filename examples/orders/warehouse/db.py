"""The warehouse's SQLite database: the DB binding, a file in the app's volume ($DB)."""

import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS shipped (
    order_id TEXT PRIMARY KEY,          -- one row per order, however often it is delivered
    message_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,           -- the delivery attempt that shipped it
    duplicates INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failures (order_id TEXT, message_id TEXT, attempt INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS fixes (what TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS tallies (run TEXT, at TEXT, shipped INTEGER, duplicates INTEGER, failures INTEGER);
"""


def connect():
    """A connection, with the tables made if missing. timeout: wait for another writer."""
    db = sqlite3.connect(os.environ["DB"], timeout=10)
    db.executescript(SCHEMA)
    return db
