"""Lambda architectures as the three vocabularies that name them: Lambda, OCI and pip wheels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tagsync.errors import BuildError

_PYTHON = re.compile(r"3\.(\d{1,2})")


@dataclass(frozen=True)
class Target:
    """What the image is built for: a Lambda architecture and the base image's Python."""

    arch: str = "x86_64"  # Lambda's names: x86_64 | arm64
    python: str = "3.11"

    def __post_init__(self) -> None:
        if self.arch not in ("x86_64", "arm64"):
            raise BuildError(f"architecture {self.arch!r}: choose x86_64 or arm64")
        if not _PYTHON.fullmatch(self.python):
            raise BuildError(f"python {self.python!r}: give major.minor, such as 3.11")

    @property
    def oci_arch(self) -> str:
        return "amd64" if self.arch == "x86_64" else "arm64"

    @property
    def machine(self) -> str:
        """The arch as wheel tags and `uname -m` spell it."""
        return "x86_64" if self.arch == "x86_64" else "aarch64"

    @property
    def glibc_minor(self) -> int:
        """glibc of the Lambda runtime: Amazon Linux 2 (2.26) up to 3.11, AL2023 (2.34) after."""
        return 26 if int(self.python.split(".")[1]) <= 11 else 34

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag the runtime can load, so wheels built for older glibc still match.

        pip takes `--platform` literally, so `manylinux2014_x86_64` alone would refuse a wheel
        tagged only `manylinux_2_28_x86_64` even where the runtime's glibc runs it.
        """
        tags = [f"manylinux2014_{self.machine}"]
        tags += [f"manylinux_2_{minor}_{self.machine}" for minor in range(self.glibc_minor, 16, -1)]
        return tags

    @property
    def default_base(self) -> str:
        return f"public.ecr.aws/lambda/python:{self.python}"
