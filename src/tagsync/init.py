"""`tagsync init`: a starting `tagsync.yaml` that gets a checkout to its first useful change.

One catalog per shape found, each with:

- globs, not file lists, so new files are picked up: a name the shape owns
  (`**/kustomization.yaml`, `**/*Dockerfile*`, `**/values*.yaml`, …), else the folder
  (`deploy/**/*.yaml`), else the file itself. A glob is used only when every file it matches in
  the tree is of the catalog's shape or holds no reference, so no file is read as another shape;
- `policy: {kind: semver, within: major}`: each tag moves within its own major version and its
  own way of writing the tag (`v5.2` → `v5.4`, never `v6`); a tag that is no version keeps
  itself;
- `pin_digests: true` where the files already pin digests (most of the shape's references do);
- a `markers:` stub per Flux image policy its files name.

The config file itself is never a catalog (`run.read_references` leaves it out, always). The
header says what the config tracks and why the rest is left alone, from the same reading a run
does; the text is validated as a config before it is written.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tagsync.catalog.edit import Catalog
from tagsync.config import CONFIG_NAMES, CatalogConfig
from tagsync.errors import CatalogError, TagsyncError
from tagsync.find import References, detect, find_references, is_dockerfile, open_source
from tagsync.find.globs import matches
from tagsync.reference import Reference

_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "vendor"})
POLICY = "{kind: semver, within: major}"

HEADER = """\
# tagsync.yaml, {origin}:
#   {summary}
{why}#
# `tagsync refs -c tagsync.yaml` lists every reference this config tracks (offline);
# `tagsync run --dry-run` shows what a run would change. {publish}
catalogs:
"""
ORIGIN = "written by `tagsync init` from what it found in this checkout"
PUBLISH = """To publish, add `github:` (a pull
# request) or `git:` (a commit): see the commented lines at the end."""

FOOTER = """\
# registries:                       # only for private registries or a mirror
#   - host: registry.example.com
#     username: bot
#     password: env:REGISTRY_TOKEN
# github:                           # one pull request with every bump, kept up to date
#   repo: {repo}
#   mode: pull-request
#   token: env:GITHUB_TOKEN
# git:                              # or: commit and push with pure-Python Git
#   repo: https://github.com/example/deploy.git
#   token: env:TAGSYNC_GIT_TOKEN
"""

# Organisation mode (`tagsync org run`, onboarding): the organisation's config holds the
# registries, credentials and repository; a repository's own config says only how to propose.
ORG_ORIGIN = "proposed by the organisation's tagsync: what `tagsync init` finds here"
ORG_PUBLISH = """The organisation's tagsync publishes
# this repository (registries and credentials are its own): see the commented lines at the end."""
ORG_FOOTER = """\
# github:                           # how changes are proposed here (without it: a commit on
#   mode: pull-request              #   the default branch): one pull request with every bump,
#   labels: [dependencies]          #   kept up to date; also: branch, pr_branch, pr_title,
#                                   #   reviewers, team_reviewers, auto_merge, message
"""


@dataclass
class Tree:
    """What init saw: every file (for glob checks), and each readable file's shape and refs."""

    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # vendored folders, not walked
    shape: dict[str, str] = field(default_factory=dict)  # file -> shape ("" : none of ours)
    found: dict[str, References] = field(default_factory=dict)


def _walk(root: str) -> tuple[list[str], list[str]]:
    """Every file under root, and the vendored folders left out (node_modules can hold more
    files than a checkout's own)."""
    out: list[str] = []
    skipped: list[str] = []
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else rel_folder + "/"
        skipped += [prefix + d for d in sorted(dirs) if d in _SKIP_DIRS and d != ".git"]
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        out += [prefix + name for name in sorted(names)]
    return out, skipped


def survey(root: str) -> Tree:
    """Read every YAML file and Dockerfile outside vendored folders, each with shape detection."""
    cfg = CatalogConfig(name="init", files=["**"], kind="auto")
    files, skipped = _walk(root)
    tree = Tree(files=files, skipped=skipped)
    for rel in tree.files:
        name = rel.rsplit("/", 1)[-1]
        if name in CONFIG_NAMES or not (name.endswith((".yaml", ".yml")) or is_dockerfile(name)):
            tree.shape[rel] = ""
            continue
        path = os.path.join(root, rel)
        if not os.path.isfile(path):  # a named pipe would wait forever
            tree.shape[rel] = ""
            continue
        try:
            with open(path, "rb") as fh:
                source = open_source(fh.read(), rel, cfg)
            found = find_references(cfg, source)
        except (OSError, CatalogError):
            tree.shape[rel] = "unreadable"
            continue
        shape = detect(rel, source) if isinstance(source, Catalog) else "dockerfile"
        own = [s.shape for s in found.slots if s.shape != "markers"]
        own += [n.shape for n in found.notes if n.shape != "markers"]
        tree.shape[rel] = own[0] if own else (shape if found.slots or found.notes else "")
        if found.slots or found.notes or found.ignored:
            tree.found[rel] = found
    return tree


def _name_globs(shape: str, rel: str) -> list[str]:
    """Globs over the names a shape's files go by, broadest first, that this file's name fits."""
    name = posixpath.basename(rel)
    folder = posixpath.dirname(rel)
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    out: list[str] = []
    if shape == "dockerfile":
        out += ["**/*Dockerfile*"] if "Dockerfile" in name else (
            ["**/Containerfile*"] if name.startswith("Containerfile") else [])
    elif shape == "kustomize" and name.endswith(f"kustomization.{ext}"):
        out += [f"**/kustomization.{ext}"] if name.startswith("kustomization.") else []
        out.append(f"**/*kustomization.{ext}")
    elif shape == "compose" and "compose" in name:
        if re.match(r"^(docker-)?compose([.-].*)?\.ya?ml$", name):
            out.append(f"**/{'docker-' if name.startswith('docker-') else ''}compose*.{ext}")
        out.append(f"**/*compose*.{ext}")
    elif shape == "helm" and "values" in name:
        out += [f"**/values*.{ext}"] if name.startswith("values") else []
        out.append(f"**/*values*.{ext}")
    elif shape == "actions" and folder.endswith(".github/workflows"):
        out.append(f"{folder}/*.{ext}")
    return out


def _candidates(shape: str, rel: str) -> list[str]:
    out = _name_globs(shape, rel)
    folder = posixpath.dirname(rel)
    name = posixpath.basename(rel)
    if name.endswith((".yaml", ".yml")) and shape in ("kubernetes", "helm", "kustomize"):
        ext = name.rsplit(".", 1)[-1]
        prefix = f"{folder}/" if folder else ""
        out += [f"{prefix}**/*.{ext}", f"{prefix}*.{ext}"]
    return [*out, rel]


def _safe(glob: str, shape: str, tree: Tree) -> bool:
    """Every file the glob matches is of `shape` or holds nothing of ours (and is no config)."""
    for rel in tree.files:
        if matches(glob, rel):
            other = tree.shape.get(rel, "")
            if posixpath.basename(rel) in CONFIG_NAMES:
                continue  # runs never read the config as a catalog
            if other not in ("", shape):
                return False
            if other == "" and not (rel.endswith((".yaml", ".yml")) or is_dockerfile(rel)):
                return False  # a README.md or Dockerfile.md that a Dockerfile glob catches
    return True


# names a glob of any shape may reach inside a vendored folder
_PROBES = ("a.yaml", "a.yml", "values.yaml", "kustomization.yaml", "compose.yaml", "Dockerfile",
           "a/a.yaml", "a/Dockerfile")


def _vendored(globs: list[str], tree: Tree) -> list[str]:
    """`!folder/**` for each vendored folder a glob could reach: init did not read it, so a
    run must not either."""
    return [f"!{d}/**" for d in tree.skipped
            if any(matches(g, f"{d}/{probe}") for g in globs for probe in _PROBES)]


def globs_for(shape: str, files: list[str], tree: Tree) -> list[str]:
    """The fewest safe patterns covering `files`: the first safe candidate of each file."""
    chosen: list[str] = []
    for rel in sorted(files, key=lambda f: (f.count("/"), f)):  # shallow first: broader globs
        if any(matches(g, rel) for g in chosen):
            continue
        chosen.append(next(g for g in _candidates(shape, rel) if g == rel or _safe(g, shape, tree)))
    return chosen + _vendored(chosen, tree)


def _marker_stubs(found: References) -> dict[str, str | None]:
    """Flux (and tagsync) marker names the files use, with the image they seem to follow."""
    names: dict[str, str | None] = {}
    for note in found.notes:
        if note.shape != "markers" or "does not define" not in note.reason:
            continue
        label = note.reason.split(" ", 2)[1]  # "marker NAME[:setter] names a policy …"
        head, _, last = label.rpartition(":")
        name = head if head and last in ("tag", "name", "digest") else label
        image = note.image if note.image not in ("?", "") else None
        if head and last == "name" and note.value:
            image = note.value
        elif not (head and last in ("tag", "digest")) and note.value:
            with contextlib.suppress(TagsyncError):
                image = str(Reference.parse(note.value).image)
        names[name] = names.get(name) or image
    return names


def _pins(found: list[References]) -> bool:
    """The files already pin: most references that could carry a digest do."""
    pinned = total = 0
    for refs in found:
        for slot in refs.slots:
            total += 1
            pinned += bool(slot.current)
        for note in refs.notes:
            if note.reason.startswith("tag only"):
                total += 1
            elif note.reason.startswith("pinned by digest only"):
                total += 1
                pinned += 1
    return total > 0 and pinned * 2 >= total


def _catalog(shape: str, files: list[str], tree: Tree) -> str:
    found = [tree.found[f] for f in files if f in tree.found]
    lines = [f"  - name: {shape}", f"    kind: {shape}", "    files:"]
    lines += [f'      - "{g}"' for g in globs_for(shape, files, tree)]
    lines.append(f"    policy: {POLICY}   # each tag within its major; `latest` keeps its tag")
    if _pins(found):
        lines.append("    pin_digests: true                  # your files pin digests: so do new ones")
    else:
        lines.append("    # pin_digests: true                # add @sha256:… to every reference")
    stubs: dict[str, str | None] = {}
    for refs in found:
        stubs.update({k: v for k, v in _marker_stubs(refs).items() if v or k not in stubs})
    if stubs:
        lines.append(("    " if any(stubs.values()) else "    # ")
                     + "markers:                           # the Flux image policies these files name")
    for name, image in sorted(stubs.items()):
        if image:
            lines += [f'      "{name}":', f"        image: {image}   # check: the image the policy follows",
                      f"        policy: {POLICY}"]
        else:
            lines += [f'      # "{name}":', "      #   image: REGISTRY/REPOSITORY   # the image its "
                      "ImagePolicy follows", f"      #   policy: {POLICY}"]
    return "\n".join(lines) + "\n"


def _summary(tree: Tree) -> str:
    refs = References()
    for found in tree.found.values():
        refs.extend(found)
    shapes = Counter(tree.shape[f] for f in tree.found if tree.shape[f] not in ("", "unreadable"))
    total = len(refs.slots) + len(refs.notes)
    in_files = sum(shapes.values())
    return (f"{total} reference{'s' * (total != 1)} in {in_files} file{'s' * (in_files != 1)} "
            f"({', '.join(f'{s} {n}' for s, n in sorted(shapes.items()))})")


@dataclass
class Draft:
    """init's answer: the config text, what detection found, and what the config tracks."""

    text: str
    found: References
    lines: list[str] = field(default_factory=list)  # tracked / left alone, for the terminal
    tracked: int = 0
    left_alone: int = 0


def draft(root: str, organisation: bool = False) -> Draft:
    """The config for the shapes found under `root`, its header saying what it tracks (read the
    way a run reads the checkout) and why the rest is left alone. `organisation`: for a
    repository kept in step by `tagsync org run`, whose publishing hints are only how to
    propose (the organisation's config holds registries, credentials and the repository)."""
    tree = survey(root)
    by_shape: dict[str, list[str]] = {}
    for rel in tree.found:
        shape = tree.shape[rel]
        if shape not in ("", "unreadable"):
            by_shape.setdefault(shape, []).append(rel)
    found = References()
    for refs in tree.found.values():
        found.extend(refs)
    parts = [HEADER.format(summary=_summary(tree), why="{why}",
                           origin=ORG_ORIGIN if organisation else ORIGIN,
                           publish=ORG_PUBLISH if organisation else PUBLISH)]
    parts += [_catalog(shape, files, tree) for shape, files in sorted(by_shape.items())]
    parts.append(ORG_FOOTER if organisation
                 else FOOTER.replace("{repo}", github_repo(root) or "OWNER/NAME"))
    text = "".join(parts)
    if not by_shape:
        return Draft(text.replace("{why}", ""), found)
    return _explained(text, Path(root), found)


# Within one line (`[^\S\n]`: white space but a line break): a `\s*` after `^` ran on through every
# following blank line from each line's start, quadratic in a run of them (seconds for a 64 KiB
# .git/config of blank lines).
_GITHUB_REMOTE = re.compile(
    r"^[^\S\n]*url[^\S\n]*=[^\S\n]*(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?[^\S\n]*$", re.M)


def github_repo(root: str) -> str | None:
    """owner/name of the checkout's GitHub remote (its .git/config), for the `github:` hint."""
    try:
        with open(os.path.join(root, ".git", "config"), encoding="utf-8", errors="replace") as fh:
            text = fh.read(65536)
    except OSError:
        return None
    m = _GITHUB_REMOTE.search(text)
    return m.group(1) if m else None


def starting_config(root: str, organisation: bool = False) -> tuple[str, References]:
    """The config text for the shapes found under `root`, and what was found."""
    d = draft(root, organisation)
    return d.text, d.found


def _explained(text: str, root: Path, found: References) -> Draft:
    from tagsync.config import parse_config
    from tagsync.publish.files import FilesPublisher
    from tagsync.run import read_references

    cfg = parse_config(text.replace("{why}", ""), str(root / "tagsync.yaml"), root)
    read = read_references(cfg, FilesPublisher(root).snapshot())
    tracked = len(read.refs.slots)
    reasons = Counter(_reason_group(n.reason) for n in read.refs.notes)
    first: dict[str, str] = {}
    for n in sorted(read.refs.notes, key=lambda n: (n.file, n.line)):
        first.setdefault(_reason_group(n.reason), f"{n.file}:{n.line}")
    lines = [f"tracks {tracked}: tags move within their major version, digests follow where "
             "written"]
    lines += [f"leaves alone {n}: {reason} (e.g. {first[reason]})"
              for reason, n in reasons.most_common()]
    why = "".join(f"#   {line}\n" for line in lines)
    return Draft(text.replace("{why}", why), found, lines, tracked, len(read.refs.notes))


def _reason_group(reason: str) -> str:
    """Reasons without the per-value detail, so the summary has one line per kind."""
    if reason.startswith("marker "):
        return "marked for a Flux image policy the config does not define (see markers:)"
    if reason.startswith("not an image"):
        return "not an image name (a placeholder or a partial name)"
    if reason.startswith("tag ") and "is no version" in reason:
        return "tag is no version (`latest`, `alpine`): set pin_digests: true to follow its digest"
    return reason
