"""Settings from the environment (prefix CONTENT_API_), validated once at start-up."""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from limits import parse
from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "content.db"
MIN_CONSOLE_SECRET = 32
# who may read /metrics in production unless CONTENT_API_METRICS_ALLOW says otherwise
LOOPBACK = [ip_network("127.0.0.0/8"), ip_network("::1/128")]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything the service reads from its environment, in one place."""

    model_config = SettingsConfigDict(env_prefix="CONTENT_API_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL: sqlite:///path or postgresql://user@host/db",
    )
    seed_path: Path = Field(default=PROJECT_ROOT / "seed")
    default_locale: str = "en-US"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # server processes of one instance (`contentapi serve --workers` overrides)
    workers: int = Field(default=1, ge=1, le=64)
    # seconds a SIGTERM waits for requests in flight before the rest are cut off
    shutdown_timeout: float = Field(default=20.0, gt=0)
    # addresses of the load balancers or proxies whose X-Forwarded-For and -Proto are believed
    # (comma-separated, or * behind a private network only they can reach)
    forwarded_allow_ips: str = "127.0.0.1"
    log_sql: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # json: one object a line, for a log collector; console: aligned text, for a terminal
    log_format: Literal["json", "console"] = "json"
    # PostgreSQL: seconds to connect, to run one statement and to wait for a pooled
    # connection; past them a request is answered 503 instead of hanging
    database_timeout: float = Field(default=5.0, ge=1, le=600)
    # seconds /readyz waits for the database before reporting not ready
    readiness_timeout: float = Field(default=2.0, gt=0, le=60)
    # origins whose pages may call the API from a browser: any ("*") in development; in
    # production only those listed, each as scheme://host[:port]
    cors_origins: list[str] | None = None
    # clients (networks) that may read /metrics: any in development, loopback in production
    metrics_allow: list[IPvAnyNetwork] | None = None
    # development only: seconds each GraphQL request waits before it runs, to rehearse slow
    # answers (timeouts, draining on shutdown)
    request_delay: float = Field(default=0.0, ge=0, le=60)
    # limits on what one GraphQL document may ask for
    graphql_max_depth: int = Field(default=10, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2_000, ge=100)
    # how much one operation may ask for: each field 1, a list's fields times its length (its
    # `first`, else its page size or an assumed length); schema/operations/ costs at most ~8,300
    graphql_max_cost: int = Field(default=25_000, ge=100)
    # operations in one request sent as a JSON array; 0 turns batching off
    graphql_max_batch: int = Field(default=0, ge=0, le=50)
    # what one request may send: a POST body, a GET query string (CDNs refuse URLs past ~8 KiB)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_query_string_bytes: int = Field(default=8 * 1024, ge=256)
    # how long an approval holds before the revision is due for re-review
    review_interval_days: int = Field(default=365, ge=1)
    # development only: the name the local identity acts under (default: the OS user)
    actor: str | None = None
    # webhooks: the delivery worker, what it may call, how long it waits and how it retries
    webhook_worker: bool = True  # run the delivery worker inside `serve`
    # development only: let webhooks reach loopback, private and link-local addresses
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(default=10.0, gt=0, description="seconds, per delivery")
    webhook_retry_base: float = Field(default=30.0, gt=0, description="seconds, first retry")
    webhook_retry_max: float = Field(default=3_600.0, gt=0, description="seconds between retries")
    # how long a delivery is retried before it is marked failed
    webhook_retry_window: float = Field(default=86_400.0, gt=0, description="seconds")
    # how long a worker's claim on a delivery holds; a crashed worker's claims expire after it
    webhook_lease: float = Field(default=60.0, gt=0, description="seconds")
    webhook_poll_interval: float = Field(default=2.0, gt=0, description="seconds when idle")
    webhook_batch: int = Field(default=10, ge=1, le=100)
    # partner delivery: persisted queries, HTTP caching, the response cache and rate limits
    # Redis shared by every instance (response cache, rate limits), e.g. redis://127.0.0.1:6379/0;
    # without one each process keeps its own
    redis_url: str | None = None
    # automatic persisted queries: a client may register a document by its SHA-256 and then
    # send only the hash
    persisted_queries: bool = True
    # only documents registered with `contentapi documents add` (or in schema/operations/)
    # run for partners and anonymous callers; staff keys may still send any document
    trusted_documents: bool = False
    # bytes of responses each process keeps (LRU); 0 turns the response cache off
    response_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # bytes (estimated) of completed items of held releases each process keeps for answers
    # not cached whole, such as product pages never asked before; 0 turns it off
    fragment_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # seconds, for answers that follow the latest release (RFC 9111 and RFC 5861); answers
    # pinned to a release are immutable
    cache_max_age: int = Field(default=60, ge=0)
    cache_stale_while_revalidate: int = Field(default=300, ge=0)
    cache_stale_if_error: int = Field(default=86_400, ge=0)
    # seconds between two checks of the latest release and of revoked keys (every instance
    # sees a publish or a revocation within this)
    freshness_interval: float = Field(default=0.25, gt=0, le=1)
    # responses of at least this many bytes are compressed when the client accepts gzip or br
    compression_min_bytes: int = Field(default=1024, ge=0)
    # per key (or per client address without one), in cost units: an executed operation costs
    # 10, an answer from the cache 2, a 304 1; None turns the limit off
    rate_limit: str | None = "6000/minute"
    # the reviewers' console at /console: on by default in development, off in production
    console_enabled: bool | None = None
    # signs and encrypts the console's session cookies; production needs one (every instance
    # the same), development makes a random one per process
    console_secret: SecretStr | None = Field(default=None, validate_default=True)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use sqlite:/// or postgresql://"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _cors_allow_list(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        if "*" in value:
            if info.data.get("env") == Environment.PRODUCTION:
                raise ValueError(
                    "'*' is for development only: in production list the partners' origins, "
                    'e.g. ["https://shop.example.com"]'
                )
            return ["*"]
        for origin in value:
            parts = urlsplit(origin)
            if (
                parts.scheme not in {"http", "https"}
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or parts.username is not None
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], with no path, "
                    "e.g. https://shop.example.com"
                )
        return [origin.lower() for origin in value]

    @field_validator("request_delay")
    @classmethod
    def _delay_in_development_only(cls, value: float, info: ValidationInfo) -> float:
        if value and info.data.get("env") == Environment.PRODUCTION:
            raise ValueError("is for development only: production never delays an answer")
        return value

    @field_validator("webhook_allow_private")
    @classmethod
    def _private_addresses_in_development_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("env") == Environment.PRODUCTION:
            raise ValueError(
                "is for development only: in production webhooks reach public addresses only"
            )
        return value

    @field_validator("webhook_lease")
    @classmethod
    def _lease_outlasts_a_delivery(cls, value: float, info: ValidationInfo) -> float:
        # a claim that expired while its delivery is still in flight would be sent twice
        timeout = info.data.get("webhook_timeout")
        if timeout is not None and value <= timeout:
            raise ValueError(
                f"must be longer than CONTENT_API_WEBHOOK_TIMEOUT ({timeout:g} s), or a "
                "delivery still in flight could be claimed and sent again"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme = urlsplit(value).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(
                f"not a Redis URL: {value!r}; write redis://host:port/db, e.g. "
                "redis://127.0.0.1:6379/0"
            )
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in {"", "off", "none"}:
            return None
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(
                f"not a rate: {value!r}; write an amount per period, e.g. 6000/minute"
            ) from exc
        return value

    @field_validator("console_secret")
    @classmethod
    def _console_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        production = info.data.get("env") == Environment.PRODUCTION
        enabled = info.data.get("console_enabled")
        if value is None:
            if production and enabled:
                raise ValueError(
                    "the console needs a secret in production (at least "
                    f"{MIN_CONSOLE_SECRET} random characters, the same on every instance), or "
                    "set CONTENT_API_CONSOLE_ENABLED=false"
                )
            return None
        if len(value.get_secret_value()) < MIN_CONSOLE_SECRET:
            raise ValueError(f"use at least {MIN_CONSOLE_SECRET} random characters")
        return value

    @property
    def is_production(self) -> bool:
        return self.env == Environment.PRODUCTION

    @property
    def allowed_origins(self) -> list[str]:
        if self.cors_origins is not None:
            return self.cors_origins
        return [] if self.is_production else ["*"]

    @property
    def metrics_networks(self) -> list[IPv4Network | IPv6Network] | None:
        """Who may read /metrics; None for anyone."""
        if self.metrics_allow is not None:
            return self.metrics_allow
        return LOOPBACK if self.is_production else None

    @property
    def console_on(self) -> bool:
        if self.console_enabled is None:
            return not self.is_production
        return self.console_enabled
