"""The response cache: answers to persisted GETs, by their ETag, in process (an LRU bounded
by bytes) and, with CONTENT_API_REDIS_URL, in Redis, shared by every instance.

An answer is stored under a key that already names everything it depends on (the release,
the document, its variables, the caller's scope and the media type), so an entry is never
invalidated, only evicted: a publish changes the keys "latest" questions map to.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.delivery.compression import compress

logger = logging.getLogger("service.delivery.cache")

# seconds a shared entry lives in Redis; answers to pinned releases live longer
SHARED_TTL_LATEST = 24 * 3600
SHARED_TTL_PINNED = 30 * 24 * 3600
# after Redis failed, it is left alone this long: answers are computed, not delayed
SHARED_BACKOFF = 5.0
SHARED_PREFIX = "contentapi:answer:"


@dataclass(slots=True)
class Answer:
    """One stored answer: the body as computed, its media type and cache tags, and its
    compressed forms, each made the first time a client asks for it."""

    body: bytes
    content_type: str
    tags: str
    pinned: bool
    coded: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(value) for value in self.coded.values()) + 200

    def encoded(self, coding: str) -> bytes:
        found = self.coded.get(coding)
        if found is None:
            found = self.coded[coding] = compress(self.body, coding)
        return found

    def dump(self) -> bytes:
        head = json.dumps(
            {"content_type": self.content_type, "tags": self.tags, "pinned": self.pinned}
        ).encode()
        return head + b"\n" + self.body

    @classmethod
    def load(cls, data: bytes) -> Answer:
        head, _, body = data.partition(b"\n")
        meta = json.loads(head)
        return cls(body, str(meta["content_type"]), str(meta["tags"]), bool(meta["pinned"]))


class LocalCache:
    """An LRU of answers bounded by their bytes (bodies and compressed forms)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> Answer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def put(self, key: str, answer: Answer) -> None:
        if answer.size > self.max_bytes // 4:
            return  # one answer never crowds out the rest
        previous = self._answers.pop(key, None)
        if previous is not None:
            self.bytes -= previous.size
        self._answers[key] = answer
        self.bytes += answer.size
        self._trim()

    def grew(self, answer: Answer, added: int) -> None:
        """An answer held here gained a compressed form of `added` bytes."""
        self.bytes += added
        self._trim()

    def _trim(self) -> None:
        while self.bytes > self.max_bytes and self._answers:
            _, evicted = self._answers.popitem(last=False)
            self.bytes -= evicted.size


class SharedCache:
    """Answers in Redis. Redis failing never fails a request: the answer is computed instead,
    and Redis is left alone for a few seconds."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._resting_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._resting_until

    def _failed(self, exc: Exception) -> None:
        logger.warning("Redis did not answer (%s): answers are computed meanwhile", exc)
        self._resting_until = time.monotonic() + SHARED_BACKOFF

    async def get(self, key: str) -> Answer | None:
        if not self._available():
            return None
        try:
            data = await self.redis.get(SHARED_PREFIX + key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        return Answer.load(data) if isinstance(data, bytes) else None

    async def put(self, key: str, answer: Answer) -> None:
        if not self._available():
            return
        ttl = SHARED_TTL_PINNED if answer.pinned else SHARED_TTL_LATEST
        try:
            await self.redis.set(SHARED_PREFIX + key, answer.dump(), ex=ttl)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def close(self) -> None:
        await self.redis.aclose()
