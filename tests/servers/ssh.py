"""A Git-over-SSH server on 127.0.0.1: paramiko speaks SSH, dulwich serves the Git commands.

It accepts exactly one public key (the deploy key) and runs `git-upload-pack` and
`git-receive-pack` for one bare repository, as GitLab, Gitea or a plain sshd with git-shell
would. A refused branch (pre-receive) is not modelled here; the HTTP server covers that.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from dulwich.protocol import ReceivableProtocol
from dulwich.repo import Repo
from dulwich.server import DictBackend, ReceivePackHandler, UploadPackHandler


@dataclass
class SshGitServer:
    host: str
    port: int
    path: Path
    host_key: paramiko.PKey
    client_key: paramiko.PKey
    client_key_text: str
    commands: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"ssh://git@{self.host}:{self.port}/repo.git"

    def known_hosts(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"

    def private_key_text(self) -> str:
        return self.client_key_text

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: SshGitServer) -> None:
        self.server = server
        self.command: bytes | None = None
        self.ready = threading.Event()

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = key.get_base64() == self.server.client_key.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        self.command = command
        self.ready.set()
        return True


def _serve_connection(server: SshGitServer, conn: socket.socket) -> None:
    transport = paramiko.Transport(conn)
    transport.add_server_key(server.host_key)
    iface = _Interface(server)
    try:
        transport.start_server(server=iface)
        channel = transport.accept(20)
        if channel is None or not iface.ready.wait(20) or iface.command is None:
            return
        command = iface.command.decode()
        server.commands.append(command)
        verb, _, arg = command.partition(" ")
        handlers: dict[str, Any] = {"git-upload-pack": UploadPackHandler,
                                    "git-receive-pack": ReceivePackHandler}
        if verb not in handlers:
            channel.send_exit_status(1)
            return
        backend = DictBackend({"/repo.git": Repo(str(server.path))})
        # recv() must return what has arrived (the pack reader asks for more than is left),
        # as dulwich's own TCP server does with a socket.
        proto = ReceivableProtocol(channel.recv, channel.sendall)
        handlers[verb](backend, [arg.strip("'")], proto).handle()
        channel.send_exit_status(0)
        channel.close()
    except (paramiko.SSHException, EOFError, OSError):
        pass
    finally:
        transport.close()


def start_ssh_git_server(path: Path, port: int) -> SshGitServer:
    client = _fresh_ed25519()
    server = SshGitServer("127.0.0.1", port, path, paramiko.Ed25519Key.from_private_key(_fresh_ed25519()),
                          paramiko.Ed25519Key.from_private_key(client), client.getvalue())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((server.host, port))
    sock.listen(16)
    server._sock = sock

    def accept() -> None:
        while not server._stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=_serve_connection, args=(server, conn), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def _fresh_ed25519() -> Any:
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    return io.StringIO(pem.decode())
