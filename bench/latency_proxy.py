"""A TCP proxy that adds a fixed delay to every request, as a far-away registry would.

Run in its own process so its work does not share the measured client's interpreter:
`python bench/latency_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS`. Each chunk the client sends
(one HTTP request on a keep-alive connection) waits DELAY_MS before it goes upstream; answers
flow back at once. Prints "ready" when listening.

Built on asyncio protocols and `call_later` rather than streams: a delayed chunk is one timer,
not a coroutine, a sleep and a drain. On a 2-core machine the proxy shares the cores with the
registry and the measured client, so every microsecond it spends shows up as added latency.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys


class _Side(asyncio.Protocol):
    """One end of a proxied connection; what it receives goes to its peer's transport."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []  # received before the peer connected
        self.connecting: asyncio.Task[None] | None = None  # held so it is not collected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.pending.append(data)
        elif self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._forward, data)
        else:
            self.peer.transport.write(data)

    def _forward(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def flush(self) -> None:
        for data in self.pending:
            self.data_received(data)
        self.pending.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def main(listen: int, upstream: int, delay: float) -> None:
    loop = asyncio.get_running_loop()

    def accept() -> _Side:
        client = _Side(delay)

        async def connect() -> None:
            try:
                _, server = await loop.create_connection(lambda: _Side(0.0), "127.0.0.1", upstream)
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            client.peer, server.peer = server, client
            client.flush()

        client.connecting = loop.create_task(connect())
        return client

    server = await loop.create_server(accept, "127.0.0.1", listen, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def start(upstream_url: str, delay_ms: int) -> tuple[subprocess.Popen[str], int]:
    """This proxy in its own process in front of `upstream_url`'s port, once it is ready:
    (the process, the port to connect to). The benches stop it."""
    from tests.servers.fixtures import free_port

    port = free_port()
    upstream = int(upstream_url.rsplit(":", 1)[1])
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(upstream), str(delay_ms)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, port


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
