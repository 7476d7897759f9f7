"""Stock on hand and its ledger: every change of a product's stock_quantity is a row."""
