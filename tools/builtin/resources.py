"""What the built-in tools share in one worker, built once at its start."""

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Self

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from keel.errors import KeelUserError
from keel.settings import Settings
from tools.registry import ToolContext
from tools.retrieval.service import RetrievalService

__all__ = ["Resources"]


@dataclass(frozen=True)
class Resources:
    """The clients and limits of the built-in tools; tools read it as `context.resources`."""

    sessions: async_sessionmaker[AsyncSession]
    """The SQL database (`keel.db.session_factory`): `create_ticket` writes to it."""
    retrieval: RetrievalService | None
    """What `search_knowledge` searches (its `quillpad` collection); None: no search."""
    http_allow_hosts: frozenset[str]
    """Host names `http_get` may fetch: lower-case ASCII (IDNA), compared exactly."""
    http_allow_private: bool
    """Let `http_get` reach loopback, link-local, private and other non-public addresses."""
    http_timeout_s: float = 10
    """One `http_get` call's limit, redirects included."""
    http_max_bytes: int = 1_000_000
    """`http_get` stops reading a body here and says it truncated it."""
    http_allow_networks: frozenset[IPv4Network | IPv6Network] = frozenset()
    """Non-public networks `http_get` may reach without `http_allow_private` (an intranet)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        retrieval: RetrievalService | None = None,
    ) -> Self:
        """The resources a worker configured by `settings` gives its tools.

        Args:
            settings: The `http_get_*` settings.
            sessions: Sessions of the worker's database.
            retrieval: The worker's retrieval service, for `search_knowledge`.
        """
        hosts = frozenset(h.lower().rstrip(".") for h in settings.http_get_allow_hosts)
        return cls(
            sessions=sessions,
            retrieval=retrieval,
            http_allow_hosts=hosts,
            http_allow_private=settings.http_get_allow_private,
            http_max_bytes=settings.http_get_max_bytes,
        )

    @classmethod
    def of(cls, context: ToolContext) -> Self:
        """The resources a tool call carries; a worker that passed none is misconfigured.

        Raises:
            KeelUserError: `context.resources` is not a `Resources`.
        """
        if not isinstance(context.resources, cls):
            raise KeelUserError(
                "the built-in tools need `tools.builtin.Resources`: pass "
                "`Resources.from_settings(...)` to `ToolRegistry.activities`"
            )
        return context.resources
