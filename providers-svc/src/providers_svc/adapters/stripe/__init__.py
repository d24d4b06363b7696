"""Stripe: the only package that imports ``stripe`` (the adapter, its client, webhook signatures)."""

from providers_svc.adapters.stripe.adapter import NAME, StripeAdapter, StripeProvider

__all__ = ["NAME", "StripeAdapter", "StripeProvider"]
