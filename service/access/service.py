"""Staff accounts and their keys: add, list, revoke, authenticate. No HTTP, no GraphQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import langcodes
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import generations
from service.access import keys
from service.access.models import ApiKey, KeyKind, Role, Staff
from service.access.principal import Permission, Principal, local_identity
from service.content.errors import BadInput, Conflict, NotFound, Unauthenticated
from service.content.models import utcnow
from service.content.reading import ReadScope
from service.content.repository import ContentRepository
from service.vetting import audit

# last_used_at is for people deciding which keys to revoke; minute precision saves a write
# on nearly every request
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class StaffKey:
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class PartnerKey:
    prefix: str
    partner: str
    markets: list[str]
    locales: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def _partner_key(row: ApiKey) -> PartnerKey:
    return PartnerKey(
        prefix=row.prefix,
        partner=row.partner or "",
        markets=list(row.markets or ()),
        locales=list(row.locales or ()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def canonical_locale(tag: str) -> str:
    if not langcodes.tag_is_valid(tag) or "_" in tag:
        raise BadInput(f"{tag!r} is not a BCP 47 locale such as 'en-US' or 'fr-FR'")
    return str(langcodes.standardize_tag(tag))


@dataclass(frozen=True)
class StaffMember:
    name: str
    roles: list[str]
    created_at: datetime
    revoked_at: datetime | None
    keys: list[StaffKey]


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the service writes is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=utcnow().tzinfo)
    return moment


class AccessService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _active_staff_count(self) -> int:
        rows = await self.session.scalars(select(Staff.id).where(Staff.revoked_at.is_(None)))
        return len(rows.all())

    async def add_staff(
        self, name: str, roles: list[Role], *, by: Principal | None
    ) -> tuple[StaffMember, str]:
        """A new staff member and their first key, whose secret is returned once."""
        name = name.strip()
        if not name:
            raise BadInput("a staff member needs a name")
        if not roles:
            raise BadInput("a staff member needs at least one role: " + ", ".join(Role))
        first = await self._active_staff_count() == 0
        if first and Role.ADMIN not in roles:
            raise BadInput(
                "the first staff member must have the admin role, or nobody could add the others"
            )
        if not first:
            if by is None:
                raise Unauthenticated("adding staff needs an admin's key (CONTENT_API_KEY)")
            by.require(Permission.MANAGE_STAFF)
        if await self.session.scalar(select(Staff.id).where(Staff.name == name)) is not None:
            raise Conflict(f"a staff member named {name!r} exists already")
        staff = Staff(name=name, roles=sorted(set(roles)), created_at=utcnow())
        self.session.add(staff)
        await self.session.flush()
        creator = by.name if by is not None else "first admin (local set-up)"
        secret = await self._issue_key(staff, creator)
        await audit.record(
            self.session,
            [audit.event(by or creator, "staff.add", after={"name": name, "roles": staff.roles})],
        )
        return await self._member(staff), secret

    async def issue_key(self, name: str, *, by: Principal) -> str:
        """A further key for a staff member (to rotate one): admins, or the member themself."""
        staff = await self._staff(name)
        if staff.name != by.name:
            by.require(Permission.MANAGE_STAFF)
        secret = await self._issue_key(staff, by.name)
        await audit.record(
            self.session,
            [audit.event(by, "staff.key", after={"name": name, "prefix": keys.prefix_of(secret)})],
        )
        return secret

    async def _issue_key(self, staff: Staff, creator: str) -> str:
        new = keys.generate(KeyKind.STAFF)
        self.session.add(
            ApiKey(
                prefix=new.prefix,
                secret_hash=new.secret_hash,
                kind=KeyKind.STAFF.value,
                staff_id=staff.id,
                created_by=creator,
                created_at=utcnow(),
            )
        )
        await self.session.flush()
        return new.secret

    async def _staff(self, name: str) -> Staff:
        staff = await self.session.scalar(select(Staff).where(Staff.name == name))
        if staff is None:
            raise NotFound(f"no staff member named {name!r}")
        return staff

    async def _member(self, staff: Staff) -> StaffMember:
        rows = await self.session.scalars(
            select(ApiKey).where(ApiKey.staff_id == staff.id).order_by(ApiKey.id)
        )
        return StaffMember(
            name=staff.name,
            roles=list(staff.roles),
            created_at=staff.created_at,
            revoked_at=staff.revoked_at,
            keys=[
                StaffKey(key.prefix, key.created_at, key.last_used_at, key.revoked_at)
                for key in rows
            ],
        )

    async def list_staff(self) -> list[StaffMember]:
        rows = await self.session.scalars(select(Staff).order_by(Staff.name))
        return [await self._member(staff) for staff in rows.all()]

    async def revoke(self, name_or_prefix: str, *, by: Principal) -> str:
        """Revoke one key (by its prefix) or a staff member and all their keys (by name)."""
        by.require(Permission.MANAGE_STAFF)
        now = utcnow()
        # keys this process holds as valid are checked again as soon as this commits
        generations.KEYS.after_commit(self.session)
        key = await self.session.scalar(select(ApiKey).where(ApiKey.prefix == name_or_prefix))
        if key is not None:
            if key.revoked_at is not None:
                raise Conflict(f"key {key.prefix} was revoked already")
            key.revoked_at = now
            what = f"key {key.prefix}"
        else:
            staff = await self._staff(name_or_prefix)
            if staff.revoked_at is not None:
                raise Conflict(f"{staff.name} was revoked already")
            staff.revoked_at = now
            await self.session.execute(
                update(ApiKey)
                .where(ApiKey.staff_id == staff.id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            what = f"{staff.name} and their keys"
        await audit.record(self.session, [audit.event(by, "staff.revoke", after={"revoked": what})])
        return what

    async def create_partner_key(
        self,
        partner: str,
        *,
        markets: list[str],
        locales: list[str],
        expires_at: datetime | None,
        by: Principal,
    ) -> tuple[PartnerKey, str]:
        """A partner key scoped to markets and locales; its secret is returned once."""
        by.require(Permission.MANAGE_STAFF)
        partner = partner.strip()
        if not partner:
            raise BadInput("--partner must name the partner the key is for")
        if not markets:
            raise BadInput("a partner key needs at least one market (--markets US,GB)")
        if not locales:
            raise BadInput("a partner key needs at least one locale (--locales en-US,fr-FR)")
        markets = await ContentRepository(self.session).require_markets(markets)
        canonical = [canonical_locale(locale) for locale in locales]
        now = utcnow()
        expiry = _aware(expires_at)
        if expiry is not None and expiry <= now:
            raise BadInput(f"--expires {expiry:%Y-%m-%d} is in the past")
        new = keys.generate(KeyKind.PARTNER)
        row = ApiKey(
            prefix=new.prefix,
            secret_hash=new.secret_hash,
            kind=KeyKind.PARTNER.value,
            partner=partner,
            markets=markets,
            locales=list(dict.fromkeys(canonical)),
            created_by=by.name,
            created_at=now,
            expires_at=expiry,
        )
        self.session.add(row)
        await self.session.flush()
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    "key.create",
                    after={
                        "partner": partner,
                        "prefix": new.prefix,
                        "markets": row.markets,
                        "locales": row.locales,
                    },
                )
            ],
        )
        return _partner_key(row), new.secret

    async def partner_keys(self) -> list[PartnerKey]:
        rows = await self.session.scalars(
            select(ApiKey).where(ApiKey.kind == KeyKind.PARTNER.value).order_by(ApiKey.id)
        )
        return [_partner_key(row) for row in rows]

    async def authenticate(self, secret: str) -> Principal:
        """The principal a key acts for; every refusal says why, never which part matched."""
        try:
            kind, prefix = keys.parse(secret)
        except keys.MalformedKey as exc:
            raise Unauthenticated(str(exc)) from exc
        key = await self.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if key is None or not keys.matches(secret, key.secret_hash):
            raise Unauthenticated(f"unknown API key {prefix}...")
        now = utcnow()
        if key.revoked_at is not None:
            raise Unauthenticated(f"API key {prefix}... has been revoked")
        expires = _aware(key.expires_at)
        if expires is not None and expires <= now:
            raise Unauthenticated(f"API key {prefix}... expired on {expires:%Y-%m-%d}")
        last = _aware(key.last_used_at)
        if last is None or now - last >= LAST_USED_PRECISION:
            key.last_used_at = now
        if kind == KeyKind.PARTNER:
            return Principal(
                name=key.partner or "partner",
                roles=frozenset(),
                kind=KeyKind.PARTNER,
                key_prefix=key.prefix,
                markets=tuple(key.markets or ()),
                locales=tuple(key.locales or ()),
                expires_at=expires,
            )
        if key.staff_id is None:
            raise Unauthenticated(f"API key {prefix}... belongs to nobody")
        staff = await self.session.get(Staff, key.staff_id)
        if staff is None or staff.revoked_at is not None:
            raise Unauthenticated(f"API key {prefix}... belongs to a revoked staff member")
        return Principal(
            name=staff.name,
            roles=frozenset(Role(role) for role in staff.roles),
            kind=KeyKind.STAFF,
            key_prefix=key.prefix,
            expires_at=expires,
        )


async def caller_for(
    session: AsyncSession, authorization: str | None, *, production: bool
) -> Principal | None:
    """Who calls over HTTP, from the Authorization header: the key's staff member or partner,
    checked on the request's own session, so a revoked key is refused at once on every
    instance; None for an anonymous caller in development. Production needs a valid key."""
    if authorization is None:
        if production:
            raise Unauthenticated(
                "this API needs a key: send the header Authorization: Bearer <key>"
            )
        return None
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("send the key as Authorization: Bearer <key>")
    return await AccessService(session).authenticate(key.strip())


def read_scope(caller: Principal | None) -> ReadScope | None:
    """What the caller may read: a partner key's markets and locales; anything for staff and,
    in development, for anonymous callers."""
    if caller is None or not caller.is_partner:
        return None
    return ReadScope(caller.name, caller.markets or (), caller.locales or ())


async def acting_principal(
    session: AsyncSession, key: str | None, *, production: bool, local_name: str | None = None
) -> Principal:
    """Who a write acts for: the key's staff member; in development without a key, the local
    identity; in production without a key, nobody (refused)."""
    if key:
        return await AccessService(session).authenticate(key)
    if production:
        raise Unauthenticated(
            "production refuses anonymous writes: give your staff key with --key or "
            "CONTENT_API_KEY (an admin creates one with `contentapi staff add`)"
        )
    return local_identity(local_name)
