"""Transactional email over SMTP, sent at least once and recorded so a resend is a no-op."""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate

from models.infra.db import db
from models.infra.settings import get_settings
from models.mail.messages import render_low_stock, render_order
from models.tables import EmailLog, Order, OrderItem, Product, User, utcnow

log = logging.getLogger("shop.mail")
KINDS = ("confirmation", "shipped", "delivered", "cancelled", "refunded", "payment_failed", "expired")


class MailUnavailable(Exception):
    """The SMTP server could not be reached or answered 4xx: retry later."""


class MailRejected(Exception):
    """The SMTP server refused the message for good (5xx)."""


def _domain() -> str:
    return get_settings().mail_from.rpartition("@")[2] or "localhost"


def send_mail(to: str, subject: str, text: str, html: str | None, message_id: str) -> None:
    """Send one message; raises MailUnavailable (retry) or MailRejected (final)."""
    settings = get_settings()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, to, subject
    message["Message-ID"], message["Date"] = message_id, formatdate(localtime=False)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    if not settings.smtp_host:
        log.info("mail (no SMTP_HOST, not sent) to %s: %s", to, subject, extra={"message_id": message_id})
        return
    try:
        if settings.smtp_tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=10,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10)
        with smtp:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise MailUnavailable(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        raise MailRejected(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise MailUnavailable(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    log.info("mail sent to %s: %s", to, subject, extra={"message_id": message_id})


def _send_logged(order_id: int | None, kind: str, recipient: str, message_id: str,
                 subject: str, text: str, html: str | None) -> bool:
    """Record-then-send: a row marked sent means done. A crash between the send and the mark may
    send twice (at least once); the stable Message-ID lets mail clients drop the duplicate."""
    # One statement claims the row and counts the attempt; a row already sent is left alone.
    row_id, status = db.obj.execute_sql(
        "INSERT INTO email_log (order_id, kind, recipient, message_id, status, attempts, created_at) "
        "VALUES (%s, %s, %s, %s, 'pending', 1, now()) ON CONFLICT (message_id) DO UPDATE SET attempts = "
        "email_log.attempts + CASE WHEN email_log.status = 'sent' THEN 0 ELSE 1 END RETURNING id, status",
        (order_id, kind, recipient, message_id)).fetchone()
    if status == "sent":
        return False
    send_mail(recipient, subject, text, html, message_id)
    EmailLog.update(status="sent", sent_at=utcnow()).where(EmailLog.id == row_id).execute()
    return True


def send_order_email(order_id: int, kind: str) -> bool:
    """Send the order's email of this kind once; False when already sent or the order is gone.

    Raises MailUnavailable (retry), MailRejected, ValueError for an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    order = Order.get_or_none(Order.id == order_id)
    if order is None:
        log.warning("email %s for missing order %s skipped", kind, order_id)
        return False
    recipient = User.select(User.email).where(User.id == order.user_id).scalar()
    items = list(OrderItem.select().where(OrderItem.order == order.id).order_by(OrderItem.id))
    subject, text, html = render_order(kind, order, items)
    return _send_logged(order.id, kind, recipient, f"<{kind}.{order.order_number}@{_domain()}>", subject, text, html)


def send_low_stock_alert(product_id: int) -> bool:
    """Tell OPS_EMAIL that a product is at or under its threshold, at most once a day per product."""
    settings = get_settings()
    product = Product.get_or_none(Product.id == product_id)
    if not settings.ops_email or product is None:
        return False
    day = datetime.now(UTC).strftime("%Y%m%d")
    subject, text = render_low_stock(product.sku, product.name, product.stock_quantity, product.low_stock_threshold)
    return _send_logged(None, "low_stock", settings.ops_email, f"<low-stock.{product.id}.{day}@{_domain()}>",
                        subject, text, None)
