"""Product reviews by customers who received the product, and the products' rating counters."""
