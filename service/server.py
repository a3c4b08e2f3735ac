"""The HTTP server's protocol: uvicorn's httptools protocol, which also writes headers an
application has checked and encoded once (`PreparedHeaders`) without checking them again.

uvicorn checks every header of every response against two patterns, lowercases its name and
compares it with the framing headers before writing it. A learned answer of the fast lane
(service/delivery/fastlane.py) repeats the same dozen headers thousands of times a second, so
they are checked once, when it is learned, and kept encoded. Every other response, and every
header sent beside a prepared block (the date, the request id), goes through uvicorn's checks.

`PreparedHeaders` is also a plain list of (name, value) pairs: under any other ASGI server it is
sent as ordinary headers. The byte-for-byte equality of both ways is tested
(tests/test_server.py), which also tells when an upgrade of uvicorn changes what is copied here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

Header = tuple[bytes, bytes]

# decided for each response by the server, never kept in a prepared block
_FRAMING = frozenset({b"transfer-encoding", b"connection"})


def checked(name: bytes, value: bytes) -> Header:
    """A header as uvicorn would write it, or ValueError saying why it would refuse it."""
    if HEADER_RE.search(name):
        raise ValueError(f"invalid HTTP header name: {name!r}")
    if HEADER_VALUE_RE.search(value):
        raise ValueError(f"invalid value of the HTTP header {name!r}")
    return name.lower(), value


class HeaderBlock:
    """Response headers checked and encoded once, to be sent many times: no framing header
    (Transfer-Encoding, Connection) but the Content-Length, which is read once too."""

    __slots__ = ("content_length", "encoded", "pairs")

    def __init__(self, headers: Iterable[Header]) -> None:
        self.pairs: tuple[Header, ...] = tuple(headers)
        self.content_length: int | None = None
        encoded = []
        for name, value in self.pairs:
            name, value = checked(name, value)
            if name in _FRAMING:
                raise ValueError(f"{name.decode()} is decided per response, not prepared")
            if name == b"content-length":
                if not value.isdigit():
                    raise ValueError(f"not a Content-Length: {value!r}")
                if self.content_length is None:
                    self.content_length = int(value)
            encoded.append(b"%s: %s\r\n" % (name, value))
        self.encoded = b"".join(encoded)


class PreparedHeaders(list[Header]):
    """A response's headers: a prepared block and the few of this response alone (checked
    when written). As a list, they are all the pairs, block first, as any ASGI server takes
    them."""

    __slots__ = ("block", "extra")

    def __init__(self, block: HeaderBlock, extra: Sequence[Header] = ()) -> None:
        super().__init__(block.pairs)
        self.extend(extra)
        self.block = block
        self.extra = extra


class _Cycle(RequestResponseCycle):
    """uvicorn's request-response cycle; the start of a response with prepared headers is
    written here, as uvicorn writes it (0.54, `RequestResponseCycle.send`) but for the block."""

    async def send(self, message: ASGISendEvent) -> None:
        headers = message.get("headers")
        if type(headers) is not PreparedHeaders or self.response_started:
            await super().send(message)
            return
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if message["type"] != "http.response.start":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
            )
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(self.scope),
                self.scope["method"],
                get_path_with_query_string(self.scope),
                self.scope["http_version"],
                status_code,
            )
        content = [STATUS_LINE[status_code]]
        closes = self._write(content, self.default_headers)
        block = headers.block
        if block.content_length is not None and self.chunked_encoding is None:
            self.expected_content_length = block.content_length
            self.chunked_encoding = False
        content.append(block.encoded)
        closes = self._write(content, headers.extra) or closes
        if not self.keep_alive and not closes:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))

    def _write(self, content: list[bytes], headers: Iterable[Header]) -> bool:
        """Check and add headers as uvicorn does; whether one of them closes the connection."""
        closes = False
        for raw_name, raw_value in headers:
            try:
                name, value = checked(raw_name, raw_value)
            except ValueError as exc:
                raise RuntimeError(f"Invalid HTTP header: {exc}") from None
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    closes = True
            content.extend((name, b": ", value, b"\r\n"))
        return closes


class ContentHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose cycles write prepared headers as they are."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn makes the cycle itself (on_headers_complete); it only gains a method here
        cycle.__class__ = _Cycle
        super()._start_asgi_task(cycle, app)
