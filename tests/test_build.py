"""`tagsync build`: the Lambda image assembled without Docker, checked with real tools.

A synthetic Lambda base image lives in the local CNCF registry; dependencies come from an
offline wheelhouse of real wheel files; the result is pulled back with skopeo and unpacked
with umoci, as any runtime would see it.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tagsync.errors import BuildError, NoWheelError
from tagsync.image.layer import tree, write_layer
from tagsync.image.pipeline import (
    BlobCache,
    BuildSpec,
    Built,
    PipOptions,
    Registries,
    Target,
    build,
    push_built,
)
from tests.servers.fixtures import RegistryServer, _need, _stop, start_ecr_registry
from tests.servers.images import lambda_base

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE_REPO = "lambda/python"


@pytest.fixture(scope="session")
def base(lambda_base_ref: str) -> str:
    return lambda_base_ref


def spec_for(base: str, wheelhouse: Path, **kw: Any) -> BuildSpec:
    kw.setdefault("requirements", ("purepkg",))
    return BuildSpec(base=base, revision=SHA,
                     pip=PipOptions(find_links=(str(wheelhouse),), no_index=True), **kw)


def build_and_push(spec: BuildSpec, cache: BlobCache, reference: str | None = None,
                   registries: Registries | None = None, **push_kw: Any) -> tuple[Built, Any]:
    async def go() -> tuple[Built, Any]:
        regs = registries or Registries()
        try:
            built = await build(spec, cache, regs)
            report = await push_built(built, reference, cache, regs, **push_kw) if reference else None
            return built, report
        finally:
            await regs.aclose()

    return asyncio.run(go())


def pull_and_unpack(host: str, reference: str, tmp: Path,
                    creds: tuple[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    """skopeo copy to an OCI layout, umoci unpack: (rootfs, image config)."""
    skopeo, umoci = _need("skopeo"), _need("umoci")
    layout, bundle = tmp / "pulled", tmp / "bundle"
    login = ["--creds", ":".join(creds)] if creds else []
    subprocess.run([skopeo, "copy", "--quiet", "--src-tls-verify=false",
                    *(["--src-creds", ":".join(creds)] if creds else []),
                    f"docker://{host}/{reference}", f"oci:{layout}:t"], check=True)
    subprocess.run([umoci, "unpack", "--rootless", "--image", f"{layout}:t", str(bundle)],
                   check=True, capture_output=True)
    config = json.loads(subprocess.run(
        [skopeo, "inspect", "--config", "--tls-verify=false", *login, f"docker://{host}/{reference}"],
        check=True, capture_output=True, text=True).stdout)
    return bundle / "rootfs", config


# --- the layer -------------------------------------------------------------------------------


def _tree_with(root: Path, mode: int) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "pkg" / "tool").write_text("#!/bin/sh\n")
    (root / "pkg" / "mod.py").chmod(mode)
    (root / "pkg" / "tool").chmod(0o775)
    return root


def test_same_files_give_the_same_layer_whatever_their_paths_times_and_modes(tmp_path: Path) -> None:
    one = _tree_with(tmp_path / "first-checkout", 0o600)
    two = _tree_with(tmp_path / "elsewhere" / "second", 0o664)
    for path in (two / "pkg" / "mod.py", two / "pkg" / "tool"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    a = write_layer(tree(one, "var/task"), tmp_path / "a.tgz")
    b = write_layer(tree(two, "var/task"), tmp_path / "b.tgz")
    assert (a.digest, a.diff_id) == (b.digest, b.diff_id)


def test_layer_entries_are_sorted_owned_by_root_and_carry_nothing_of_the_build_machine(
        tmp_path: Path) -> None:
    root = _tree_with(tmp_path / "src", 0o640)
    layer = write_layer(tree(root, "var/task"), tmp_path / "l.tgz", mtime=0)
    raw = gzip.decompress(layer.path.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert [m.name for m in members] == ["var", "var/task", "var/task/pkg", "var/task/pkg/mod.py",
                                         "var/task/pkg/tool"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    assert {m.name: oct(m.mode) for m in members}["var/task/pkg/mod.py"] == "0o644"
    assert {m.name: oct(m.mode) for m in members}["var/task/pkg/tool"] == "0o755"
    assert str(tmp_path).encode() not in raw


def test_a_link_out_of_the_layer_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "escape").symlink_to("/etc/passwd")
    with pytest.raises(BuildError, match="absolute path"):
        write_layer(tree(root, "var/task"), tmp_path / "l.tgz")


# --- dependencies for the target platform ----------------------------------------------------


def test_pip_accepts_every_manylinux_the_runtime_glibc_runs() -> None:
    tags = Target("arm64", "3.12").pip_platforms()
    assert "manylinux2014_aarch64" in tags
    assert "manylinux_2_34_aarch64" in tags and "manylinux_2_17_aarch64" in tags
    assert "manylinux_2_35_aarch64" not in tags
    assert max(int(t.split("_")[2]) for t in Target("x86_64", "3.11").pip_platforms()
               if t.startswith("manylinux_")) == 26


@pytest.mark.parametrize("arch,machine", [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_dependencies_are_the_wheels_of_the_target_architecture(
        tmp_path: Path, wheelhouse: Path, arch: str, machine: str) -> None:
    from tagsync.image.deps import install

    install(["purepkg"], tmp_path, Target(arch, "3.11"),
            PipOptions(find_links=(str(wheelhouse),), no_index=True))
    assert (tmp_path / "nativepkg" / "__init__.py").read_text() == f"ARCH = {machine!r}\n"
    assert (tmp_path / "purepkg" / "__init__.py").exists()


def test_a_dependency_without_a_wheel_for_the_platform_is_named(tmp_path: Path, wheelhouse: Path) -> None:
    from tagsync.image.deps import install

    with pytest.raises(NoWheelError) as caught:
        install(["purepkg", "sdistonly"], tmp_path, Target("arm64", "3.11"),
                PipOptions(find_links=(str(wheelhouse),), no_index=True))
    assert caught.value.package == "sdistonly"
    assert "sdistonly has no wheel for Python 3.11 on manylinux aarch64" in str(caught.value)


def test_tagsync_declared_requirements_with_extras_are_what_gets_installed() -> None:
    from tagsync.image.deps import own_requirements

    names = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for r in own_requirements(("aws",))}
    assert {"httpx", "pydantic", "dulwich", "boto3"} <= names
    assert "paramiko" not in names and "pytest" not in names


def test_the_pattern_engine_is_a_runtime_dependency_the_image_installs() -> None:
    """`regex` bounds the config's regular expressions (tagsync.patterns) on every run path, so
    it is declared with the runtime dependencies the image installs (from manylinux wheels, which
    it publishes for x86_64 and aarch64), not only as a test extra."""
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    runtime = [d.split(">")[0].split("=")[0].strip() for d in project["project"]["dependencies"]]
    assert "regex" in runtime


# --- build, push, pull back ------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> BlobCache:
    return BlobCache(tmp_path / "cache")


@pytest.fixture(scope="session")
def unpacked(registry: RegistryServer, base: str, wheelhouse: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Path, dict[str, Any]]:
    """One build pushed and pulled back, shared by the checks on its contents."""
    tmp = tmp_path_factory.mktemp("unpacked")
    config_file = tmp / "tagsync.yaml"
    config_file.write_text("catalogs: []\n")
    spec = spec_for(base, wheelhouse, files={"tagsync.yaml": config_file})
    built, _ = build_and_push(spec, BlobCache(tmp / "cache"), f"{registry.host}/apps/tagsync:{SHA}")
    rootfs, config = pull_and_unpack(registry.host, f"apps/tagsync:{SHA}", tmp)
    return built, rootfs, config


def test_the_image_holds_the_handler_its_dependencies_and_the_config(
        unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    _, rootfs, _ = unpacked
    task = rootfs / "var" / "task"
    assert (task / "tagsync" / "aws" / "handler.py").is_file()
    assert (task / "nativepkg" / "__init__.py").read_text() == "ARCH = 'x86_64'\n"
    assert (task / "purepkg" / "__init__.py").is_file()
    assert (task / "tagsync.yaml").read_text() == "catalogs: []\n"
    assert (rootfs / "var" / "runtime" / "bootstrap").read_text() == "runtime for amd64\n"  # base kept


def test_the_image_leaves_out_what_only_runs_on_the_build_machine(
        unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    _, rootfs, _ = unpacked
    task = rootfs / "var" / "task"
    assert not (task / "bin").exists()  # console scripts carry this machine's interpreter path
    tag = sys.implementation.cache_tag
    assert all(p.name.endswith(f".{tag}.pyc") for p in task.rglob("*.pyc"))  # no stray bytecode


def test_the_image_carries_unchecked_hash_bytecode_named_as_in_the_image(
        unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    """Lambda's task root is read-only: without .pyc every cold start compiles every module, and
    with checked .pyc every import reads and hashes its source as well."""
    import importlib.util
    import marshal

    built, rootfs, _ = unpacked
    task = rootfs / "var" / "task"
    cached = task / "tagsync" / "aws" / "__pycache__" / f"handler.{sys.implementation.cache_tag}.pyc"
    data = cached.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # PEP 552: hash-based, not checked
    assert marshal.loads(data[16:]).co_filename == "/var/task/tagsync/aws/handler.py"
    assert (task / "purepkg" / "__pycache__").is_dir()
    assert built.bytecode == len(list(task.rglob("*.pyc")))


def test_importing_from_the_layer_compiles_nothing(unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    """The bytecode is valid where it lies: a fresh interpreter imports the handler and the
    dependencies without compiling one module of the task root."""
    _, rootfs, _ = unpacked
    task = str(rootfs / "var" / "task")
    code = f"""
import json, sys, importlib._bootstrap_external as be
compiled = []
original = be.SourceLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
be.SourceLoader.source_to_code = spy
sys.path[:0] = [{task!r}]
import tagsync.aws.handler, purepkg, nativepkg
print(json.dumps([p for p in compiled if p.startswith({task!r})]))
"""
    out = subprocess.run([sys.executable, "-I", "-B", "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []


def test_without_the_bases_python_the_build_warns_and_leaves_bytecode_out(
        base: str, wheelhouse: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.11"
    built, _ = build_and_push(spec_for(base, wheelhouse, target=Target("x86_64", other), requirements=()),
                              BlobCache(tmp_path / "c"))
    assert built.bytecode == 0
    assert f"the base runs Python {other}" in caplog.text


def test_the_config_keeps_the_base_env_and_sets_cmd_and_labels(
        unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    _, _, config = unpacked
    inner = config["config"]
    assert inner["Cmd"] == ["tagsync.aws.handler.handler"]
    assert inner["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert "LAMBDA_TASK_ROOT=/var/task" in inner["Env"] and inner["WorkingDir"] == "/var/task"
    assert inner["Labels"]["org.opencontainers.image.revision"] == SHA
    assert inner["Labels"]["vendor"] == "tests"
    assert config["architecture"] == "amd64"
    assert config["history"][-1]["created_by"] == "tagsync build"


def test_the_handler_imports_from_the_unpacked_task_root(
        unpacked: tuple[Built, Path, dict[str, Any]]) -> None:
    """The layer is a working task root: Python finds the handler and the dependencies in it."""
    _, rootfs, _ = unpacked
    task = rootfs / "var" / "task"
    code = ("import tagsync.aws.handler as h, nativepkg, purepkg; "
            "print(h.__file__, nativepkg.ARCH, callable(h.handler))")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path[:0] = [{str(task)!r}]; {code}"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert out == [str(task / "tagsync" / "aws" / "handler.py"), "x86_64", "True"]


def test_building_twice_gives_the_same_digest(registry: RegistryServer, base: str, wheelhouse: Path,
                                             tmp_path: Path) -> None:
    first, _ = build_and_push(spec_for(base, wheelhouse), BlobCache(tmp_path / "one"))
    second, _ = build_and_push(spec_for(base, wheelhouse), BlobCache(tmp_path / "two"))
    assert first.digest == second.digest
    assert first.layer.digest == second.layer.digest


def test_a_rebuild_reuses_the_layer_compressed_before(base: str, wheelhouse: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = BlobCache(tmp_path / "c")
    first, _ = build_and_push(spec_for(base, wheelhouse), cache)

    def no_compressing(*args: Any) -> None:
        raise AssertionError("compressed again")

    monkeypatch.setattr("tagsync.image.pipeline.compress", no_compressing)
    again, _ = build_and_push(spec_for(base, wheelhouse), cache)
    assert again.layer == first.layer


def test_arm64_builds_on_the_arm64_base_with_arm64_wheels(registry: RegistryServer, base: str,
                                                          wheelhouse: Path, tmp_path: Path) -> None:
    built, _ = build_and_push(spec_for(base, wheelhouse, target=Target("arm64", "3.11")),
                              BlobCache(tmp_path / "c"), f"{registry.host}/apps/tagsync:arm")
    assert json.loads(built.config)["architecture"] == "arm64"
    with tarfile.open(built.layer.path) as tar:
        native = tar.extractfile("var/task/nativepkg/__init__.py")
        assert native is not None and native.read() == b"ARCH = 'aarch64'\n"


def test_a_base_for_another_architecture_is_refused(registry: RegistryServer, wheelhouse: Path,
                                                    tmp_path: Path) -> None:
    registry.push("lambda/amd64-only", "1", lambda_base(("linux/amd64",)))
    spec = spec_for(f"{registry.host}/lambda/amd64-only:1", wheelhouse, target=Target("arm64", "3.11"))
    with pytest.raises(BuildError, match="built for amd64, not arm64"):
        build_and_push(spec, BlobCache(tmp_path / "c"))


def test_a_docker_format_base_gives_a_docker_format_image(registry: RegistryServer, wheelhouse: Path,
                                                           tmp_path: Path) -> None:
    registry.push("lambda/docker", "1", lambda_base(docker=True))
    built, report = build_and_push(spec_for(f"{registry.host}/lambda/docker:1", wheelhouse),
                                   BlobCache(tmp_path / "c"), f"{registry.host}/apps/docker:1")
    assert built.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert report.digest == built.digest
    _, config = pull_and_unpack(registry.host, "apps/docker:1", tmp_path)
    assert config["config"]["Cmd"] == ["tagsync.aws.handler.handler"]


def test_a_base_pinned_by_digest_and_cached_needs_no_registry(registry: RegistryServer, base: str,
                                                               wheelhouse: Path, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    first, _ = build_and_push(spec_for(base, wheelhouse), cache)
    pinned = f"{registry.host}/{BASE_REPO}@{registry.pushed[f'{BASE_REPO}:3.11']}"
    offline = Registries(endpoints={registry.host: "http://127.0.0.1:9"})  # nothing listens there
    again, _ = build_and_push(spec_for(pinned, wheelhouse), cache, registries=offline)
    assert again.base.digest == first.base.digest and again.digest != ""


# --- pushing only what is missing ------------------------------------------------------------


def _uploads(seen: list[str]) -> list[str]:
    return [s for s in seen if "/blobs/uploads/" in s and not s.startswith("HEAD")]


def test_base_layers_are_mounted_and_a_second_push_uploads_no_blob(
        faulty_registry: Any, base: str, wheelhouse: Path, tmp_path: Path) -> None:
    proxy, seen = faulty_registry, faulty_registry.faults.seen
    spec = spec_for(f"{proxy.host}/{BASE_REPO}:3.11", wheelhouse)
    cache = BlobCache(tmp_path / "c")
    built, first = build_and_push(spec, cache, f"{proxy.host}/apps/mounted:1")
    assert len(first.mounted) == 2  # the base's two layers, taken from lambda/python
    assert sorted(first.uploaded) == sorted([built.layer.digest, built.blobs()[0].digest])
    layers = [layer["digest"] for layer in built.base.layers]
    assert not [s for s in seen if s.startswith("GET") and any(d in s for d in layers)]  # not pulled
    seen.clear()
    _, second = build_and_push(spec, cache, f"{proxy.host}/apps/mounted:2")
    assert (len(second.skipped), second.uploaded, second.mounted) == (4, [], [])
    assert _uploads(seen) == []
    assert [s.split()[0] for s in seen if "/blobs/" in s] == ["HEAD"] * 4


def test_to_another_registry_base_layers_are_downloaded_once_and_large_blobs_go_in_chunks(
        registry: RegistryServer, basic_registry: RegistryServer, base: str, wheelhouse: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    auth = base64.b64encode(b"robot:s3cret").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_dir))
    cache = BlobCache(tmp_path / "c")
    built, report = build_and_push(spec_for(base, wheelhouse), cache,
                                   f"{basic_registry.host}/apps/chunked:1", chunk_size=64 * 1024)
    assert len(report.uploaded) == 4 and report.mounted == []
    assert report.chunks >= 4  # the 200 kB noise layer alone takes four 64 kB chunks
    for layer in built.base.layers:
        assert cache.path(layer["digest"]).exists()  # downloaded into the cache, by digest
    rootfs, _ = pull_and_unpack(basic_registry.host, "apps/chunked:1", tmp_path, basic_registry.auth)
    assert (rootfs / "var" / "lang" / "lib" / "noise.bin").stat().st_size == 200_000


@pytest.fixture
def ecr_registry(moto: Any, tmp_path: Path) -> Iterator[tuple[str, RegistryServer]]:
    host, server = start_ecr_registry(tmp_path / "ecr", "123456789012", "us-east-1")
    yield host, server
    _stop(server.process)


def test_pushing_to_ecr_logs_in_with_the_token_ecr_hands_out(
        ecr_registry: tuple[str, RegistryServer], base: str, wheelhouse: Path, tmp_path: Path) -> None:
    host, server = ecr_registry
    registries = Registries(endpoints={host: server.url})
    _, report = build_and_push(spec_for(base, wheelhouse), BlobCache(tmp_path / "c"),
                               f"{host}/tagsync-main:{SHA}", registries=registries)
    assert report.digest and len(report.uploaded) == 4
    rootfs, _ = pull_and_unpack(server.host, f"tagsync-main:{SHA}", tmp_path, server.auth)
    assert (rootfs / "var" / "task" / "tagsync" / "aws" / "handler.py").is_file()


# --- the command line ------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from tagsync.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_builds_pushes_and_reports_json(registry: RegistryServer, base: str, wheelhouse: Path,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "build", "--base", base, "-r", "purepkg", "--find-links", str(wheelhouse),
                        "--no-index", "--revision", SHA, "--cache-dir", str(tmp_path / "c"),
                        "--push", f"{registry.host}/apps/cli:1", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["architecture"] == "amd64" and summary["push"]["reference"].endswith("apps/cli:1")
    assert summary["push"]["digest"] == summary["digest"]


def test_cli_names_the_package_without_a_wheel_and_pushes_nothing(
        registry: RegistryServer, base: str, wheelhouse: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "build", "--base", base, "-r", "sdistonly", "--find-links",
                        str(wheelhouse), "--no-index", "--cache-dir", str(tmp_path / "c"),
                        "--push", f"{registry.host}/apps/never:1")
    assert code == 1
    assert "sdistonly has no wheel for Python 3.11 on manylinux x86_64" in err
    import httpx

    assert httpx.get(f"{registry.url}/v2/apps/never/tags/list").status_code == 404


# --- the real thing: tagsync with its real dependencies --------------------------------------

REAL_WHEELHOUSE = Path(__file__).resolve().parents[1] / ".cache" / "wheelhouse"


def test_tagsync_with_its_real_dependencies_runs_from_the_built_layer(
        registry: RegistryServer, base: str, tmp_path: Path) -> None:
    """The image for this machine's arch, from the wheels `make test` downloaded: an isolated
    interpreter (no site-packages) imports the whole pipeline from the unpacked task root."""
    from tests.servers.wheels import host_target

    if not (REAL_WHEELHOUSE / ".complete").exists():
        pytest.skip("no wheelhouse: `make test` downloads it")
    arch, python = host_target()
    if arch != "x86_64":
        pytest.skip("the synthetic base here is amd64/arm64 with Python 3.11 wheels")
    spec = BuildSpec(target=Target(arch, python), base=base, revision=SHA,
                     pip=PipOptions(find_links=(str(REAL_WHEELHOUSE),), no_index=True))
    built, _ = build_and_push(spec, BlobCache(tmp_path / "c"), f"{registry.host}/apps/real:1")
    raw = gzip.decompress(built.layer.path.read_bytes())
    for here in (str(tmp_path), str(Path.cwd()), sys.prefix, sys.base_prefix):
        assert here.encode() not in raw  # nothing of this machine, only the wheels' own bytes
    rootfs, _ = pull_and_unpack(registry.host, "apps/real:1", tmp_path)
    task = rootfs / "var" / "task"
    code = (f"import sys; sys.path[:0] = [{str(task)!r}]; "
            "import tagsync.run, tagsync.aws.handler, pydantic_core, boto3, yaml; "
            "print(pydantic_core.__file__); print(yaml.__file__)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert all(path.startswith(str(task)) for path in out)


def test_the_image_carries_its_ca_roots_as_a_hashed_folder_openssl_reads_lazily(
        base: str, wheelhouse: Path, tmp_path: Path) -> None:
    """certifi's roots, named as OpenSSL looks them up, and an environment pointing there: no TLS
    context of a cold start parses a bundle whole (aiohttp alone builds two at import)."""
    built, _ = build_and_push(spec_for(base, wheelhouse, requirements=("certifi",)),
                              BlobCache(tmp_path / "c"))
    env = dict(item.split("=", 1) for item in json.loads(built.config)["config"]["Env"])
    assert env["SSL_CERT_DIR"] == "/var/task/tagsync-ca"
    assert env["SSL_CERT_FILE"] == "/var/task/tagsync-ca/none.pem"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"  # the base's own variables stay
    rootfs = tmp_path / "rootfs"
    with tarfile.open(built.layer.path) as tar:
        tar.extractall(rootfs, filter="data")
    folder, task = rootfs / "var" / "task" / "tagsync-ca", rootfs / "var" / "task"
    bundle = (task / "certifi" / "cacert.pem").read_bytes()
    assert len([p for p in folder.iterdir() if p.name != "none.pem"]) == bundle.count(b"BEGIN CERT")
    assert (folder / "none.pem").read_bytes() == b""
    code = ("import json, ssl\nfrom tagsync.http_policy import tls_context\n"
            "print(json.dumps([c.cert_store_stats()['x509_ca'] for c in "
            "(ssl.create_default_context(), tls_context())]))")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path[:0] = [{str(task)!r}]\n" + code],
                         env={"SSL_CERT_DIR": str(folder), "SSL_CERT_FILE": str(folder / "none.pem")},
                         check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == [0, 0]


def test_without_certifi_the_image_keeps_its_bases_ca_roots(base: str, wheelhouse: Path,
                                                            tmp_path: Path) -> None:
    built, _ = build_and_push(spec_for(base, wheelhouse), BlobCache(tmp_path / "c"))
    env = json.loads(built.config)["config"]["Env"]
    assert not any(item.startswith(("SSL_CERT_DIR=", "SSL_CERT_FILE=")) for item in env)
