"""A faithful stand-in for Xero's identity, accounting and bank-feeds APIs.

Development, tests, demos and benchmarks meet Xero through this package (what stripe-mock is
to Stripe). It lives apart from the services: production never runs it, and no service
imports it. `xerosync sandbox` serves it; `create_app()` builds it in-process.
"""
