"""Tiny wheels and an sdist written by the tests: an offline package index for pip.

Real wheel files (zip, METADATA, WHEEL, RECORD with hashes), so pip resolves and installs
them as it would PyPI's, choosing by platform tag.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(folder: Path, name: str, version: str, tag: str, files: dict[str, str],
                requires: tuple[str, ...] = (), scripts: dict[str, str] | None = None) -> Path:
    dist = f"{name}-{version}.dist-info"
    purelib = tag.endswith("none-any")
    content = {path: text.encode() for path, text in files.items()}
    content[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    content[f"{dist}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: tagsync-tests\nRoot-Is-Purelib: {str(purelib).lower()}\n"
        f"Tag: {tag}\n").encode()
    if scripts:
        content[f"{dist}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
            f"{k} = {v}\n" for k, v in scripts.items())).encode()
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in content.items())
    content[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for p, d in content.items():
            zf.writestr(p, d)
    return path


def write_sdist(folder: Path, name: str, version: str) -> Path:
    path = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = f"[project]\nname = '{name}'\nversion = '{version}'\n".encode()
        info = tarfile.TarInfo(f"{name}-{version}/pyproject.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def make_wheelhouse(folder: Path) -> Path:
    """nativepkg (one wheel per arch), purepkg (pure, needs nativepkg, has a console script),
    sdistonly (no wheel at all), certifi (its CA bundle only)."""
    folder.mkdir(parents=True, exist_ok=True)
    for machine, tag in (("x86_64", "manylinux_2_17_x86_64.manylinux2014_x86_64"),
                         ("aarch64", "manylinux_2_17_aarch64.manylinux2014_aarch64")):
        write_wheel(folder, "nativepkg", "1.0", f"cp311-cp311-{tag}",
                    {"nativepkg/__init__.py": f"ARCH = {machine!r}\n"})
    write_wheel(folder, "purepkg", "2.0", "py3-none-any",
                {"purepkg/__init__.py": "from nativepkg import ARCH\n\ndef main():\n    print(ARCH)\n"},
                requires=("nativepkg>=1",), scripts={"purepkg-cli": "purepkg:main"})
    write_sdist(folder, "sdistonly", "1.0")
    import certifi  # a stand-in with the real roots: the image makes a hashed folder of them

    write_wheel(folder, "certifi", "1.0", "py3-none-any",
                {"certifi/__init__.py": "", "certifi/cacert.pem": Path(certifi.where()).read_text()})
    return folder


def host_target() -> tuple[str, str]:
    """(Lambda arch, Python) of this machine, so a layer built for it can be imported here."""
    import platform
    import sys

    return ("arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64",
            f"{sys.version_info.major}.{sys.version_info.minor}")


def download_real_wheelhouse(folder: Path) -> None:
    """tagsync's real dependencies as wheels for this machine's arch, the way `tagsync build`
    would choose them: `make test` fills it once so the suite can build offline."""
    import subprocess
    import sys

    from tagsync.image.deps import own_requirements
    from tagsync.image.platform import Target

    arch, python = host_target()
    target = Target(arch, python)
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--dest", str(folder), "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python, "--abi", f"cp{python.replace('.', '')}"]
    for tag in target.pip_platforms():
        argv += ["--platform", tag]
    subprocess.run([*argv, *own_requirements()], check=True)


if __name__ == "__main__":
    import sys

    download_real_wheelhouse(Path(sys.argv[1]))
    (Path(sys.argv[1]) / ".complete").touch()
