"""The Distributed Map's items: what the Discover step found about each repository to run, so
that a child needs no listing of the organisation.

Discover writes one item per repository (`{"repo", "branch", "config"}`: the repository, its
default branch and where its own config was found) to S3, and the Map hands each child one. The
item is read back from storage, so it is input like any other: a child admits it only if the
org config itself would have selected it (the organisation's name, the `repositories` globs, a
branch name git accepts, one of `config_paths`), and otherwise refuses, naming why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tagsync.config import check_branch
from tagsync.org.config import OrgConfig

MAX_BRANCH = 255  # characters; a stored item naming a longer default branch is not believed


@dataclass(frozen=True)
class Item:
    repo: str  # owner/name
    branch: str  # its default branch, where its config was read
    config: str  # the path of its own config, one of the org config's `config_paths`

    def to_dict(self) -> dict[str, str]:
        return {"repo": self.repo, "branch": self.branch, "config": self.config}


class Refused(ValueError):
    """An item the org config would not have selected, in words for the repository's row."""


def admit(org: OrgConfig, data: Any) -> Item:
    """The item, if the org config selects it; Refused saying why otherwise. Pure."""
    from tagsync.org.repos import _NAME

    if not isinstance(data, dict) or not all(isinstance(data.get(k), str)
                                             for k in ("repo", "branch", "config")):
        raise Refused("the Map's item is not one Discover writes ({repo, branch, config}); "
                      "an execution started by an older tagsync leaves it for the next run")
    repo, branch, config = data["repo"], data["branch"], data["config"]
    owner, _, name = repo.partition("/")
    if owner.lower() != org.organisation.lower() or not _NAME.fullmatch(name) or name in (".", ".."):
        raise Refused(f"refused: not a repository of {org.organisation} (the Map's item names "
                      "another owner or a name GitHub would not give)")
    if not org.repositories.admits(name):
        raise Refused("refused: not selected by the org config's `repositories` (include/exclude)")
    try:
        if len(branch) > MAX_BRANCH:
            raise ValueError("too long")
        check_branch(branch)
    except ValueError:
        raise Refused("refused: the Map's item names a default branch git would not accept"
                      ) from None
    if config not in org.config_paths:
        raise Refused(f"refused: the Map's item names a config outside the org config's "
                      f"`config_paths` ({', '.join(org.config_paths)})")
    return Item(repo, branch, config)
