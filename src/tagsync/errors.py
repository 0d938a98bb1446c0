"""Typed errors: the library raises these, only the CLI turns them into messages and exit codes.

Every error carries the context a user needs to fix the input (file, line, column, image),
so that nothing downstream has to parse a message string.
"""

from __future__ import annotations

# The exit codes of `tagsync` (README "Exit codes"); the GitHub Action's report names them too.
EXIT_OK = 0
EXIT_ERROR = 1  # nothing written
EXIT_USAGE = 2  # bad config or usage
EXIT_PARTIAL = 3  # published what could be; some images failed


class TagsyncError(Exception):
    """Base of every error tagsync raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        image: str | None = None,
    ) -> None:
        # the one redaction policy, once, where every message is made: a server's words quoted
        # into an error (an error body echoing our Authorization) never reach a user unredacted
        from tagsync.http_policy import redact

        message = redact(message)
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.image = image

    def location(self) -> str:
        """`file:line:column` as far as known, the prefix compilers and editors understand."""
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.location() if (self.file or self.line is not None) else ""
        prefix = f"{where}: " if where else ""
        subject = f"{self.image}: " if self.image else ""
        return f"{prefix}{subject}{self.message}"


# --- catalog (YAML editing) -------------------------------------------------------------


class CatalogError(TagsyncError):
    """Something about a YAML file or a path into it."""


class YamlSyntaxError(CatalogError):
    """The file is not well-formed YAML."""


class EncodingError(CatalogError):
    """The file is not UTF-8 text."""


class PathSyntaxError(CatalogError):
    """A path expression such as `.images[0].tags` could not be parsed."""


class PathNotFoundError(CatalogError):
    """A path names a key or index the document does not have."""


class NotAScalarError(CatalogError):
    """A path ends at a mapping or a sequence where a single value was expected."""


class SharedValueError(CatalogError):
    """Editing this value would silently change every user of an anchor (alias or merge key)."""


class UnsupportedScalarError(CatalogError):
    """A scalar style the engine will not rewrite (block scalars, tagged values)."""


class EditConflictError(CatalogError):
    """Two edits in one pass target the same value with different results."""


class ReadBackError(CatalogError):
    """The edited text would not read back as intended (the edited value as exactly the new
    string, everything else as before); nothing is written."""


# --- configuration ----------------------------------------------------------------------


class ConfigError(TagsyncError):
    """The tagsync configuration is invalid."""

    exit_code = EXIT_USAGE


class PatternTimeoutError(ConfigError):
    """A regular expression from the config (`policy.include`, `verify.identity_regex`, ...)
    ran out of time: it backtracks (see `tagsync.patterns`). Nothing is written; in
    organisation mode only the repository whose config holds it fails."""

    def __init__(self, message: str, *, key: str, pattern: str, image: str | None = None) -> None:
        super().__init__(message, image=image)
        self.key = key
        self.pattern = pattern


# --- registries -------------------------------------------------------------------------


class NothingFoundError(ConfigError):
    """A catalog found no image reference at all: a misconfigured job must not pass for done."""


class RegistryError(TagsyncError):
    """A registry could not answer a question about an image."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (or asked for some we do not have)."""


class ImageNotFoundError(RegistryError):
    """The repository or tag does not exist in the registry."""


class DeadlineError(RegistryError):
    """The run's time ran out before this question was asked; the next run picks it up."""


class RateLimitReserveError(DeadlineError):
    """The registry's pull allowance is down to the reserve; the rest waits for the next run."""


class InvalidReferenceError(RegistryError):
    """A repository, tag or digest does not follow the OCI grammar."""


# --- publishing -------------------------------------------------------------------------


class PublishError(TagsyncError):
    """A commit could not be published; the remote branch is left as it was."""


class PushRejectedError(PublishError):
    """The remote refused the push for a reason a retry cannot fix (protection, permissions)."""


class PublishAuthError(PublishError):
    """The remote refused our credentials."""


class BranchMovedError(PublishError):
    """The branch moved under us more times than we are willing to retry."""


# --- building the Lambda image ----------------------------------------------------------------


class BuildError(TagsyncError):
    """The image could not be built or pushed; nothing was tagged in the target registry."""


class NoWheelError(BuildError):
    """A dependency has no wheel for the target platform, so it cannot be installed without
    compiling it for Amazon Linux."""

    def __init__(self, package: str, platform: str, detail: str = "") -> None:
        super().__init__(
            f"{package} has no wheel for {platform}"
            + (f" ({detail})" if detail else "")
            + "; pin a version that publishes one, or build that package elsewhere",
            image=None)
        self.package = package
        self.platform = platform


# --- untrusted answers and unsafe places (issue #15) ------------------------------------------


class MalformedAnswerError(RegistryError):
    """The registry answered, but with something tagsync will not use (bad JSON, a page that
    links elsewhere or loops, an oversized or too slow body, content that fails its digest)."""


class RegistryDeferredError(DeadlineError):
    """The registry asked us to wait longer than `run.max_wait`: its remaining work is left for
    the next run instead of holding this one."""


class UnsafePathError(ConfigError):
    """A catalog path resolves outside the folder tagsync was given (`..`, absolute, symlink)."""


# --- refreshing a pinned trust root (`tagsync update-trust-root`) ---------------------------------


class TrustRootRefreshError(TagsyncError):
    """A pinned `trusted_root.json` could not be refreshed; the file is left as it was."""


class MirrorError(TrustRootRefreshError):
    """The TUF mirror could not be reached or answered with an HTTP error."""


class TufVerificationError(TrustRootRefreshError):
    """The mirror's TUF metadata or target failed verification (signatures, expiry, rollback,
    hashes): nothing it served is used."""


class TrustRootTargetError(TrustRootRefreshError):
    """The verified TUF target is missing, or is not a trust root tagsync can verify with."""


# --- an organisation's run: one repository's share (issue #32) -------------------------------


class ShareSpentError(TagsyncError):
    """A repository used up its share of an organisation's run (its time, its GitHub requests or
    its registry questions): it stops there and fails alone, so the others still get theirs."""
