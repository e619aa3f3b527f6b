"""Client of the Claude Compliance API (plain Python; see client.py for behaviour, ratelimit.py for the budget)."""

from pipeline.compliance_api.client import (
    ACTIVITIES_PATH,
    ANTHROPIC_VERSION,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    MAX_RETRIES_ENV,
    RPM_ENV,
    TIMEOUT_ENV,
    ActivityPage,
    ActivityPageIterator,
    APIKey,
    APIResponse,
    ChatPage,
    ChatPageIterator,
    ComplianceClient,
    Page,
    TraversalSummary,
    format_timestamp,
)
from pipeline.compliance_api.errors import (
    API_KEY_ENV,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ComplianceAPIError,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RetriesExhaustedError,
    ServerError,
    TransportError,
    UnexpectedStatusError,
)
from pipeline.compliance_api.ratelimit import RequestBudget, shared_budget

__all__ = [
    "ACTIVITIES_PATH", "ANTHROPIC_VERSION", "API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "MAX_RETRIES_ENV",
    "RPM_ENV", "TIMEOUT_ENV",
    "APIKey", "APIResponse", "ActivityPage", "ActivityPageIterator", "ChatPage", "ChatPageIterator",
    "ComplianceClient", "Page", "TraversalSummary", "format_timestamp",
    "APIStatusError", "AuthenticationError", "BadRequestError", "ComplianceAPIError", "ConfigurationError",
    "ConflictError", "InvalidResponseError", "NotFoundError", "PaginationError", "PermissionDeniedError",
    "RateLimitError", "RetriesExhaustedError", "ServerError", "TransportError", "UnexpectedStatusError",
    "RequestBudget", "shared_budget",
]
