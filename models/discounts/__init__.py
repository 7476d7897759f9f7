"""Discount codes as data: the rules a code must meet to price an order (rules.py), the claim of one
use when the order reserves stock and its release (redemption.py), and staff's CRUD (admin.py)."""
