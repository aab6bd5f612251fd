"""Database access: one SQLite connection per call site, rows as dictionaries."""

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS product (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, name TEXT, price_cents INTEGER,
                                    stock INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS customer (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS order_line (id INTEGER PRIMARY KEY, order_id INTEGER, product_id INTEGER,
                                       quantity INTEGER, price_cents INTEGER);
"""


def connect(path=":memory:"):
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    return conn


def fetch_one(conn, sql, params=()):
    row = conn.execute(sql, params).fetchone()
    return dict(row) if row is not None else None


def fetch_all(conn, sql, params=()):
    return [dict(row) for row in conn.execute(sql, params).fetchall()]
