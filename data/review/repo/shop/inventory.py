"""Products and stock levels."""

import logging

from shop.db import fetch_all, fetch_one

log = logging.getLogger(__name__)


class OutOfStock(Exception):
    pass


def get_product(conn, product_id):
    return fetch_one(conn, "SELECT * FROM product WHERE id = ?", (product_id,))


def find_by_sku(conn, sku):
    return fetch_one(conn, "SELECT * FROM product WHERE sku = ?", (sku,))


def list_products(conn, limit=100):
    return fetch_all(conn, "SELECT * FROM product ORDER BY name LIMIT ?", (limit,))


def adjust_stock(conn, product_id, delta):
    """Add `delta` (negative to take stock out); refuses to go below zero."""
    product = get_product(conn, product_id)
    if product is None:
        raise KeyError(product_id)
    if product["stock"] + delta < 0:
        raise OutOfStock(product["sku"])
    conn.execute("UPDATE product SET stock = stock + ? WHERE id = ?", (delta, product_id))
    log.info("stock of %s changed by %d", product["sku"], delta)
    return product["stock"] + delta


def low_stock(conn, threshold=5):
    return fetch_all(conn, "SELECT * FROM product WHERE stock < ? ORDER BY stock", (threshold,))
