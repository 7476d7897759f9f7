"""Peewee models: the seed's tables plus the pipeline's bookkeeping. Money is integer minor units."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from peewee import (
    SQL,
    AutoField,
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    ForeignKeyField,
    IntegerField,
    SmallIntegerField,
    TextField,
)
from playhouse.postgres_ext import BinaryJSONField, DateTimeTZField

from models.infra.db import BaseModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(BaseModel):
    id = AutoField()
    email = CharField(max_length=254, unique=True)
    phone = CharField(max_length=32, null=True)
    full_name = CharField(max_length=100)
    hashed_password = CharField(max_length=128)
    is_active = BooleanField(default=True)
    is_verified = BooleanField(default=False)
    is_admin = BooleanField(default=False)
    # The language of the customer's emails (ko or en); null follows DEFAULT_LOCALE.
    locale = CharField(max_length=2, null=True, constraints=[Check("locale IN ('ko', 'en')")])
    # Bumped by logout: every token carries the version it was issued under.
    token_version = IntegerField(default=0)
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "users"


class Address(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, backref="addresses", on_delete="CASCADE")
    recipient_name = CharField(max_length=100)
    phone = CharField(max_length=32)
    postal_code = CharField(max_length=16)
    address_line1 = CharField(max_length=200)
    address_line2 = CharField(max_length=200, null=True)
    city = CharField(max_length=100)
    is_default = BooleanField(default=False)
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "addresses"


# Finding customers' orders by the start of their email (GET /admin/orders?q=): LIKE 'prefix%'.
User.add_index(User.index(SQL("email text_pattern_ops"), name="users_email_pattern"))


# At most one default address per user, enforced by the database (a partial unique index).
Address.add_index(
    Address.index(Address.user, unique=True, where=(Address.is_default == True), name="addresses_one_default_per_user")  # noqa: E712
)


class Product(BaseModel):
    id = AutoField()
    sku = CharField(max_length=64, unique=True)
    name = CharField(max_length=200)
    slug = CharField(max_length=220, unique=True)
    description = TextField(default="")
    price = BigIntegerField(constraints=[Check("price >= 0")])
    compare_at_price = BigIntegerField(null=True)
    cost_price = BigIntegerField(null=True)
    stock_quantity = IntegerField(default=0, constraints=[Check("stock_quantity >= 0")])
    low_stock_threshold = IntegerField(default=5)
    track_inventory = BooleanField(default=True)
    category = CharField(max_length=100, index=True, null=True)
    tags = BinaryJSONField(default=list)  # GIN-indexed for the tag filter
    images = BinaryJSONField(default=list, index=False)
    is_published = BooleanField(default=True)
    is_featured = BooleanField(default=False)
    # Published reviews: their number and the sum of their ratings, changed in the same statement as
    # every review write (models/reviews), so rating_average = rating_sum / rating_count is never
    # recomputed from the reviews on a read.
    rating_count = IntegerField(default=0, constraints=[SQL("DEFAULT 0"), Check("rating_count >= 0")])
    rating_sum = IntegerField(default=0, constraints=[SQL("DEFAULT 0")])
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "products"
        constraints = [SQL("CHECK (rating_sum BETWEEN rating_count AND 5 * rating_count)")]

    @classmethod
    def create_table(cls, safe: bool = True, **options: object) -> None:
        # The text-search index needs pg_trgm, which a server without the contrib extensions (the
        # embedded pgserver) lacks: there `q` still works, by a scan. Migration 002 does the same.
        database = cls._meta.database
        if trigram_available(database):
            database.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            super().create_table(safe, **options)
            return
        kept = cls._meta.indexes
        cls._meta.indexes = [i for i in kept if getattr(i, "_name", None) != "products_search_trgm"]
        try:
            super().create_table(safe, **options)
        finally:
            cls._meta.indexes = kept


def trigram_available(database: Any) -> bool:
    """True when this PostgreSQL server can provide the pg_trgm extension."""
    return bool(database.execute_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone())


# The catalogue's listing indexes (migration 002 creates the same ones, by the same names).
# Storefront listings always filter on is_published, so the sort indexes are partial on it and
# end in id, the tie-breaker that keeps pages stable.
PRODUCT_SEARCH_EXPRESSION = "((name)::text || ' '::text || description)"
_published = Product.is_published == True  # noqa: E712
Product.add_index(Product.index(Product.created_at, Product.id, where=_published, name="products_published_created_at"))
Product.add_index(Product.index(Product.price, Product.id, where=_published, name="products_published_price"))
Product.add_index(Product.index(Product.name, Product.id, where=_published, name="products_published_name"))
Product.add_index(
    Product.index(
        Product.created_at,
        Product.id,
        where=_published & (Product.is_featured == True),  # noqa: E712
        name="products_featured_created_at",
    )
)
Product.add_index(
    Product.index(
        Product.created_at,
        Product.id,
        name="products_in_stock_created_at",
        where=_published & ((Product.track_inventory == False) | (Product.stock_quantity > 0)),  # noqa: E712 (a SQL expression)
    )
)  # noqa: E712
Product.add_index(
    Product.index(
        Product.created_at,
        Product.id,
        name="products_sold_out_created_at",
        where=_published & (Product.track_inventory == True) & (Product.stock_quantity <= 0),  # noqa: E712 (a SQL expression)
    )
)  # noqa: E712
Product.add_index(
    Product.index(
        Product.created_at,
        Product.id,
        name="products_low_stock_created_at",
        where=(Product.track_inventory == True) & (Product.stock_quantity <= Product.low_stock_threshold),  # noqa: E712 (a SQL expression)
    )
)  # noqa: E712
Product.add_index(
    Product.index(SQL(f"{PRODUCT_SEARCH_EXPRESSION} gin_trgm_ops"), using="GIN", name="products_search_trgm")
)


ORDER_RECIPIENT_EXPRESSION = "lower(shipping_address ->> 'recipient_name')"


class Discount(BaseModel):
    """A discount code staff manage (/admin/discounts). used_count counts the orders holding it: claimed
    by a conditional UPDATE when an order reserves stock, given back when the order fails, expires or
    is cancelled before shipping (models/discounts/redemption.py)."""

    id = AutoField()
    code = CharField(max_length=64, unique=True)  # stored upper case
    kind = CharField(max_length=8, constraints=[Check("kind IN ('percent', 'fixed')")])
    value = BigIntegerField(constraints=[Check("value > 0")])  # percent: 1-100; fixed: minor units
    min_subtotal = BigIntegerField(default=0, constraints=[Check("min_subtotal >= 0")])
    starts_at = DateTimeTZField(null=True)
    ends_at = DateTimeTZField(null=True)
    usage_limit = IntegerField(null=True, constraints=[Check("usage_limit >= 0")])
    per_customer_limit = IntegerField(null=True, constraints=[Check("per_customer_limit >= 1")])
    used_count = IntegerField(default=0, constraints=[Check("used_count >= 0")])
    active = BooleanField(default=True)
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "discounts"
        constraints = [
            SQL("CHECK (kind <> 'percent' OR value <= 100)"),
            # The database refuses a redemption beyond the limit, whatever the code does.
            SQL("CHECK (usage_limit IS NULL OR used_count <= usage_limit)"),
            SQL("CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)"),
        ]


class Order(BaseModel):
    id = AutoField()
    order_number = CharField(max_length=40, unique=True)
    # NULL for a guest's order (checked out without an account): the guest_* columns say who it is.
    user = ForeignKeyField(User, backref="orders", on_delete="RESTRICT", null=True)
    user_id: int | None  # the column itself, without loading the user (peewee's accessor; typed for mypy)
    guest_email = CharField(max_length=254, null=True)  # lower case; where a guest's emails go
    guest_phone = CharField(max_length=32, null=True)
    guest_name = CharField(max_length=100, null=True)
    status = CharField(max_length=16, default="pending")  # indexed with created_at (below)
    payment_status = CharField(max_length=16, default="pending")
    currency = CharField(max_length=3)
    subtotal = BigIntegerField(constraints=[Check("subtotal >= 0")])
    shipping_fee = BigIntegerField(default=0, constraints=[Check("shipping_fee >= 0")])
    discount_amount = BigIntegerField(default=0, constraints=[Check("discount_amount >= 0")])
    total = BigIntegerField(constraints=[Check("total >= 0")])
    shipping_address = BinaryJSONField(index=False)
    shipping_method = CharField(max_length=16)
    tracking_number = CharField(max_length=64, null=True)
    carrier = CharField(max_length=64, null=True)
    discount_code = CharField(max_length=64, null=True)
    # The discount the order was priced with (SET NULL if staff delete it: code and amount stay), and
    # whether the order holds one of its uses (claimed at reservation, like stock_held).
    discount = ForeignKeyField(Discount, null=True, on_delete="SET NULL")
    discount_id: int | None  # (peewee's accessor, typed for mypy)
    discount_held = BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])
    payment_method = CharField(max_length=16)
    payment_gateway = CharField(max_length=16)
    payment_transaction_id = CharField(max_length=200, null=True)
    # The proof the client handed to /pay (token, payment key, intent id); read by capture.
    payment_proof = BinaryJSONField(null=True, index=False)
    # What the client needs to pay (the contract's payment.next_action), set once stock is reserved.
    payment_next_action = BinaryJSONField(null=True, index=False)
    # Gateway facts the order keeps: a virtual account {bank, account_number, due_date, holder} and
    # the SHA-256 of its deposit secret (the callback must bring the secret itself).
    payment_details = BinaryJSONField(null=True, index=False)
    # Why the payment needs a person (set by reconciliation; cleared when it resolves), and when.
    payment_flag = CharField(max_length=200, null=True)
    payment_flagged_at = DateTimeTZField(null=True)
    # When reconciliation last asked the gateway about this order.
    payment_checked_at = DateTimeTZField(null=True)
    failure_reason = CharField(max_length=32, null=True)
    failure_detail = BinaryJSONField(null=True, index=False)
    # True while the order's units are taken out of products.stock_quantity.
    stock_held = BooleanField(default=False)
    reserved_until = DateTimeTZField(null=True)
    session_id = CharField(max_length=128, null=True)
    version = IntegerField(default=1)
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)
    paid_at = DateTimeTZField(null=True)
    payment_submitted_at = DateTimeTZField(null=True)
    shipped_at = DateTimeTZField(null=True)
    delivered_at = DateTimeTZField(null=True)
    cancelled_at = DateTimeTZField(null=True)

    class Meta:
        table_name = "orders"
        indexes = ((("user", "created_at"), False),)
        # Every order belongs to a customer account or to a guest with an email, never both.
        constraints = [SQL("CHECK ((user_id IS NULL) = (guest_email IS NOT NULL))")]


# Operators' list of payments that need a person (reconciliation flags them): small and partial.
Order.add_index(
    Order.index(Order.payment_flagged_at, where=Order.payment_flag.is_null(False), name="orders_payment_flagged")
)
# Webhooks that name only the gateway's payment (a Stripe charge's intent) find their order here.
Order.add_index(
    Order.index(
        Order.payment_transaction_id,
        where=Order.payment_transaction_id.is_null(False),
        name="orders_payment_transaction_id",
    )
)
# The admins' order desk (GET /admin/orders, models/orders/admin.py): newest first, filtered by
# status, payment status and a date range, each served by an index that ends in the sort; `q`
# matches the start of an order number, an email or a recipient's name through pattern indexes
# (text_pattern_ops: LIKE 'prefix%' whatever the database's collation). Migration 008 makes the same.
Order.add_index(Order.index(Order.created_at, Order.id, name="orders_created_at"))
Order.add_index(Order.index(Order.status, Order.created_at, Order.id, name="orders_status_created_at"))
Order.add_index(Order.index(Order.payment_status, Order.created_at, Order.id, name="orders_payment_status_created_at"))
Order.add_index(Order.index(SQL("order_number text_pattern_ops"), name="orders_number_pattern"))
Order.add_index(
    Order.index(
        SQL("guest_email text_pattern_ops"), where=Order.guest_email.is_null(False), name="orders_guest_email_pattern"
    )
)
Order.add_index(Order.index(SQL(f"{ORDER_RECIPIENT_EXPRESSION} text_pattern_ops"), name="orders_recipient_pattern"))
# The admin dashboard's paid orders by the day they were paid (revenue, best sellers); its other
# order figures use the order desk's orders_created_at and orders_status_created_at.
Order.add_index(Order.index(Order.paid_at, where=(Order.payment_status == "paid"), name="orders_paid_at_paid"))


class OrderItem(BaseModel):
    id = AutoField()
    order = ForeignKeyField(Order, backref="items", on_delete="CASCADE")
    # SET NULL: deleting a product keeps the snapshotted history intact.
    product = ForeignKeyField(Product, null=True, on_delete="SET NULL")
    product_name = CharField(max_length=200)
    product_sku = CharField(max_length=64)
    product_image = TextField(null=True)
    unit_price = BigIntegerField(constraints=[Check("unit_price >= 0")])
    quantity = IntegerField(constraints=[Check("quantity > 0")])
    subtotal = BigIntegerField(constraints=[Check("subtotal >= 0")])

    class Meta:
        table_name = "order_items"


class OrderEvent(BaseModel):
    id = AutoField()
    order = ForeignKeyField(Order, backref="events", on_delete="CASCADE")
    type = CharField(max_length=40)
    from_status = CharField(max_length=16, null=True)
    to_status = CharField(max_length=16, null=True)
    detail = BinaryJSONField(default=dict, index=False)
    task_id = CharField(max_length=64, null=True)
    at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "order_events"


# A carrier scan is recorded once per order, however often the carrier lists it (migration 009).
TRACKING_EVENT = "tracking_event"
OrderEvent.add_index(
    OrderEvent.index(
        OrderEvent.order,
        SQL("(detail ->> 'key')"),
        unique=True,
        where=(OrderEvent.type == TRACKING_EVENT),
        name="order_events_tracking_once",
    )
)


class Shipment(BaseModel):
    """Where the carrier says a shipped order is, and when to ask it next (models/shipping/tracking.py)."""

    order = ForeignKeyField(Order, primary_key=True, backref="shipment", on_delete="CASCADE")
    level = IntegerField(default=0)  # Sweet Tracker's 1 preparing .. 6 delivered; 0 before any answer
    status_text = CharField(max_length=64, null=True)  # the last scan, in the carrier's words
    delivered = BooleanField(default=False)
    next_poll_at = DateTimeTZField(null=True)  # null: no longer polled (see stopped_reason)
    last_polled_at = DateTimeTZField(null=True)
    last_success_at = DateTimeTZField(null=True)
    failures = IntegerField(default=0)  # consecutive failed polls
    last_error = CharField(max_length=200, null=True)
    stopped_reason = CharField(max_length=16, null=True)  # delivered | gave_up | closed
    created_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "shipments"


Shipment.add_index(
    Shipment.index(Shipment.next_poll_at, where=Shipment.next_poll_at.is_null(False), name="shipments_due")
)
# The admin dashboard's count of shipments whose tracking fails (models/reports/dashboard.py): the
# predicate is models/shipping/tracking.py's failing_filter, FAILING_AFTER (3) failed polls in a row.
Shipment.add_index(
    Shipment.index(
        Shipment.order,
        name="shipments_failing",
        where=(Shipment.failures >= 3) | (Shipment.stopped_reason == "gave_up"),
    )
)


class IdempotencyKey(BaseModel):
    id = AutoField()
    # NULL for a guest's checkout: its key is then scoped by the cart's session (models/orders/checkout.py).
    user = ForeignKeyField(User, on_delete="CASCADE", null=True)
    key = CharField(max_length=255)
    request_hash = CharField(max_length=64)
    order = ForeignKeyField(Order, null=True, on_delete="CASCADE")
    order_id: int | None  # (peewee's accessor, typed for mypy)
    created_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "idempotency_keys"
        indexes = ((("user", "key"), True),)


IdempotencyKey.add_index(
    IdempotencyKey.index(
        IdempotencyKey.key, unique=True, where=IdempotencyKey.user.is_null(), name="idempotency_keys_guest_key"
    )
)


class EmailLog(BaseModel):
    """One row per email the shop decided to send; message_id makes a resend a no-op."""

    id = AutoField()
    order = ForeignKeyField(Order, null=True, on_delete="CASCADE")
    kind = CharField(max_length=40)
    recipient = CharField(max_length=254)
    message_id = CharField(max_length=200, unique=True)
    # pending | sent | rejected (the SMTP server's 5xx) | failed (could not be rendered); the last two are final
    status = CharField(max_length=16, default="pending")
    attempts = IntegerField(default=0)
    created_at = DateTimeTZField(default=utcnow)
    sent_at = DateTimeTZField(null=True)
    # When a task last tried to send it: the re-drive leaves an email alone while Celery retries it.
    last_attempt_at = DateTimeTZField(null=True)

    class Meta:
        table_name = "email_log"


class UsedRefreshToken(BaseModel):
    """A refresh token already traded for a new pair (by its jti). Using it again means it was
    stolen: every session of the user is revoked. Kept in PostgreSQL so that no Redis restart can
    forget it; a row may go once its token has expired anyway (accounts.prune_used_refresh_tokens)."""

    jti = CharField(max_length=64, primary_key=True)
    user = ForeignKeyField(User, on_delete="CASCADE")
    used_at = DateTimeTZField(default=utcnow)
    expires_at = DateTimeTZField(index=True)

    class Meta:
        table_name = "used_refresh_tokens"


class WebhookEvent(BaseModel):
    """Gateway webhook events already handled, so a redelivery answers 200 and does nothing."""

    id = AutoField()
    gateway = CharField(max_length=16)
    event_id = CharField(max_length=200)
    received_at = DateTimeTZField(default=utcnow)
    event_type = CharField(max_length=64, null=True)
    order = ForeignKeyField(Order, null=True, on_delete="SET NULL", index=False)

    class Meta:
        table_name = "webhook_events"
        indexes = ((("gateway", "event_id"), True),)


class DiscountUse(BaseModel):
    """How many uses of a discount one customer holds (the per-customer limit's counter)."""

    id = AutoField()
    discount = ForeignKeyField(Discount, on_delete="CASCADE", index=False)  # the unique index leads with it
    user = ForeignKeyField(User, on_delete="CASCADE")
    used_count = IntegerField(default=0, constraints=[Check("used_count >= 0")])

    class Meta:
        table_name = "discount_uses"
        indexes = ((("discount", "user"), True),)


STOCK_REASONS = ("initial", "reservation", "release", "restock", "adjustment", "return")


class StockEntry(BaseModel):
    """The stock ledger: one row per change of a product's stock_quantity, written in the same
    statement as the change (models/stock/ledger.py), so the deltas of a product sum to its stock."""

    id = BigAutoField()
    product = ForeignKeyField(Product, on_delete="CASCADE", index=False)  # (product, id) below
    delta = IntegerField(constraints=[Check("delta <> 0")])
    stock_after = IntegerField(constraints=[Check("stock_after >= 0")])
    reason = CharField(
        max_length=16,
        constraints=[Check("reason IN ('initial', 'reservation', 'release', 'restock', 'adjustment', 'return')")],
    )
    order = ForeignKeyField(Order, null=True, on_delete="SET NULL")
    actor = CharField(max_length=80)  # "user:<id>", "task:<task name>", "system:<what>"
    note = CharField(max_length=500, null=True)
    at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "stock_ledger"
        indexes = ((("product", "id"), False),)


class Review(BaseModel):
    """A customer's review of a product they received; hidden ones are not published."""

    id = AutoField()
    product = ForeignKeyField(Product, on_delete="CASCADE", index=False)  # the unique index leads with it
    user = ForeignKeyField(User, on_delete="CASCADE")
    order = ForeignKeyField(Order, null=True, on_delete="SET NULL", index=False)  # the delivered order
    rating = SmallIntegerField(constraints=[Check("rating BETWEEN 1 AND 5")])
    title = CharField(max_length=200)
    body = TextField()
    author_name = CharField(max_length=100)  # snapshot of the customer's name when they wrote it
    hidden = BooleanField(default=False)
    created_at = DateTimeTZField(default=utcnow)
    updated_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "reviews"
        indexes = ((("product", "user"), True),)


# A product's published reviews, newest first (GET /products/{id}/reviews).
Review.add_index(
    Review.index(
        Review.product,
        Review.created_at,
        Review.id,
        where=(Review.hidden == False),  # noqa: E712
        name="reviews_published_by_product",
    )
)


class SeedRun(BaseModel):
    """Data loads that run once per database (the demo catalogue): a row says it was done, so a
    later start neither repeats it nor brings back what an administrator changed or deleted."""

    name = CharField(max_length=64, primary_key=True)
    applied_at = DateTimeTZField(default=utcnow)

    class Meta:
        table_name = "seed_runs"


ALL_MODELS: list[type[BaseModel]] = [
    User,
    Address,
    Product,
    Order,
    OrderItem,
    OrderEvent,
    Shipment,
    IdempotencyKey,
    EmailLog,
    WebhookEvent,
    UsedRefreshToken,
    Discount,
    DiscountUse,
    StockEntry,
    Review,
    SeedRun,
]

__all__ = [name for name in dir() if not name.startswith("_")] + ["SQL"]
