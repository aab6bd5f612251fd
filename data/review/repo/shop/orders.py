"""Orders: create them, price them, list them."""

from datetime import datetime, timezone

from shop.db import fetch_all, fetch_one
from shop.inventory import adjust_stock, get_product


def create_order(conn, customer_id, items):
    """items: a list of (product_id, quantity); takes the stock and records the price paid."""
    now = datetime.now(timezone.utc).isoformat()
    cur = conn.execute("INSERT INTO orders (customer_id, status, created_at) VALUES (?, 'open', ?)",
                       (customer_id, now))
    order_id = cur.lastrowid
    for product_id, quantity in items:
        product = get_product(conn, product_id)
        adjust_stock(conn, product_id, -quantity)
        conn.execute("INSERT INTO order_line (order_id, product_id, quantity, price_cents) VALUES (?, ?, ?, ?)",
                     (order_id, product_id, quantity, product["price_cents"]))
    return order_id


def order_total(conn, order_id):
    row = fetch_one(conn, "SELECT SUM(quantity * price_cents) AS total FROM order_line WHERE order_id = ?",
                    (order_id,))
    return row["total"] or 0


def get_order(conn, order_id):
    return fetch_one(conn, "SELECT * FROM orders WHERE id = ?", (order_id,))


def list_orders_for_customer(conn, customer_id):
    return fetch_all(conn, "SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC", (customer_id,))


def cancel_order(conn, order_id):
    lines = fetch_all(conn, "SELECT product_id, quantity FROM order_line WHERE order_id = ?", (order_id,))
    for line in lines:
        adjust_stock(conn, line["product_id"], line["quantity"])
    conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (order_id,))
