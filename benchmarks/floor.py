"""The floor of the serving benchmarks: a raw ASGI callable answering precomputed bytes.

    python -m benchmarks.floor --port 8123 --body page.json

It runs under the same server as `contentapi serve` (uvicorn, one process, the options of
service/cli.py `serve`), so what it measures is HTTP and the event loop alone: no routing, no
middleware, no GraphQL, no database. benchmarks/bench.py writes the body file with the bytes of
the product page it measures, so both answers have the same size.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

from service.server import ContentHttpProtocol, HeaderBlock, PreparedHeaders

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class FixedAnswer:
    """An ASGI application that answers every HTTP request with the same status and bytes."""

    def __init__(self, body: bytes, content_type: bytes = b"application/json") -> None:
        self.start: Message = {
            "type": "http.response.start",
            "status": 200,
            # prepared once, as the fast lane prepares the headers of the answers it repeats
            "headers": PreparedHeaders(
                HeaderBlock(
                    [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
                )
            ),
        }
        self.body: Message = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        await send(self.start)
        await send(self.body)

    @staticmethod
    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True, help="the file whose bytes to answer")
    parser.add_argument("--shutdown-timeout", type=int, default=20)
    args = parser.parse_args()
    # the same options as `contentapi serve` with one worker (service/cli.py), so that only
    # the application differs between the floor and the service
    uvicorn.run(
        FixedAnswer(args.body.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        http=ContentHttpProtocol,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=args.shutdown_timeout,
    )


if __name__ == "__main__":
    main()
