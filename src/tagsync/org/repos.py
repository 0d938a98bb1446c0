"""What an organisation holds, as organisation mode reads it: its repositories (GitHub's
listing: the App installation's grant, or the organisation's for a token) and each one's own
config (GraphQL for many at once, REST for what it cannot give), all of it untrusted answers."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tagsync.config import check_branch
from tagsync.errors import ConfigError, TagsyncError
from tagsync.org.config import OrgConfig

log = logging.getLogger("tagsync.org.run")  # its lines read as the run's

MAX_PAGES = 100  # 10,000 repositories at 100 a page


@dataclass(frozen=True)
class Repo:
    full_name: str
    default_branch: str
    archived: bool = False  # archived or disabled: nothing can be written
    fork: bool = False
    disabled: bool = False
    config_paths: tuple[str, ...] = ()  # where its config may be; empty: the org config's

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


def list_repositories(api: Any, organisation: str, *, installation: bool = False) -> list[Repo]:
    """Every repository of the organisation the credentials may run, by name, 100 a page; each
    once (pages are read by offset: a repository created meanwhile shifts the next page, and
    one already listed comes again; names are case-insensitive).

    A token lists `/orgs/{org}/repos`. An App installation lists `/installation/repositories`:
    the organisation's listing would also show it the public repositories it was not granted
    ("only select repositories"), which it could read but never write nor onboard; of what the
    installation can access, only the organisation's own are kept."""
    from tagsync.errors import PublishError

    what = f"listing {organisation}'s repositories" + (" (the App installation's)"
                                                        if installation else "")
    path = "/installation/repositories" if installation else f"/orgs/{organisation}/repos"
    params = {"per_page": "100"} if installation else {"per_page": "100", "type": "all"}
    out: list[Repo] = []
    seen: set[str] = set()
    others = 0
    for body in pages(api, path, what, params,
                      f"more than {MAX_PAGES * 100}; narrow `repositories.include`"):
        items = _installation_page(body, what) if installation else body
        if not isinstance(items, list):
            raise PublishError(f"{what}: GitHub answered with something other than a list")
        for item in items:
            repo = _listed(item, organisation)
            if repo is None:
                if installation and _owner(item) not in (None, organisation.lower()):
                    others += 1  # another account's repository the installation can see
                    continue
                log.warning("%s: an entry that is not one of its repositories (by name and "
                            "default branch) was left out", what)
                continue
            if repo.full_name.lower() not in seen:
                seen.add(repo.full_name.lower())
                out.append(repo)
    if others:
        log.info("%s: %d repositories of other owners left out", what, others)
    return sorted(out, key=lambda r: r.full_name.lower())


def pages(api: Any, path: str, what: str, params: dict[str, str], too_many: str,
          max_pages: int = MAX_PAGES) -> Iterator[Any]:
    """Each page of a GitHub listing, its JSON (None when it is not JSON), while the `Link`
    header names a next one; past `max_pages`, PublishError `what: too_many`."""
    from tagsync.errors import PublishError

    for page in range(1, max_pages + 1):
        response = api.request("GET", path, what, params={**params, "page": str(page)})
        try:
            yield response.json()
        except ValueError:
            yield None
        if 'rel="next"' not in response.headers.get("link", ""):
            return
    raise PublishError(f"{what}: {too_many}")


def _installation_page(body: Any, what: str) -> list[Any]:
    """The `repositories` of one page of `/installation/repositories`, its shape checked
    (`total_count` a count within what tagsync reads, `repositories` a list)."""
    from tagsync.errors import PublishError

    if not isinstance(body, dict):
        raise PublishError(f"{what}: GitHub answered with something other than an object "
                           "with `total_count` and `repositories`")
    total, items = body.get("total_count"), body.get("repositories")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise PublishError(f"{what}: GitHub's `total_count` is not a count")
    if total > MAX_PAGES * 100:
        raise PublishError(f"{what}: {total}, more than {MAX_PAGES * 100}; grant the App fewer "
                           "repositories or narrow `repositories.include`")
    if not isinstance(items, list):
        raise PublishError(f"{what}: GitHub's `repositories` is not a list")
    return items


def _owner(item: Any) -> str | None:
    """The owner an entry names (its `owner.login`, else the start of `full_name`), lowered."""
    if not isinstance(item, dict):
        return None
    owner = item.get("owner")
    login = owner.get("login") if isinstance(owner, dict) else None
    if not isinstance(login, str):
        name = item.get("full_name")
        login = name.partition("/")[0] if isinstance(name, str) and "/" in name else None
    return login.lower() if login else None


_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _listed(item: Any, organisation: str) -> Repo | None:
    """One entry of GitHub's listing, if it is a repository of this organisation with a name
    and a default branch that cannot be read as a path (both go into API paths)."""
    if not isinstance(item, dict) or not isinstance(item.get("full_name"), str):
        return None
    owner, _, name = item["full_name"].partition("/")
    branch = item.get("default_branch") or "main"
    listed_owner = item.get("owner")
    login = listed_owner.get("login") if isinstance(listed_owner, dict) else None
    if login is not None and (not isinstance(login, str) or login.lower() != owner.lower()):
        return None  # `owner.login` and `full_name` disagree: neither is believed
    if (owner.lower() != organisation.lower() or not _NAME.fullmatch(name)
            or name in (".", "..") or not isinstance(branch, str)):
        return None
    try:
        check_branch(branch)
    except ValueError:
        return None
    return Repo(item["full_name"], branch, bool(item.get("archived") or item.get("disabled")),
                item.get("fork") is not False,  # a fork unless GitHub says it is none
                bool(item.get("disabled")))


def find_config(api: Any, org: OrgConfig, repo: Repo,
                paths: list[str] | None = None) -> tuple[str, str] | None:
    """The repository's own config on its default branch: (path, text); two are refused
    (`one_config`). One larger than the loader takes is refused by its size, never read (up
    to 100 MB each)."""
    from tagsync.config_yaml import MAX_CHARS, _too_large
    from tagsync.errors import CatalogError
    from tagsync.publish.github import FileTooLarge, read_file

    found: list[tuple[str, bytes]] = []
    for path in paths if paths is not None else (repo.config_paths or org.config_paths):
        try:
            data = read_file(api, repo.full_name, path, repo.default_branch,
                             max_size=4 * MAX_CHARS)
        except FileTooLarge as exc:
            raise _too_large(f"{exc.size} bytes", f"{repo.full_name}:{path}") from None
        except CatalogError:
            continue
        found.append((path, data))
    if not found:
        return None
    path, data = one_config(repo, found)
    try:
        return path, data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config is not UTF-8", file=f"{repo.full_name}:{path}") from None


def one_config(repo: Repo, found: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The one config a repository holds. With two (`tagsync.yaml` and `.github/tagsync.yaml`:
    an onboarding proposal merged after a person added their own), running either would
    ignore the other without a word: the repository fails, naming both."""
    if len(found) > 1:
        raise ConfigError(f"{' and '.join(p for p, _ in found)} are both on "
                          f"{repo.default_branch}; keep one (tagsync will not guess which)",
                          file=f"{repo.full_name}:{found[0][0]}")
    return found[0]


GRAPHQL_BATCH = 50  # repositories per query: well inside GitHub's node and time limits


def find_configs(api: Any, org: OrgConfig, repos: list[Repo]) -> dict[str, Any]:
    """Every repository's own config, by name: (path, text), None (none there), or the
    ConfigError saying why it cannot be read. Through GraphQL, `GRAPHQL_BATCH` repositories
    and every config path per request; REST (one read per path) for what GraphQL cannot give
    (no GraphQL API, a truncated or binary blob)."""
    from tagsync.publish.github import GraphQLUnavailable

    out: dict[str, Any] = {}
    if org.github.api == "graphql":
        for start in range(0, len(repos), GRAPHQL_BATCH):
            batch = repos[start:start + GRAPHQL_BATCH]
            try:
                out.update(_configs_by_graphql(api, org, batch))
            except GraphQLUnavailable:
                break
            except TagsyncError as exc:  # a repository gone since the listing: ask one by one
                log.info("reading configs through GraphQL failed (%s); reading them one by one", exc)
    for repo in repos:
        found = out.get(repo.full_name, _Reread(None))
        if isinstance(found, _Reread):
            try:
                out[repo.full_name] = find_config(api, org, repo, found.paths)
            except TagsyncError as exc:
                out[repo.full_name] = exc
    return out


@dataclass(frozen=True)
class _Reread:
    """Configs GraphQL cannot give whole, read over REST: these paths (None: every one)."""

    paths: list[str] | None


def _configs_by_graphql(api: Any, org: OrgConfig, batch: list[Repo]) -> dict[str, Any]:
    variables: dict[str, str] = {}
    fields: list[str] = []
    for i, repo in enumerate(batch):
        owner, name = repo.full_name.split("/", 1)
        variables[f"o{i}"], variables[f"n{i}"] = owner, name
        objects = []
        for j, path in enumerate(repo.config_paths or org.config_paths):
            variables[f"e{i}_{j}"] = f"{repo.default_branch}:{path}"
            objects.append(f"c{j}: object(expression: $e{i}_{j}) "
                           "{ ... on Blob { text isTruncated isBinary } }")
        fields.append(f"r{i}: repository(owner: $o{i}, name: $n{i}) "
                      f"{{ nameWithOwner {' '.join(objects)} }}")
    declared = ", ".join(f"${k}: String!" for k in variables)
    data = api.graphql(f"query({declared}) {{ {' '.join(fields)} }}", variables,
                       f"reading {len(batch)} repositories' configs")
    out: dict[str, Any] = {}
    for i, repo in enumerate(batch):
        node = data.get(f"r{i}")
        # an answer for another repository (one renamed or transferred since the listing:
        # GitHub resolves the old name; an alias mixed up) is not this one's: REST says why
        if (not isinstance(node, dict)
                or str(node.get("nameWithOwner")).lower() != repo.full_name.lower()):
            continue
        found: list[tuple[str, Any]] = []
        for j, path in enumerate(repo.config_paths or org.config_paths):
            blob = node.get(f"c{j}")
            if isinstance(blob, dict):
                found.append((path, blob))
        if any(b.get("isTruncated") or b.get("isBinary") or not isinstance(b.get("text"), str)
               for _, b in found):
            out[repo.full_name] = _Reread([p for p, _ in found])  # REST reads those there
            continue
        try:
            out[repo.full_name] = (one_config(repo, [(p, b["text"]) for p, b in found])
                                   if found else None)
        except ConfigError as exc:
            out[repo.full_name] = exc
    return out
