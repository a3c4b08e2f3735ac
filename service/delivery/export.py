"""The static export: a bundle written to files, byte for byte what the HTTP route serves."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.content.operations import in_transaction
from service.content.reading import Reader
from service.delivery.bundles import COLLECTIONS, Bundle, build_bundle


async def read_bundle(
    settings: Settings, release: int | None, locale: str, market: str | None
) -> Bundle:
    """The bundle of `release` (the latest when None), read in one transaction."""

    async def work(session: AsyncSession) -> Bundle:
        reader = Reader(session, default_locale=settings.default_locale)
        locales = reader.locales(locale)
        view = await reader.require_release(release)
        return await build_bundle(reader, view, reader.audience(view, locales.requested, market))

    return await in_transaction(settings, work)


def write_export(bundle: Bundle, out: Path, *, entries: bool) -> list[Path]:
    """`out/NAME.json`, and with `entries` one file per item in `out/NAME/<collection>/KEY.json`,
    where NAME is the locale (`fr-FR`) or locale and market (`fr-FR.US`). Files of a former
    export that this bundle no longer holds are removed from those folders, so the folder is
    the bundle; each file is replaced whole, never left half-written."""
    name = bundle.key.name
    written = [_write(out / f"{name}.json", bundle.body)]
    if entries:
        keep: dict[Path, set[str]] = {out / name / c: set() for c in COLLECTIONS.values()}
        for collection, key, body in bundle.entries():
            path = _write(out / name / collection / f"{key}.json", body)
            keep[path.parent].add(path.name)
            written.append(path)
        for folder, names in keep.items():
            if folder.is_dir():
                for stale in folder.glob("*.json"):
                    if stale.name not in names:
                        stale.unlink()
    return written


def _write(path: Path, body: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(body)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
