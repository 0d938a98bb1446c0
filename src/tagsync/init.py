"""`tagsync init`: a starting `tagsync.yaml` for the references found in a checkout.

One catalog per shape found, listing the files it was found in (exact paths: a glob guessed
from them could match more than was looked at), with the policy and pinning choices spelled
out as comments. The text is validated as a config before it is returned.
"""

from __future__ import annotations

import os
from collections import Counter

from tagsync.find import References, scan

HEADER = """\
# tagsync.yaml, written by `tagsync init` from what it found in this checkout:
#   {summary}
# `tagsync refs -c tagsync.yaml` lists every reference this config tracks (offline);
# `tagsync run --dry-run` shows what a run would change.
catalogs:
"""

CATALOG = """\
  - name: {name}
    kind: {kind}
    files:                            # globs work too: "deploy/**/*.yaml", "!deploy/vendor/**"
{files}
    # policy: {{kind: semver}}         # same (default): keep each tag, refresh pinned digests
    # pin_digests: true               # add @sha256:… where a reference has none
"""

FOOTER = """\
# registries:                       # only for private registries or a mirror
#   - host: registry.example.com
#     username: bot
#     password: env:REGISTRY_TOKEN
# git:                              # commit and push (omit to edit the files in place)
#   repo: https://github.com/example/deploy.git
#   token: env:TAGSYNC_GIT_TOKEN
"""


def starting_config(root: str) -> tuple[str, References]:
    """The config text for the shapes found under `root`, and what was found."""
    found, _ = scan([root])
    shape_of: dict[str, str] = {}  # a file's own shape; marker comments ride along with it
    for file, shape in [*((s.file, s.shape) for s in found.slots),
                        *((n.file, n.shape) for n in found.notes)]:
        if shape_of.get(file, "markers") == "markers":
            shape_of[file] = shape
    by_shape: dict[str, set[str]] = {}
    for file, shape in shape_of.items():
        by_shape.setdefault(shape, set()).add(file)
    shapes = Counter({shape: len(files) for shape, files in by_shape.items()})
    refs = len(found.slots) + len(found.notes)
    in_files = sum(shapes.values())
    summary = (f"{refs} reference{'s' * (refs != 1)} in {in_files} file{'s' * (in_files != 1)} "
               f"({', '.join(f'{s} {n}' for s, n in sorted(shapes.items()))}); "
               f"{len(found.notes)} of them left alone as they are written")
    parts = [HEADER.format(summary=summary)]
    for shape in sorted(by_shape):
        files = sorted(os.path.relpath(f, root).replace(os.sep, "/") for f in by_shape[shape])
        listed = "\n".join(f'      - "{f}"' for f in files)
        parts.append(CATALOG.format(name=shape, kind=shape, files=listed))
    parts.append(FOOTER)
    return "".join(parts), found
