"""The admin dashboard under load: GET /admin/dashboard as an administrator, on the orders the
pipeline scenarios left and then on 100,000 orders (a year of them, two lines each), to show that
its cost follows the window asked for, not the size of the tables."""

from __future__ import annotations

ORDERS = """
INSERT INTO orders (order_number, user_id, status, payment_status, currency, subtotal, shipping_fee, discount_amount,
                    total, shipping_address, shipping_method, payment_method, payment_gateway, stock_held,
                    discount_held, version, created_at, updated_at, paid_at)
SELECT 'BENCH-' || i, %(user)s, s.status,
       CASE WHEN s.status IN ('confirmed', 'shipped', 'delivered') THEN 'paid'
            WHEN s.status = 'cancelled' THEN 'refunded' ELSE 'failed' END,
       'KRW', 20000, 0, 0, 20000, '{}', 'standard', 'dummy', 'dummy', false, false, 1, t.at,
       t.at + interval '1 hour', CASE WHEN s.status <> 'failed' THEN t.at + interval '5 minutes' END
FROM generate_series(1, %(count)s) AS i
CROSS JOIN LATERAL (SELECT now() - i * interval '315 seconds' AS at) AS t
CROSS JOIN LATERAL (SELECT CASE WHEN i %% 100 < 75 THEN 'delivered' WHEN i %% 100 < 85 THEN 'confirmed'
                                WHEN i %% 100 < 92 THEN 'shipped' WHEN i %% 100 < 96 THEN 'cancelled'
                                ELSE 'failed' END AS status) AS s"""
# Two lines per synthetic order, spread over the catalogue.
LINES = """
INSERT INTO order_items (order_id, product_id, product_name, product_sku, unit_price, quantity, subtotal)
SELECT o.id, p.ids[1 + (o.id * 7 + k) %% array_length(p.ids, 1)], 'Bench item', 'B', 10000, 1 + o.id %% 3,
       10000 * (1 + o.id %% 3)
FROM orders o CROSS JOIN generate_series(0, 1) AS k
CROSS JOIN (SELECT array_agg(id) AS ids FROM (SELECT id FROM products ORDER BY id LIMIT 1000) AS f) AS p
WHERE o.order_number LIKE 'BENCH-%%'"""


def admin_token() -> str:
    """An access token of the bench's administrator (created once)."""
    from models.accounts import service as accounts
    from models.tables import User

    admin = User.get_or_none(User.email == "bench-admin@example.com")
    if admin is None:
        admin = accounts.create_admin("bench-admin@example.com", "bench-password")
    return accounts.issue_tokens(admin).access_token


def load_orders(count: int) -> int:
    """Add `count` closed or shipped orders paid over the last year (none pending or reserved: the
    integrity checks' figures stay the pipeline's own); returns how many orders there are now."""
    from models.infra.db import db
    from models.tables import User

    user = User.get(User.email == "bench-admin@example.com")
    db.obj.execute_sql(ORDERS, {"user": user.id, "count": count})
    db.obj.execute_sql(LINES)
    for table in ("orders", "order_items", "products"):
        db.obj.execute_sql(f"VACUUM ANALYZE {table}")
    return int(db.obj.execute_sql("SELECT count(*) FROM orders").fetchone()[0])
