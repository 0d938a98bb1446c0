"""The offline demo: a throwaway Git repo, a local "registry" with newer images, one run.

Run with `make demo`. Everything happens under ./demo-out; nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from dulwich.objects import Blob, Commit, Tree
from dulwich.patch import write_tree_diff
from dulwich.repo import Repo

from tagsync.image.tiny import build_image, write_layout

HERE = Path(__file__).resolve().parent
OUT = Path.cwd() / "demo-out"

# What the "registry" holds now: every followed tag was rebuilt, python 2.7 was not.
REBUILT = {
    "lablup/kernel-python": ["3.6-ubuntu"],
    "lablup/kernel-app-jupyter": ["3.6-ubuntu"],
    "lablup/kernel-python-tensorflow": ["1.12-py36", "1.12-py36-cuda9"],
    "lablup/kernel-r": ["3.5-ubuntu"],
}


def make_remote(path: Path) -> None:
    repo = Repo.init_bare(str(path), mkdir=True)
    tree = Tree()
    for name in ("image-metadata.yml",):
        blob = Blob.from_string((HERE / name).read_bytes())
        repo.object_store.add_object(blob)
        tree.add(name.encode(), 0o100644, blob.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree, commit.parents = tree.id, []
    commit.author = commit.committer = b"catalog owner <owner@localhost>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"Add the image catalog\n"
    repo.object_store.add_object(commit)
    repo.refs[b"refs/heads/main"] = commit.id
    repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")


def make_registry(root: Path) -> None:
    for repository, tags in REBUILT.items():
        for tag in tags:
            write_layout(root / repository, tag, build_image(f"{repository}:{tag} rebuilt"))
    # An old build of python 2.7 whose image ID matches the catalog would go here; the demo
    # leaves it out so the run also shows a per-image failure being reported, not fatal.


PARTIAL_WHY = ("(exit 3, partial, on purpose: the demo's registry has no build of "
               "kernel-python:2.7-debian, to show that one failed image is reported and the others "
               "are still updated)")


def tagsync(*args: str) -> int:
    cmd = [sys.executable, "-m", "tagsync.cli", *args, "--config", str(OUT / "tagsync.yaml")]
    print(f"\n$ tagsync {' '.join(args)}", flush=True)
    code = subprocess.run(cmd, check=False).returncode
    if code == 3:
        print(PARTIAL_WHY, flush=True)
    elif code != 0:
        print(f"(exit {code}: this is not expected; please report it)", flush=True)
    return code


def show_head(path: Path) -> None:
    repo = Repo(str(path))
    head = repo[repo.refs[b"refs/heads/main"]]
    assert isinstance(head, Commit)
    print(f"\n$ git show main   # (read with dulwich)\ncommit {head.id.decode()}")
    print(f"Author: {head.author.decode()}\n")
    print("    " + head.message.decode().rstrip().replace("\n", "\n    ") + "\n", flush=True)
    parent = repo[head.parents[0]] if head.parents else None
    write_tree_diff(sys.stdout.buffer, repo.object_store,
                    parent.tree if isinstance(parent, Commit) else None, head.tree)
    sys.stdout.flush()


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    shutil.copy(HERE / "tagsync.yaml", OUT / "tagsync.yaml")
    make_remote(OUT / "remote.git")
    make_registry(OUT / "registry")
    print(f"demo set up in {OUT}: a bare Git repo and a folder of OCI image layouts")
    print("\n$ cat image-metadata.yml   # the catalog on the branch, before", flush=True)
    print((HERE / "image-metadata.yml").read_text(), end="", flush=True)
    tagsync("refs")
    tagsync("run", "--dry-run")
    code = tagsync("run")
    show_head(OUT / "remote.git")
    again = tagsync("run")
    print("\nThe second run found nothing to change: the catalog itself is the state.")
    if code in (0, 3) and again in (0, 3):
        print("demo done: one commit on remote.git's main; see above for the diff.")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
