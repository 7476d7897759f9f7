"""Read-only reports for staff (the admin dashboard)."""
