"""Local fakes of the payment gateways: real HTTP servers speaking Stripe's and TossPayments' wire
protocols, so the production adapters (the `stripe` SDK, `requests`) run unchanged against them."""
