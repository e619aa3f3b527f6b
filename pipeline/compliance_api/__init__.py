"""Client of the Claude Compliance API (plain Python, httpx), by concern:

key.py (the API key: masked, from the environment, added per request), transport.py (HTTP session, retries, backoff,
typed errors, validated bodies), ratelimit.py (the process-wide request budget), pages.py (page models and the cursor
iterator), endpoints.py (`ComplianceClient`: activities, chats, messages, organizations, users), errors.py.
"""

from pipeline.compliance_api.endpoints import ACTIVITIES_PATH, ComplianceClient, format_timestamp
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
from pipeline.compliance_api.key import APIKey
from pipeline.compliance_api.pages import (
    ActivityPage,
    ActivityPageIterator,
    ChatPage,
    ChatPageIterator,
    Page,
    TraversalSummary,
)
from pipeline.compliance_api.ratelimit import RequestBudget, shared_budget
from pipeline.compliance_api.transport import (
    ANTHROPIC_VERSION,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    MAX_RETRIES_ENV,
    RPM_ENV,
    TIMEOUT_ENV,
    APIResponse,
)

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
