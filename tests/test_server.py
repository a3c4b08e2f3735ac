"""The server's protocol (service/server.py): a response whose headers were prepared once reaches
the client byte for byte as uvicorn writes the same headers given as a plain list."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from service.server import ContentHttpProtocol, HeaderBlock, PreparedHeaders
from tests.helpers import free_port

BODY = b'{"data":{"page":"' + b"x" * 3000 + b'"}}'
BLOCK = [
    (b"content-type", b"application/graphql-response+json; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode()),
    (b"etag", b'"AhBkBMJzreSLlCps9qK0Ij9S"'),
    (b"cache-control", b"public, max-age=60, stale-while-revalidate=300"),
    (b"Vary", b"Accept, Accept-Encoding, Authorization"),
    (b"x-content-type-options", b"nosniff"),
]
WITHOUT_LENGTH = [header for header in BLOCK if header[0] != b"content-length"]


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers as the query string says: which headers, prepared or as a plain list."""
    if scope["type"] != "http":
        return
    query = scope["query_string"].decode()
    status = 304 if "304" in query else 200
    headers = WITHOUT_LENGTH if "chunked" in query or status == 304 else BLOCK
    extra = [(b"x-request-id", b"req-1")]
    if "close" in query:
        extra.append((b"Connection", b"close"))
    if "prepared" in query:
        sent: list[tuple[bytes, bytes]] = PreparedHeaders(HeaderBlock(headers), extra)
    else:
        sent = [*headers, *extra]
    await send({"type": "http.response.start", "status": status, "headers": sent})
    if "chunked" in query:
        await send({"type": "http.response.body", "body": BODY[:1000], "more_body": True})
        await send({"type": "http.response.body", "body": BODY[1000:]})
    else:
        await send({"type": "http.response.body", "body": b"" if status == 304 else BODY})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """uvicorn with the service's protocol, as `contentapi serve` runs it."""
    config = uvicorn.Config(
        answer,
        host="127.0.0.1",
        port=free_port(),
        http=ContentHttpProtocol,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield config.port
    server.should_exit = True
    thread.join(timeout=30)


def exchange(port: int, request: bytes, responses: int = 1, *, bodyless: bool = False) -> bytes:
    """What the server writes back to `request`, up to the end of `responses` responses (or
    until it closes the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while not complete(received, responses, bodyless):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def complete(received: bytes, responses: int, bodyless: bool) -> bool:
    """Whether the last of `responses` responses has arrived whole."""
    if received.count(b"HTTP/1.1 ") < responses:
        return False
    head, separator, body = received.rpartition(b"HTTP/1.1 ")[2].partition(b"\r\n\r\n")
    if not separator:
        return False
    status, *lines = head.lower().split(b"\r\n")
    if bodyless or status.startswith(b"304"):
        return True
    for line in lines:
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.partition(b":")[2])
    return body.endswith(b"0\r\n\r\n")


def without_date(response: bytes) -> bytes:
    return b"\r\n".join(
        line for line in response.split(b"\r\n") if not line.lower().startswith(b"date:")
    )


def request(target: str, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    return f"{method} /{target} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


@pytest.mark.parametrize(
    ("query", "method", "version", "extra"),
    [
        pytest.param("?", "GET", "1.1", "", id="keep-alive 200"),
        pytest.param("?", "HEAD", "1.1", "", id="HEAD"),
        pytest.param("?304", "GET", "1.1", "", id="304"),
        pytest.param("?chunked", "GET", "1.1", "", id="no Content-Length: chunked"),
        pytest.param("?", "GET", "1.1", "Connection: close\r\n", id="client closes"),
        pytest.param("?", "GET", "1.0", "", id="HTTP/1.0"),
        pytest.param("?close", "GET", "1.1", "", id="application closes"),
    ],
)
def test_prepared_headers_are_written_as_uvicorn_writes_the_same_headers(
    port: int, query: str, method: str, version: str, extra: str
) -> None:
    bodyless = method == "HEAD"
    plain = exchange(port, request(query, method, version, extra), bodyless=bodyless)
    prepared = exchange(
        port, request(query + "&prepared", method, version, extra), bodyless=bodyless
    )
    assert plain.startswith(b"HTTP/1.1 ")
    assert b"x-request-id: req-1\r\n" in plain
    assert without_date(prepared) == without_date(plain)


def test_prepared_answers_to_pipelined_requests_come_back_in_order(port: int) -> None:
    both = exchange(port, request("?prepared") + request("?304&prepared"), responses=2)
    first, second = both.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK")
    assert first.endswith(BODY)
    assert second.startswith(b"304 Not Modified")


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ((b"x-note", b"two\r\nlines"), "invalid value"),
        ((b"bad name", b"x"), "invalid HTTP header name"),
        ((b"transfer-encoding", b"chunked"), "decided per response"),
        ((b"connection", b"close"), "decided per response"),
        ((b"content-length", b"-1"), "not a Content-Length"),
    ],
)
def test_headers_the_server_would_refuse_cannot_be_prepared(
    header: tuple[bytes, bytes], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        HeaderBlock([*BLOCK[:1], header])


def test_prepared_headers_are_every_pair_to_any_other_server() -> None:
    prepared = PreparedHeaders(HeaderBlock(BLOCK), [(b"x-request-id", b"req-1")])
    assert list(prepared) == [*BLOCK, (b"x-request-id", b"req-1")]
