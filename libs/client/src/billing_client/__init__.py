"""Python client of the billing platform's public API (API.md).

``BillingClient`` (sync) and ``AsyncBillingClient`` (async) share the models, the retry policy, the
token cache and the errors; ``billing_client.webhooks.verify`` checks the webhooks the platform sends.
"""

from billing_client import webhooks
from billing_client.async_client import AsyncBillingClient
from billing_client.client import BillingClient
from billing_client.errors import (
    APIError,
    AuthenticationError,
    BillingError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    PermissionError,
    RateLimitError,
    ServiceUnavailableError,
    ValidationError,
    WebhookVerificationError,
)
from billing_client.models import (
    Customer,
    DeletedObject,
    DeliveryAttempt,
    Event,
    FieldError,
    Payment,
    PaymentAttempt,
    PaymentStatus,
    Problem,
    Refund,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookReplay,
)
from billing_client.pagination import AsyncPager, Page, Pager
from billing_client.retries import RetryPolicy
from billing_client.version import __version__

__all__ = [
    "APIError",
    "AsyncBillingClient",
    "AsyncPager",
    "AuthenticationError",
    "BillingClient",
    "BillingError",
    "ConflictError",
    "Customer",
    "DeletedObject",
    "DeliveryAttempt",
    "Event",
    "FieldError",
    "NetworkError",
    "NotFoundError",
    "Page",
    "Pager",
    "Payment",
    "PaymentAttempt",
    "PaymentStatus",
    "PermissionDeniedError",
    "PermissionError",
    "Problem",
    "RateLimitError",
    "Refund",
    "RetryPolicy",
    "ServiceUnavailableError",
    "ValidationError",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookReplay",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]
