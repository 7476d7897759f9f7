"""Local fakes of external services: real HTTP servers on 127.0.0.1 speaking each one's wire
protocol, so the production adapters run unchanged against them: the payment gateways (Stripe's
and TossPayments', for the `stripe` SDK and `requests`) and the Sweet Tracker parcel-tracking API."""
