"""Names, tags, descriptions and schedule expressions, checked before any AWS call.

Everything here is pure: `deploy` validates the whole request with these functions first, so an
input AWS would refuse fails with exit 2 before the first resource exists, instead of halfway.
"""

from __future__ import annotations

import hashlib
import re

from tagsync.errors import ConfigError

NAME_LIMIT = 56  # leaves room for "-role" within IAM's and Lambda's 64 characters
TAG_VALUE_LIMIT = 256  # Lambda, IAM, ECR and EventBridge alike


_GIT_REF_BAD = re.compile(r"(^[-/.])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(/$)|(\.lock$)|(@\{)|(//)|(\.$)"
                          r"|(/\.)|(\.lock/)")
_REPO = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/)?[A-Za-z0-9_.-]{1,100}$")


def validate_branch(branch: str) -> str:
    """Git's ref-name rules (git check-ref-format), so a typo fails before anything is created."""
    if not branch or _GIT_REF_BAD.search(branch) or branch == "@":
        raise ConfigError(f"branch {branch!r} is not a valid Git branch name")
    return branch


def validate_repo(repo: str) -> str:
    """`owner/name` or `name`, in GitHub's characters."""
    if not _REPO.match(repo) or repo.rsplit("/", 1)[-1] in (".", ".."):
        raise ConfigError(f"repository {repo!r}: write owner/name, e.g. acme/catalogs")
    return repo


def environment_id(repo: str, branch: str) -> str:
    """A hash of the raw `repo/branch`: which branch of which repository owns an environment."""
    return hashlib.sha256(f"{repo}/{branch}".encode()).hexdigest()[:16]


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def name_prefix(repo: str) -> str:
    """What every environment name of `repo` starts with: the deploy role's resources are
    `<prefix>*` (the repository's name, cleaned; `tagsync` when nothing of it is left)."""
    return (_clean(repo.rsplit("/", 1)[-1])[: NAME_LIMIT - 9].rstrip("-") or "tagsync") + "-"


def qualified_name(repo: str, branch: str) -> str:
    """`<prefix><branch>-<hash of owner/repo/branch>`: unique to the owner too, within the prefix."""
    validate_repo(repo)
    validate_branch(branch)
    digest = hashlib.sha256(f"{repo}/{branch}".encode()).hexdigest()[:8]
    body = (name_prefix(repo) + _clean(branch))[: NAME_LIMIT - 9].rstrip("-")
    return f"{body}-{digest}"


def environment_name(repo: str, branch: str) -> str:
    """`<repo>-<branch>` in the characters Lambda, ECR, IAM and EventBridge all accept.

    When sanitising changes anything (case, `/`, `_`, non-ASCII, length), the qualified name is
    used instead (a hash of the raw `owner/repo/branch` appended), so `feature/Foo_bar`,
    `feature/foo-bar` and `feature/FOO.BAR` never share an environment. Either way the name
    starts with `name_prefix(repo)`. Deploy, rollback and destroy also move to the qualified
    name when this one belongs to a repository of another owner (see calls.resolve_name).
    """
    validate_repo(repo)
    validate_branch(branch)
    short = repo.rsplit("/", 1)[-1]
    raw = f"{short}-{branch}"
    clean = f"{_clean(short)}-{_clean(branch)}"
    if clean == raw and len(clean) <= NAME_LIMIT:
        return clean
    return qualified_name(repo, branch)


def org_name(organisation: str) -> str:
    """The organisation's state machine and schedule (its roles add `-sfn`, `-scheduler`)."""
    return f"tagsync-org-{organisation.lower()}"


def org_bucket(organisation: str, account: str, region: str) -> str:
    """The runs bucket: globally unique and within S3's rules (3-63 lowercase letters, digits,
    hyphens); a long organisation name gives a stable hash of it instead."""
    name = f"{org_name(organisation)}-{account}-{region}"
    if len(name) > 63:
        digest = hashlib.sha256(organisation.lower().encode()).hexdigest()[:12]
        name = f"tagsync-org-{digest}-{account}-{region}"
    return name


def tag_value(text: str) -> str:
    """A tag value every service accepts (IAM's pattern is the narrowest), at most 256 characters."""
    return re.sub(r"[^A-Za-z0-9 _.:/=+\-@]", "_", text)[:TAG_VALUE_LIMIT]


def description(text: str, limit: int) -> str:
    """Printable ASCII (IAM refuses most of Unicode in descriptions), cut to `limit`."""
    clean = re.sub(r"[^\x20-\x7e]", "?", text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


# --- EventBridge schedule expressions ---------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# name, lowest, highest, names for values
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}), ("hours", 0, 23, {}), ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, {}))
_EXAMPLE = "e.g. cron(0 6 * * ? *)"


def _number(text: str, low: int, high: int, names: dict[str, int], what: str, expr: str) -> int:
    value = names.get(text.upper()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        allowed = f"{low}-{high}" + (f" or {min(names)}…" if names else "")
        raise ConfigError(f"schedule {expr!r}: {text!r} is not a valid {what} ({allowed})")
    return value


def _cron_item(item: str, index: int, expr: str) -> None:
    what, low, high, names = _FIELDS[index]
    if index == 2 and item in ("L", "LW"):
        return
    if index == 2 and item.endswith("W") and item[:-1].isdigit():
        _number(item[:-1], low, high, names, what, expr)
        return
    if index == 4 and item == "L":
        return
    if index == 4 and item.endswith("L"):
        _number(item[:-1], low, high, names, what, expr)
        return
    if index == 4 and "#" in item:
        day, _, nth = item.partition("#")
        _number(day, low, high, names, what, expr)
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ConfigError(f"schedule {expr!r}: in {item!r} the week after # must be 1-5")
        return
    base, slash, step = item.partition("/")
    if slash:
        if not step.isdigit() or not 1 <= int(step) <= high:
            raise ConfigError(f"schedule {expr!r}: {item!r}: the increment after / must be 1-{high}")
        if index == 4:
            raise ConfigError(f"schedule {expr!r}: day-of-week takes no increment (/)")
    if base == "*":
        return
    start, dash, end = base.partition("-")
    _number(start, low, high, names, what, expr)
    if dash:
        _number(end, low, high, names, what, expr)


def validate_schedule(expression: str) -> str:
    """EventBridge `rate(…)` and `cron(…)` with AWS's full rules, with a message that teaches."""
    m = _RATE.match(expression)
    if m:
        value, unit = int(m[1]), m[2]
        if value < 1:
            raise ConfigError(f"schedule {expression!r}: the rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            fix = unit.rstrip("s") if value == 1 else unit + "s"
            raise ConfigError(f"schedule {expression!r}: write rate({value} {fix}) "
                              "(singular unit for 1, plural otherwise)")
        return expression
    if not (expression.startswith("cron(") and expression.endswith(")")):
        raise ConfigError(f"schedule {expression!r}: use rate(N minutes|hours|days) or cron(…)")
    fields = expression[5:-1].split(" ")
    if len(fields) != 6 or not all(fields):
        raise ConfigError(f"schedule {expression!r}: cron needs 6 fields separated by single "
                          f"spaces (minutes hours day-of-month month day-of-week year), {_EXAMPLE}")
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ConfigError(f"schedule {expression!r}: exactly one of day-of-month and "
                          f"day-of-week must be '?', {_EXAMPLE}")
    for index, text in enumerate(fields):
        if text == "?":
            if index not in (2, 4):
                raise ConfigError(f"schedule {expression!r}: '?' is only for day-of-month or "
                                  "day-of-week")
            continue
        items = text.split(",")
        for item in items:
            if not item or (len(items) > 1 and item in ("*", "L", "LW")):
                raise ConfigError(f"schedule {expression!r}: {text!r} is not a valid "
                                  f"{_FIELDS[index][0]} list")
            if index in (2, 4) and len(items) > 1 and re.search(r"[LW#]", item):
                raise ConfigError(f"schedule {expression!r}: L, W and # stand alone in "
                                  f"{_FIELDS[index][0]}, never in a list")
            _cron_item(item, index, expression)
    return expression
