"""Publishing over SSH with a deploy key: no ssh executable, host key checked against known_hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.config import load_config
from tagsync.errors import ConfigError, PublishAuthError, PublishError
from tagsync.reference import short
from tagsync.run import run
from tests.servers.fixtures import RegistryServer, SshGit, kernels_yaml, unique_namespace

CATALOG = 'images:\n  - name: python\n    tags:\n      - ["3.6-ubuntu", "0123456789ab"]\n'


@pytest.fixture
def setup(registry: RegistryServer, ssh_git: SshGit, tmp_path: Path,
          request: pytest.FixtureRequest) -> tuple[Path, str]:
    ns = unique_namespace("ssh", request)
    ssh_git.git.commit_directly({"images.yml": CATALOG.encode()}, "initial")
    (tmp_path / "deploy_key").write_text(ssh_git.ssh.private_key_text())
    (tmp_path / "known_hosts").write_text(ssh_git.ssh.known_hosts())
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
{kernels_yaml(registry, ns)}git:
  repo: {ssh_git.ssh.url}
  ssh_key: file:deploy_key
  known_hosts: file:known_hosts
""")
    new = short(registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} new").digest)
    return config, new


def test_commit_is_pushed_over_ssh_with_the_deploy_key(setup: tuple[Path, str], ssh_git: SshGit) -> None:
    config, new = setup
    summary = run(load_config(config))
    assert summary.pushed
    assert ssh_git.git.read("images.yml") == CATALOG.replace("0123456789ab", new).encode()
    verbs = [c.split(" ")[0] for c in ssh_git.ssh.commands]
    assert verbs[-1] == "git-receive-pack" and set(verbs[:-1]) == {"git-upload-pack"}


def test_a_host_key_not_in_known_hosts_is_refused(setup: tuple[Path, str], ssh_git: SshGit,
                                                  tmp_path: Path) -> None:
    config, _ = setup
    (tmp_path / "known_hosts").write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==\n")
    head = ssh_git.git.head()
    with pytest.raises(PublishError, match=r"not in git\.known_hosts"):
        run(load_config(config))
    assert ssh_git.git.head() == head


def test_a_key_the_server_does_not_accept_is_an_auth_error(setup: tuple[Path, str], ssh_git: SshGit,
                                                           tmp_path: Path) -> None:
    from tests.servers.ssh import _fresh_ed25519

    config, _ = setup
    (tmp_path / "deploy_key").write_text(_fresh_ed25519().getvalue())
    with pytest.raises(PublishAuthError, match="refused the deploy key"):
        run(load_config(config))


def test_ssh_url_without_known_hosts_is_a_config_error(setup: tuple[Path, str]) -> None:
    config, _ = setup
    config.write_text(config.read_text().replace("  known_hosts: file:known_hosts\n", ""))
    with pytest.raises(ConfigError, match="ssh-keyscan"):
        run(load_config(config))


def test_many_pushes_in_a_row_all_land_and_none_fails_on_close(ssh_git: SshGit, tmp_path: Path) -> None:
    """The server closes the connection right after the push's report; whichever side closes
    first, the client's close must not turn a landed push into an error (bounded: 40 pushes)."""
    from tagsync.publish.git import GitPublisher
    from tagsync.publish.ssh import ParamikoVendor

    ssh_git.git.commit_directly({"n.txt": b"0\n"}, "initial")
    publisher = GitPublisher(ssh_git.ssh.url, "main", ssh_vendor=ParamikoVendor(
        ssh_git.ssh.private_key_text(), ssh_git.ssh.known_hosts()))
    for n in range(1, 41):
        snap = publisher.snapshot()
        result = publisher.publish(snap, {"n.txt": f"{n}\n".encode()}, f"push {n}")
        assert result.pushed and ssh_git.git.head() == result.revision.encode()
    assert ssh_git.git.read("n.txt") == b"40\n"
    assert ssh_git.git.commit_count() == 41
