"""tagsync: keep the container image references kept in Git in step with their registries."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line tool when click and rich are installed (they are: tagsync's CLI
# uses them), pulling click, rich and pygments (~190 ms) into every process that talks to GitHub
# or Docker Hub's API, a Lambda included. tagsync never calls that tool; an entry of None in
# sys.modules makes that one import fail, and httpx falls back as it does without click.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
