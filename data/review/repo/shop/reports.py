"""Reports for the back office."""

from shop.db import fetch_all


def daily_sales(conn, day):
    """Revenue per product on one day (YYYY-MM-DD)."""
    return fetch_all(
        conn,
        "SELECT p.sku, SUM(l.quantity * l.price_cents) AS revenue FROM order_line l "
        "JOIN orders o ON o.id = l.order_id JOIN product p ON p.id = l.product_id "
        "WHERE substr(o.created_at, 1, 10) = ? GROUP BY p.sku ORDER BY revenue DESC",
        (day,),
    )


def top_customers(conn, limit=10):
    return fetch_all(
        conn,
        "SELECT c.email, COUNT(o.id) AS orders FROM customer c JOIN orders o ON o.customer_id = c.id "
        "GROUP BY c.email ORDER BY orders DESC LIMIT ?",
        (limit,),
    )
