"""A CONNECT proxy on 127.0.0.1, as `HTTPS_PROXY` names in a company network.

An HTTPS client reaches a registry through it by asking `CONNECT host:port` and then speaking
TLS end to end inside the tunnel, so the proxy sees only the target and counts it: a test can
prove which requests went through it and which went around it (`NO_PROXY`). As strict as a
forwarding proxy is about what it relays: only CONNECT (anything else is 405), an
authority-form target (`host:port`, else 400), a Host header on HTTP/1.1 (RFC 9112 3.2, else
400), loopback targets only (else 403: the tests never leave the machine), and, when it has
`credentials`, a `Proxy-Authorization: Basic` header that matches them (else 407 with a
`Proxy-Authenticate` challenge, RFC 9110 11.7.1).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

__all__ = ["ConnectProxy", "start_connect_proxy"]

_HEADER_LIMIT = 64 << 10


@dataclass
class ConnectProxy:
    url: str  # http://127.0.0.1:port, as HTTPS_PROXY names it
    credentials: tuple[str, str] | None = None  # (user, password) the proxy demands
    connects: list[str] = field(default_factory=list)  # targets of accepted CONNECTs, in order
    refused: list[str] = field(default_factory=list)  # request lines answered with an error
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        assert self._loop is not None and self._server is not None and self._thread is not None
        server, loop = self._server, self._loop

        async def close() -> None:
            server.close()
            await server.wait_closed()
            tunnels = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tunnels:  # tunnels a client left open end with the proxy
                task.cancel()
            await asyncio.gather(*tunnels, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _answer(writer: asyncio.StreamWriter, status: str, extra: str = "") -> None:
    writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    writer.close()


def _loopback_target(target: str) -> tuple[str, int] | None:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.removeprefix("[").removesuffix("]")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        if host != "localhost":
            return None
    return host, int(port)


def _authorized(fields: dict[str, str], credentials: tuple[str, str] | None) -> bool:
    if credentials is None:
        return True
    scheme, _, token = fields.get("proxy-authorization", "").partition(" ")
    expected = base64.b64encode(":".join(credentials).encode()).decode()
    return scheme.lower() == "basic" and token.strip() == expected


def start_connect_proxy(credentials: tuple[str, str] | None = None) -> ConnectProxy:
    """Start the proxy on a port the kernel picks, in a thread of its own; `stop()` ends it."""
    proxy = ConnectProxy("", credentials)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        request = lines[0]
        parts = request.split(" ")
        fields = {name.strip().lower(): value.strip() for name, sep, value in
                  (line.partition(":") for line in lines[1:] if line) if sep}
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            proxy.refused.append(request)
            await _answer(writer, "400 Bad Request")
            return
        method, target, version = parts
        if method != "CONNECT":
            proxy.refused.append(request)
            await _answer(writer, "405 Method Not Allowed")
            return
        if version == "HTTP/1.1" and "host" not in fields:
            proxy.refused.append(request)
            await _answer(writer, "400 Bad Request")
            return
        if not _authorized(fields, proxy.credentials):
            proxy.refused.append(request)
            await _answer(writer, "407 Proxy Authentication Required",
                          'Proxy-Authenticate: Basic realm="proxy"\r\n')
            return
        where = _loopback_target(target)
        if where is None:
            proxy.refused.append(request)
            await _answer(writer, "403 Forbidden")
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*where)
        except OSError:
            proxy.refused.append(request)
            await _answer(writer, "502 Bad Gateway")
            return
        proxy.connects.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Server]] = Future()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            asyncio.start_server(handle, "127.0.0.1", 0, limit=_HEADER_LIMIT))
        started.set_result((loop, server))
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="connect-proxy", daemon=True)
    thread.start()
    loop, server = started.result(timeout=10)
    port = server.sockets[0].getsockname()[1]
    proxy.url, proxy._loop, proxy._server, proxy._thread = f"http://127.0.0.1:{port}", loop, server, thread
    return proxy
