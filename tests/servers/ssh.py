"""A Git-over-SSH server on 127.0.0.1: paramiko speaks SSH, real git serves the Git commands.

It accepts exactly one public key (the deploy key) and runs `git upload-pack` and
`git receive-pack` for one bare repository, as a plain sshd with git-shell would, so hooks
(a protected branch) and the compare-and-swap on the old head are git's own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko


@dataclass
class SshGitServer:
    host: str
    port: int
    path: Path
    host_key: paramiko.PKey
    client_key: paramiko.PKey
    client_key_text: str
    commands: list[str] = field(default_factory=list)
    gate: Any = None  # tests.servers.fixtures.PushGate: holds receive-pack to stage races
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
        if verb not in ("git-upload-pack", "git-receive-pack") or arg.strip("'") != "/repo.git":
            channel.sendall_stderr(f"fatal: not allowed: {command}\n".encode())
            channel.send_exit_status(128)
            channel.close()
            return
        channel.send_exit_status(_run_git(server, channel, verb))
        channel.close()
    except (paramiko.SSHException, EOFError, OSError):
        pass
    finally:
        transport.close()


def _run_git(server: SshGitServer, channel: Any, verb: str) -> int:
    """Real `git upload-pack` / `git receive-pack` on the channel, as git-shell runs them: the
    compare-and-swap, locks, hooks and reports are git's own."""
    git = shutil.which("git")
    assert git is not None, "git is not installed (make test installs it)"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(server.path.parent),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
    proc = subprocess.Popen([git, verb.removeprefix("git-"), str(server.path)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def feed() -> None:
        assert proc.stdin is not None
        held = verb != "git-receive-pack" or server.gate is None
        try:
            while data := channel.recv(65536):
                if not held:  # the client read the advertisement and sent its commands
                    held = True
                    server.gate.arrive()
                proc.stdin.write(data)
                proc.stdin.flush()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def errors() -> None:
        assert proc.stderr is not None
        while data := proc.stderr.read1(65536):
            channel.sendall_stderr(data)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=errors, daemon=True)]
    for t in threads:
        t.start()
    while data := proc.stdout.read1(65536):
        channel.sendall(data)
    threads[1].join(10)
    return proc.wait(30)


def start_ssh_git_server(path: Path, port: int, gate: Any = None) -> SshGitServer:
    client = _fresh_ed25519()
    server = SshGitServer("127.0.0.1", port, path, paramiko.Ed25519Key.from_private_key(_fresh_ed25519()),
                          paramiko.Ed25519Key.from_private_key(client), client.getvalue(), gate=gate)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((server.host, port))
    server.port = sock.getsockname()[1]  # port 0: the kernel's choice, taken as it is bound
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
