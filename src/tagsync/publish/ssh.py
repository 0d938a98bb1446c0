"""Git over SSH without an `ssh` executable (Lambda has none): dulwich's client on paramiko.

The deploy key comes from a secret reference (file, env, Secrets Manager, SSM), never from
`~/.ssh`, and the server's host key must match a `known_hosts` entry given the same way: a bot
that pushes must not trust whoever answers first.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from tagsync.errors import ConfigError, PublishAuthError, PublishError

log = logging.getLogger(__name__)


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError:  # pragma: no cover - installed with the ssh extra and in the Lambda image
        raise ConfigError("git over SSH needs paramiko: pip install 'tagsync[ssh]'") from None
    return paramiko


def load_key(text: str) -> Any:
    """A paramiko private key from PEM/OpenSSH text, whatever its type."""
    paramiko = _paramiko()

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError):
            continue
    raise ConfigError("git.ssh_key: not a readable unencrypted Ed25519, ECDSA or RSA private key")


class _Channel:
    """What dulwich's protocol needs from a connection: read, write, can_read, close."""

    def __init__(self, client: Any, channel: Any) -> None:
        self._client, self._channel = client, channel
        self._in = channel.makefile("rb")
        self.stderr = channel.makefile_stderr("rb")

    def read(self, n: int = -1) -> bytes:
        return bytes(self._in.read(n))

    def write(self, data: bytes) -> None:
        self._channel.sendall(data)

    def can_read(self) -> bool:
        return bool(self._channel.recv_ready())

    def close(self, timeout: int | None = None) -> None:
        """Best effort: the server closes the connection right after its last answer, so our
        channel-close message may find the socket gone (EOFError). The exchange is complete by
        then; what it achieved is in the protocol's answer, never in how the socket ended."""
        try:
            self._channel.close()
        except (EOFError, OSError, _paramiko().SSHException) as exc:
            log.debug("SSH connection already closed by the server (%s)", type(exc).__name__)
        finally:
            try:
                self._client.close()
            except (EOFError, OSError) as exc:  # pragma: no cover - closing a dead socket
                log.debug("closing the SSH connection: %s", type(exc).__name__)


class ParamikoVendor:
    """dulwich `SSHVendor` on paramiko with a key and known hosts held in memory."""

    def __init__(self, key_text: str, known_hosts: str) -> None:
        self._key = load_key(key_text)
        self._known_hosts = known_hosts

    def run_command(self, host: str, command: bytes | str, username: str | None = None,
                    port: int | None = None, password: str | None = None,
                    key_filename: str | None = None, ssh_command: str | None = None,
                    protocol_version: int | None = None) -> _Channel:
        paramiko = _paramiko()

        client = paramiko.SSHClient()
        keys = client.get_host_keys()
        for line in self._known_hosts.splitlines():
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
            if entry is not None:
                for name in entry.hostnames:
                    keys.add(name, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        where = host if not port or port == 22 else f"[{host}]:{port}"
        try:
            client.connect(host, port=port or 22, username=username or "git", pkey=self._key,
                           look_for_keys=False, allow_agent=False, timeout=30)
        except paramiko.BadHostKeyException:
            raise PublishError(f"{where}: the server's host key does not match known_hosts — "
                               "refusing to push (possible man-in-the-middle)") from None
        except paramiko.AuthenticationException:
            raise PublishAuthError(f"{where}: the server refused the deploy key") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise PublishError(f"{where} is not in git.known_hosts; add its line "
                                   f"(`ssh-keyscan -p {port or 22} {host}`)") from None
            raise PublishError(f"{where}: SSH failed: {exc}") from None
        except OSError as exc:
            raise PublishError(f"{where}: cannot connect: {exc.strerror or exc}") from None
        channel = client.get_transport().open_session()
        channel.exec_command(command.decode() if isinstance(command, bytes) else command)
        return _Channel(client, channel)
