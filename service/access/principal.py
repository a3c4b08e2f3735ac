"""Who is acting, and what each role may do: every permission check in the service reads this."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from service.access.models import KeyKind, Role
from service.content.errors import Forbidden


class Permission(StrEnum):
    WRITE = "write content (seed new revisions)"
    SUBMIT = "submit revisions for review"
    REVIEW = "approve or reject revisions"
    PUBLISH = "publish, withdraw and roll back"
    WAIVE = "waive compliance findings"
    MANAGE_STAFF = "manage staff and keys"
    READ_AUDIT = "read the audit log"
    READ_DRAFTS = "read unpublished content, history and the review queue"
    MANAGE_WEBHOOKS = "manage partners' webhooks"


GRANTED_BY: dict[Permission, frozenset[Role]] = {
    Permission.WRITE: frozenset({Role.EDITOR}),
    Permission.SUBMIT: frozenset({Role.EDITOR}),
    Permission.REVIEW: frozenset({Role.REVIEWER}),
    Permission.PUBLISH: frozenset({Role.PUBLISHER}),
    Permission.WAIVE: frozenset({Role.ADMIN}),
    Permission.MANAGE_STAFF: frozenset({Role.ADMIN}),
    Permission.READ_AUDIT: frozenset({Role.ADMIN}),
    Permission.READ_DRAFTS: frozenset(Role),
    Permission.MANAGE_WEBHOOKS: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Principal:
    """The caller: a staff member or a partner by key, or the local identity on a development
    machine. A partner has no role; its key reads published content of its markets and
    locales (the first locale is its default)."""

    name: str
    roles: frozenset[Role]
    kind: KeyKind | None = KeyKind.STAFF  # None for the local development identity
    key_prefix: str | None = None
    markets: tuple[str, ...] | None = None
    locales: tuple[str, ...] | None = None
    # when the key stops working; None for a key without an end
    expires_at: datetime | None = None

    @property
    def is_partner(self) -> bool:
        return self.kind == KeyKind.PARTNER

    @property
    def is_local(self) -> bool:
        return self.kind is None

    def can(self, permission: Permission) -> bool:
        return bool(self.roles & GRANTED_BY[permission])

    def require(self, permission: Permission) -> None:
        if not self.can(permission) and self.is_partner:
            raise Forbidden(
                f"a partner key ({self.name}) reads published content only: to "
                f"{permission.value} you need a staff key"
            )
        if not self.can(permission):
            needed = " or ".join(sorted(role.value for role in GRANTED_BY[permission]))
            held = ", ".join(sorted(role.value for role in self.roles)) or "no role"
            raise Forbidden(
                f"{self.name} may not {permission.value}: that needs the {needed} role (has {held})"
            )


def local_identity(name: str | None = None) -> Principal:
    """On a development machine, the person at the keyboard, with every role.

    Named after the operating-system user unless a name is given (CONTENT_API_ACTOR, --by),
    the same name `seed` records as the author, so four eyes holds on a laptop too: nobody
    approves their own text.
    """
    return Principal(name=name or getpass.getuser(), roles=frozenset(Role), kind=None)
