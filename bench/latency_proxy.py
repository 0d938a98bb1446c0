"""A TCP proxy that adds a fixed delay to every request, as a far-away registry would.

Run in its own process so its work does not share the measured client's interpreter:
`python bench/latency_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS`. Each chunk the client sends
(one HTTP request on a keep-alive connection) waits DELAY_MS before it goes upstream; answers
flow back at once. Prints "ready" when listening.
"""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen: int, upstream: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(pipe(client_r, up_w, delay), pipe(up_r, client_w, 0.0))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
