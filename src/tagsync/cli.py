"""The command line: the only place that turns typed errors into messages and exit codes.

Exit codes:
  0  success (including "nothing to change")
  1  error: nothing was written or published
  2  bad usage or configuration
  3  partial: what could be updated was published, some images failed (see the summary)
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from tagsync import __version__
from tagsync.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, TagsyncError

app = typer.Typer(
    name="tagsync",
    help=(
        "Keep the container image references kept in Git (image catalogs, Kubernetes manifests, "
        "Helm values, kustomizations, compose files, workflows, Dockerfiles) in step with their "
        "registries.\n\n"
        "Start with `tagsync init` to write a config for what a checkout holds, `tagsync refs` to "
        "list what it tracks, and `tagsync run --dry-run` to see what would change; "
        "`tagsync get` / `tagsync set` read or edit one value without disturbing the rest of a "
        "file."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

_CLICK_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN",
                "path": "PATH", "file": "FILE", "directory": "DIRECTORY"}


def _type_label(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """Option types as click users know them (`TEXT`, `INTEGER`, `PATH`), none on a flag."""
    if getattr(self, "is_flag", False):
        return None
    label = typer.core.TyperOption.display_type(self, ctx).strip("<>")
    if label.startswith("list[") and label.endswith("]"):  # a repeatable option: its item's type
        label = label[5:-1]
    return _CLICK_NAMES.get(label, label.upper() if label.isidentifier() else label)


typer.core.TyperOption.display_type_rich = _type_label  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _type_label  # type: ignore[method-assign,assignment]

DocOption = Annotated[
    int, typer.Option("--doc", help="Which document of a multi-document file (0 = first).")
]


def _read_input(file: Path) -> bytes:
    if str(file) == "-":
        return sys.stdin.buffer.read()
    try:
        return file.read_bytes()
    except OSError as exc:
        raise TagsyncError(f"cannot read: {exc.strerror}", file=str(file)) from exc


@app.command()
def get(
    file: Annotated[Path, typer.Argument(help="YAML file ('-' for standard input).")],
    path: Annotated[str, typer.Argument(help="yq-style path, e.g. .images[0].tags[1][1]")],
    doc: DocOption = 0,
) -> None:
    """Print the value at PATH.

    Example: tagsync get image-metadata.yml '.images[0].tags[1][1]'
    """
    from tagsync.catalog import get_value

    typer.echo(get_value(_read_input(file), path, doc=doc, file=str(file)))


@app.command("set")
def set_(
    file: Annotated[Path, typer.Argument(help="YAML file ('-' for standard input).")],
    path: Annotated[str, typer.Argument(help="yq-style path, e.g. .images[0].tags[1][1]")],
    value: Annotated[str, typer.Argument(help="The new value; it always stays a string.")],
    doc: DocOption = 0,
    in_place: Annotated[
        bool, typer.Option("-i", "--in-place", help="Write the file (atomically) instead of stdout.")
    ] = False,
    allow_anchor: Annotated[
        bool,
        typer.Option(
            "--allow-anchor",
            help="Allow editing a value under an anchor (&name), which changes every alias of it.",
        ),
    ] = False,
) -> None:
    """Set the value at PATH, keeping every other byte of the file.

    The value is quoted only when it must be to stay a string for YAML 1.1 and 1.2 readers
    (`yes`, `01`, `1.10`, `a: b` ...); an existing quote style is kept. The result is parsed
    again before it is printed or written: unless PATH reads as exactly VALUE and everything
    else as before, nothing is written and the error says why (exit 1).

    Example: tagsync set -i image-metadata.yml '.images[0].tags[1][1]' 0a1b2c3d4e5f

    A VALUE that starts with `-` goes after `--`: tagsync set f.yml .a -- '-y'
    """
    from tagsync.atomic import write_atomic
    from tagsync.catalog import Edit, apply_edits

    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates
        raise TagsyncError("VALUE is not valid UTF-8 text; nothing was written") from None
    data = _read_input(file)
    out = apply_edits(
        data, [Edit.parse(path, value, doc)], file=str(file), allow_anchor=allow_anchor
    )
    if in_place:
        if str(file) == "-":
            raise typer.BadParameter("-i cannot be used with standard input")
        if out != data:
            write_atomic(file, out)
    else:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()


def _config_path(given: Path | None) -> Path:
    """The config a command reads: the one named, else tagsync.yaml (or .yml) in this folder
    or the nearest parent folder, as git finds its repository from a subfolder."""
    from tagsync.config import CONFIG_NAMES
    from tagsync.errors import ConfigError

    if given is not None:
        return given
    here = Path.cwd()
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                if folder != here:  # a config found above is said: it may be another project's
                    typer.echo(f"using {folder / name}", err=True)
                return folder / name
    raise ConfigError(f"no tagsync.yaml in {here} or a parent folder: `tagsync init` writes one "
                      "for this checkout (`tagsync refs PATH…` lists references without one)")


@app.command("run")
def run_(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Config file; default tagsync.yaml here or in a parent folder.",
        envvar="TAGSYNC_CONFIG", show_default=False)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show the diff; write and push nothing.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr (errors still show).")
    ] = False,
    catalog: Annotated[list[str] | None, typer.Option(
        "--catalog", help="Only this catalog (repeat for more); a catalog that follows another "
                          "brings it along.", show_default=False)] = None,
    image: Annotated[list[str] | None, typer.Option(
        "--image", help="Only images matching this glob, e.g. 'ghcr.io/acme/*' (repeat for more).",
        show_default=False)] = None,
    files: Annotated[bool, typer.Option(
        "--files", help="In CI, edit the checkout's files on purpose (a later step commits them); "
                        "without it, a CI run with neither `github:` nor `git:` is refused.")
    ] = False,
) -> None:
    """Look at the registries, bring every tracked reference up to date, and publish.

    What changes is what `tagsync refs` lists as tracked: a digest refreshed for its tag, a tag
    moved by the policy (semver, regex, numeric, newest) and its digest with it, a digest added
    where `pin_digests` asks; every other byte of each file stays as written.

    Where the files are read and written depends on the config:

    - `github:` reads and commits through GitHub's API (one verified commit per run; with
      `mode: pull-request`, one PR from `tagsync/<catalog>` kept up to date);
    - `git:` fetches the branch and pushes one commit with pure-Python Git (HTTPS or SSH);
    - neither: the files beside the config are edited in place. In CI (`CI` or
      `GITHUB_ACTIONS` set) that would change only the runner's copy, so it is refused unless
      `--files` says a later step takes care of them.

    Progress goes to stderr: a bar at a terminal; otherwise, once a run lasts more than 5 s,
    a line per phase (tags, scan, verify, ages, explain, publish) at most every 5 s. `--quiet`
    turns it off.

    Exit codes: 0 done (or nothing to change), 1 error (nothing written), 2 bad config or
    usage, 3 partial (published what could be; some images failed).

    Examples:

        tagsync run --dry-run

        tagsync run --catalog prod --image 'ghcr.io/acme/*' -v
    """
    import json

    from tagsync.config import load_config
    from tagsync.run import run

    cfg = load_config(_config_path(config))
    if catalog or image:
        cfg = cfg.limited(catalog or (), image or ())
    _refuse_lost_edits(cfg, dry_run=dry_run, files=files)
    progress_cb, finish = _progress(enabled=not quiet, terminal=sys.stderr.isatty())
    try:
        summary = run(cfg, dry_run=dry_run, progress=progress_cb)
    finally:
        finish()
    if json_out:
        data = summary.to_dict()
        if dry_run:
            data["diff"] = summary.diff
        typer.echo(json.dumps(data, indent=2, default=str))
    else:
        _print_summary(summary)
    if summary.partial:
        raise typer.Exit(EXIT_PARTIAL)


def in_ci() -> str | None:
    """The variable that says this runs in CI (`GITHUB_ACTIONS`, `CI`), or None."""
    import os

    for name in ("GITHUB_ACTIONS", "CI"):
        if os.environ.get(name, "").strip().lower() in ("true", "1", "yes"):
            return name
    return None


def _refuse_lost_edits(cfg: object, *, dry_run: bool, files: bool) -> None:
    """A CI run that would edit only the runner's checkout publishes nothing and looks green:
    refused before any registry is asked, saying what to add."""
    from tagsync.config import Config
    from tagsync.errors import ConfigError

    assert isinstance(cfg, Config)
    variable = in_ci()
    if dry_run or files or variable is None or cfg.git is not None or cfg.github is not None:
        return
    raise ConfigError(
        f"this runs in CI ({variable} is set) and the config has neither `github:` nor `git:`, "
        "so the edits would stay on this runner and be lost. Add, for a pull request:\n"
        "  github:\n    repo: OWNER/NAME\n    mode: pull-request\n    token: env:GITHUB_TOKEN\n"
        "(see examples/github-action/tagsync.yaml), or pass --files (Action input `files: true`) "
        "if a later step commits the checkout", file=cfg.config_file)


@app.command()
def status(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Config file; default tagsync.yaml here or in a parent folder.",
        envvar="TAGSYNC_CONFIG", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="A JSON list of rows on stdout.")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="A Markdown table, for a GitHub job summary or a PR comment.")] = False,
    no_ages: Annotated[bool, typer.Option(
        "--no-ages", help="Skip image creation times (saves two reads per image).")] = False,
    behind: Annotated[bool, typer.Option(
        "--behind", help="Only the references a run would change.")] = False,
    sort: Annotated[str, typer.Option(
        "--sort", help="Order: where (file and line), image, behind (most first), state (failed "
                       "first) or age (oldest image first).")] = "where",
) -> None:
    """Show every tracked image at a glance: current, candidate, how far behind, and why.

    One row per reference: where it is written (file:line), the tag and digest it holds, the
    policy, the tag and digest the policy would choose now, how many versions the policy ranks
    above the current one, the age of the current and of the candidate image, and the state
    (up to date, behind, left alone or failed, with the reason). It asks the registries what
    `run --dry-run` asks, plus each image's creation time, and writes nothing. At a terminal
    the table fits its width: a folder or registry every row shares is said once, and a
    reason wraps to at most three lines.

    Example: tagsync status --behind --sort behind
    """
    import json

    from tagsync.config import load_config
    from tagsync.status import SORTS, plain, select
    from tagsync.status import markdown as as_markdown
    from tagsync.status import status as survey

    if sort not in SORTS:
        raise typer.BadParameter(f"{sort!r}: one of {', '.join(SORTS)}", param_hint="--sort")
    everything = survey(load_config(_config_path(config)), ages=not no_ages)
    rows = select(everything, behind_only=behind, sort=sort)
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    elif markdown:
        typer.echo(as_markdown(rows), nl=False)
    elif sys.stdout.isatty():
        _status_table(rows)
    else:
        typer.echo(plain(rows), nl=False)
    count = sum(1 for r in everything if r.state == "behind")
    failed = sum(1 for r in everything if r.state == "failed")
    if not json_out and not markdown:
        typer.echo(f"{len(everything)} references: {count} behind, {failed} failed, "
                   f"{sum(1 for r in everything if r.state == 'left alone')} left alone")


def _status_table(rows: Sequence[object]) -> None:
    """A coloured table as wide as the terminal, for a person."""
    from rich.console import Console

    from tagsync.status import Row, render_lines

    console = Console(highlight=False)
    colour = {"up to date": "green", "behind": "yellow", "waiting": "cyan", "failed": "red",
              "left alone": "dim"}
    shown = [r for r in rows if isinstance(r, Row)]
    for line, state in render_lines(shown, console.width):
        console.print(line, style=colour.get(state or "", "bold" if state is None else ""),
                      markup=False, soft_wrap=True)


@app.command()
def refs(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Files or folders to look through (recursively); without them, the config's catalogs.",
        show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="List what this config's catalogs describe.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="A JSON list of objects on stdout.")] = False,
) -> None:
    """List every image reference tagsync would track, and what it leaves alone and why.

    Offline: no registry is asked. Pointed at files or folders, it detects every shape it knows
    (Kubernetes manifests with Flux HelmReleases and Kustomizations and Argo CD Applications,
    Helm values, kustomizations, compose files, GitHub Actions workflows, GitLab CI pipelines,
    Dockerfiles, marker comments), so you can see what tagsync understands in a checkout before
    writing a config. `--json` rows carry the parsed image, tag and digest of every reference,
    left alone or not, and `value`, the text written at that place. With a config, it lists
    what the config's catalogs find, in the files as the target branch holds them.

    Examples:

        tagsync refs deploy/ Dockerfile

        tagsync refs -c tagsync.yaml --json
    """
    import json

    from tagsync.find import References, rows, scan

    if paths:
        found, warnings = scan([str(p) for p in paths])
    else:
        from tagsync.config import load_config
        from tagsync.run import make_publisher, read_references

        cfg = load_config(_config_path(config))
        read = read_references(cfg, make_publisher(cfg).snapshot())
        found, warnings = read.refs, read.warnings
    assert isinstance(found, References)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    table = rows(found)
    if json_out:
        typer.echo(json.dumps(table, indent=2))
        if not table:  # a machine reading `[]` gets the same exit a person gets
            typer.echo("no image reference found", err=True)
            raise typer.Exit(EXIT_USAGE)
        return
    for row in table:
        where = f"{row['file']}:{row['line']}"
        reason = f"  ({row['reason']})" if row["reason"] else ""
        value, image = str(row["value"]), row["image"]
        if image and str(image).rsplit("/", 1)[-1] not in value:  # a tag, a digest: whose?
            value += f"  [{image}]"
        typer.echo(f"{where}  {row['shape']}  {row['status']}  {value}{reason}")
    tracked = sum(1 for r in table if r["status"] == "tracked")
    alone = sum(1 for r in table if r["status"] == "left-alone")
    typer.echo(f"{tracked} tracked, {alone} left alone")
    if not table:
        typer.echo("no image reference found", err=True)
        raise typer.Exit(EXIT_USAGE)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="The checkout to look through.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing tagsync.yaml.")] = False,
) -> None:
    """Write a starting tagsync.yaml for the image references found in a checkout.

    One catalog per shape found (Kubernetes, Helm values, kustomize, compose, workflows,
    Dockerfiles), each with globs that pick up new files, a policy that moves every tag within
    its own major version (`{kind: semver, within: major}`), digests pinned where the files
    already pin them, and a `markers:` stub per Flux image policy seen. It says what the config
    tracks and why the rest is left alone. Nothing is asked of any registry.

    Example: tagsync init . && tagsync refs -c tagsync.yaml
    """
    from tagsync.config import parse_config
    from tagsync.errors import ConfigError
    from tagsync.init import draft

    if not directory.is_dir():
        raise ConfigError("no such folder: init looks through a checkout and writes its "
                          "tagsync.yaml there" if not directory.exists() else
                          "not a folder: init looks through a checkout and writes its "
                          "tagsync.yaml there", file=str(directory))
    target = directory / "tagsync.yaml"
    if target.exists() and not force:
        raise ConfigError("already exists; pass --force to replace it", file=str(target))
    made = draft(str(directory))
    if not made.found.slots and not made.found.notes:
        raise ConfigError(f"no image reference found under {directory} (looked at YAML files and "
                          "Dockerfiles)")
    parse_config(made.text, str(target), directory)  # what we write must load
    try:
        target.write_text(made.text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", file=str(target)) from None
    typer.echo(f"wrote {target}: {made.tracked} tracked, {made.left_alone} left alone")
    for line in made.lines:
        typer.echo(f"  {line}")
    typer.echo(f"next: tagsync refs -c {target}, then tagsync run -c {target} --dry-run")


@app.command("update-trust-root")
def update_trust_root(
    path: Annotated[Path, typer.Argument(
        help="The trusted_root.json to write: the file a verify policy's trusted_root names.")],
    mirror: Annotated[str, typer.Option(
        "--mirror", help="TUF repository to fetch from (default: Sigstore's public-good one).")
    ] = "https://tuf-repo-cdn.sigstore.dev",
    tuf_root: Annotated[Path | None, typer.Option(
        "--tuf-root", help="A TUF root.json of the mirror you trust, to start the chain from. Not "
                           "needed for the public-good mirror (sigstore ships its root) nor once "
                           "the metadata cache holds one.", show_default=False)] = None,
    metadata_dir: Annotated[Path | None, typer.Option(
        "--metadata-dir", help="TUF metadata cache, kept between refreshes so root rotations "
                               "persist; default $XDG_CACHE_HOME/tagsync/tuf/ + the URL-quoted mirror.",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="Say what would change; write nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")] = False,
) -> None:
    """Refresh a pinned Sigstore trusted_root.json through TUF, on purpose.

    Runs never fetch the trust root: verification is offline and a changed root is a reviewed
    commit. This command is the explicit step that fetches a new one. It follows the mirror's
    TUF chain (root rotations, timestamp, snapshot, targets, expiry, rollback, the file's hashes),
    checks that tagsync can verify with the result, and replaces PATH atomically only when its
    bytes differ, listing the Rekor logs, Fulcio CAs and CT logs added, removed or retired.

    Exit codes: 0 updated or unchanged, 1 nothing written (mirror unreachable, verification
    refused, not a trust root), 2 bad usage (another mirror without --tuf-root).

    Examples:

        tagsync update-trust-root sigstore/trusted_root.json && git diff sigstore/

        tagsync update-trust-root --mirror https://tuf.example.com --tuf-root 1.root.json root.json
    """
    import json

    from tagsync.verify.refresh import count_text
    from tagsync.verify.refresh import update_trust_root as refresh

    result = refresh(path, mirror=mirror, tuf_root=tuf_root, metadata_dir=metadata_dir, dry_run=dry_run)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    held = count_text(result.counts)
    if result.status == "unchanged":
        typer.echo(f"unchanged {path}: {held} (TUF root version {result.tuf_root_version})")
        return
    verb = "would update" if dry_run else "updated"
    typer.echo(f"{verb} {path} from {result.mirror} (TUF root version {result.tuf_root_version}): {held}")
    for change in result.changes:
        typer.echo(f"  {change.describe()}")
    typer.echo("dry run: nothing written" if dry_run else "review the change and commit the file")


def _progress(
    enabled: bool, terminal: bool,
) -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """Progress on stderr: a bar when a person is watching, else a line per phase now and then."""
    from tagsync.progress import PhaseLines, bar

    if not enabled:
        return None, lambda: None
    if terminal:
        return bar()

    def write(line: str) -> None:
        sys.stderr.write(line)
        sys.stderr.flush()

    return PhaseLines(write), lambda: None


def _print_summary(summary: object) -> None:
    from tagsync.run import Summary

    assert isinstance(summary, Summary)
    out = typer.echo
    if summary.dry_run and summary.diff:
        out(summary.diff.rstrip("\n"))
    for c in summary.changes:
        verb = ("would add" if summary.dry_run else "added") if c.kind == "append" else (
            "would update" if summary.dry_run else "updated")
        out(f"{verb} {c.describe()}  ({c.file}:{c.line})")
    for f in summary.failures:
        where = f"{f.file}:{f.line}" + (f":{f.column}" if f.column is not None else "")
        typer.echo(f"failed {f.image}:{f.tag} ({where}): {f.error}", err=True)
    for warning in summary.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for n in summary.skipped:
        logging.getLogger("tagsync").info("left alone %s:%s (%s:%d): %s", n.image, n.tag,
                                          n.file, n.line, n.reason)
    reasons: dict[str, list[str]] = {}
    for n in summary.skipped:
        reasons.setdefault(n.reason, []).append(f"{n.file}:{n.line}")
    for reason, places in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        more = f" and {len(places) - 3} more" if len(places) > 3 else ""
        out(f"left alone {len(places)}: {reason} ({', '.join(places[:3])}{more})")
    from tagsync.plan import images_changed

    counts = (f"{images_changed(summary.changes)} changed, {summary.up_to_date} up to date, "
              f"{len(summary.failures)} failed, {len(summary.skipped)} left alone")
    if summary.dry_run:
        out(f"dry run: {counts}; nothing written")
    elif summary.pull_request is not None:
        verb = {"opened": "opened", "updated": "updated", "closed": "closed",
                "merged": "found merged", "declined": "left closed (declined)",
                "kept": "left to its committer"}.get(summary.pull_request_action or "",
                                                     "left as it is")
        out(f"{verb} pull request #{summary.pull_request} {summary.url or ''}: {counts}")
    elif summary.pushed and summary.commit:
        out(f"committed {summary.commit[:12]} to {summary.target}: {counts}")
    elif summary.pushed:
        out(f"wrote {summary.target}: {counts}")
    else:
        out(f"nothing to change: {counts}")


# --- organisation mode -----------------------------------------------------------------------

org_app = typer.Typer(
    help="Keep every repository of a GitHub organisation in step from one config: each "
         "repository holds its own `tagsync.yaml` (catalogs, push or PR); the organisation's "
         "`org.yaml` holds GitHub access, registries and credentials (and, with "
         "`allowed_registries`, the only hosts repositories' files may make tagsync ask). "
         "Registries are asked once for every repository.",
    no_args_is_help=True,
)
app.add_typer(org_app, name="org")


@org_app.command("run")
def org_run_(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The organisation's config.",
                           envvar="TAGSYNC_ORG_CONFIG")
    ] = Path("org.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Plan every repository; write and push nothing.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary per repository.")
    ] = False,
    repos: Annotated[
        list[str] | None, typer.Option("--repo", help="Only this repository (owner/name); "
                                       "repeat for more.")
    ] = None,
    answers_out: Annotated[
        Path | None, typer.Option("--answers-out", help="Ask the registries for every selected "
                                  "repository, write their answers to this JSON file, and stop "
                                  "(plan and write nothing).")
    ] = None,
    answers: Annotated[
        Path | None, typer.Option("--answers", help="Plan from answers an `--answers-out` run "
                                  "stored instead of asking the registries again (a question "
                                  "they lack is still asked).")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the dashboard (a row per "
                                  "repository) to this Markdown file.")
    ] = None,
) -> None:
    """Run every selected repository of the organisation: list them, read each one's own config
    (`tagsync.yaml` or `.github/tagsync.yaml`; without one: skipped), ask the registries once for
    all of them, then plan and publish each repository on its own. One repository's failure never
    stops the others.

    A repository's config may set only `catalogs:` and, under `github:`, how to propose changes
    (`branch`, `mode`, `pr_branch`, `pr_title`, `labels`, `reviewers`, `team_reviewers`,
    `auto_merge`, `message`); registries, credentials, endpoints and limits are the
    organisation's, and anything else is refused with its key and line.

    No repository can starve the others: each gets a share of the run (`per_repository` in
    org.yaml: its time to be read and again to be published, by default its even share of
    `run.max_duration`'s time left; its GitHub requests; the registry questions newly asked for
    it). Past it, that repository fails alone, saying which share; `--json` shows what each spent.

    Exit codes: 0 every repository done (or skipped), 1 the organisation could not be listed,
    2 bad org config, 3 some repositories failed (listed).
    """
    import json

    from tagsync.org import answers as stored
    from tagsync.org.config import load_org_config
    from tagsync.org.run import org_run

    org = load_org_config(config)
    known = None
    if answers is not None:
        try:
            known = stored.load(json.loads(answers.read_text(encoding="utf-8")), str(answers))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            from tagsync.errors import ConfigError

            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ConfigError(f"cannot read stored answers: {why}", file=str(answers)) from None
    summary = org_run(org, dry_run=dry_run, known=known,
                      only=frozenset(repos) if repos else None, answers_only=answers_out is not None)
    if answers_out is not None:
        from tagsync.atomic import write_atomic

        write_atomic(answers_out, json.dumps(stored.dump(summary.known)).encode())
    if markdown is not None:
        from tagsync.atomic import write_atomic
        from tagsync.org.dashboard import render

        write_atomic(markdown, render(org.organisation, [r.__dict__ for r in summary.repositories],
                                      limit=None).encode())  # a file holds every row
    if json_out:
        typer.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        width = max((len(r.repo) for r in summary.repositories), default=10)
        for r in summary.repositories:
            line = f"{r.repo:<{width}}  {r.status:<9}  {r.reason}"
            typer.echo(line.rstrip(), err=r.status in ("failed", "partial"))
        counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts().items()))
        prefix = "dry run: " if dry_run else ""
        typer.echo(f"{prefix}{summary.organisation}: {counts or 'no repository selected'}; "
                   f"{summary.requests.get('requests', 0)} registry requests for all of them")
        if summary.dashboard:
            typer.echo(summary.dashboard)
    if summary.partial:
        raise typer.Exit(EXIT_PARTIAL)


OrganisationOption = Annotated[str, typer.Option(
    "--organisation", help="The GitHub organisation (names the state machine, roles, bucket).")]
FunctionOption = Annotated[str, typer.Option(
    "--function", help="The tagsync function `tagsync deploy` made, whose image carries org.yaml "
                       "(TAGSYNC_ORG_CONFIG).")]


@org_app.command("deploy")
def org_deploy_(
    organisation: OrganisationOption,
    function: FunctionOption,
    schedule: Annotated[str, typer.Option(help="EventBridge Scheduler expression.")] = "rate(1 hour)",
    max_concurrency: Annotated[int, typer.Option(
        help="Repositories run at once by the Distributed Map.")] = 10,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would change; change nothing.")] = False,
) -> None:
    """Run the organisation past one Lambda invocation: an S3 bucket for each run's answers and
    results, a Step Functions state machine (discover once, a Distributed Map of one child per
    repository, a summary that fails the execution when a repository failed), its role, the
    function's access to the bucket, and an EventBridge Scheduler schedule that starts it.
    Converges: a second deploy changes nothing."""
    from tagsync.aws.org_deploy import OrgDeployer, OrgDeploySpec

    spec = OrgDeploySpec(organisation, function, schedule, max_concurrency)
    _print_steps(OrgDeployer(spec, dry=plan).deploy(), plan)  # type: ignore[arg-type]


@org_app.command("destroy")
def org_destroy_(organisation: OrganisationOption, function: FunctionOption) -> None:
    """Delete the schedule, state machine, roles, bucket access and (once empty) the bucket
    `org deploy` made. Every ownership is read first; what is not provably this organisation's
    is kept and listed. The function stays (`tagsync destroy` removes it)."""
    from tagsync.aws.org_deploy import OrgDeployer, OrgDeploySpec

    steps = OrgDeployer(OrgDeploySpec(organisation, function)).destroy()
    _print_steps(steps, False)  # type: ignore[arg-type]


# --- AWS: deploy, rollback, destroy; scaffold --------------------------------------------------

LAMBDA = "Running as a scheduled AWS Lambda function"
RepoOption = Annotated[str, typer.Option(
    "--repo", envvar="GITHUB_REPOSITORY",
    help="Repository the environment belongs to (owner/name or name); default $GITHUB_REPOSITORY.")]
BranchOption = Annotated[str, typer.Option(
    "--branch", envvar="GITHUB_REF_NAME",
    help="Git branch: one environment `<repo>-<branch>` per branch; default $GITHUB_REF_NAME.")]


def _print_steps(steps: list[object], dry: bool) -> None:
    for step in steps:
        typer.echo(f"  {step}")
    changed = [s for s in steps if getattr(s, "action", "none") != "none"]
    if not changed:
        typer.echo("no change: everything is already as requested")
    elif dry:
        typer.echo(f"plan: {len(changed)} change(s); nothing was changed (run without --plan to apply)")
    else:
        typer.echo(f"done: {len(changed)} change(s)")


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """NAME=VALUE options as a dict; a malformed one is a usage error."""
    out: dict[str, str] = {}
    for item in values or []:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise typer.BadParameter(f"{item!r}: write NAME=VALUE", param_hint=option)
        out[name] = value
    return out


def _hosts_in_files(cfg: object) -> set[str]:
    """Registry hosts of the references in the config's files as this checkout holds them (deploy
    runs in the catalog repository's CI): the role may read exactly the ECR registries they use."""
    from tagsync.config import Config
    from tagsync.errors import TagsyncError
    from tagsync.publish.files import FilesPublisher
    from tagsync.run import read_references

    assert isinstance(cfg, Config)
    try:
        read = read_references(cfg, FilesPublisher(cfg.base_dir).snapshot())
    except TagsyncError:
        return set()
    return {s.image.registry for s in read.refs.slots}


@app.command(rich_help_panel=LAMBDA)
def deploy(
    repo: RepoOption,
    branch: BranchOption,
    sha: Annotated[str, typer.Option("--sha", envvar="GITHUB_SHA",
                                     help="Commit the image is tagged with; default $GITHUB_SHA.")],
    image: Annotated[str | None, typer.Option(
        "--image", help="Use this image in this account's ECR (REGISTRY/REPOSITORY:TAG, checked "
                        "before anything is created) instead of building one.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="tagsync.yaml: the role may read exactly the AWS secrets and ECR "
                               "registries it names; the tagsync builder puts it in the image at "
                               "--config-ref.")] = None,
    config_ref: Annotated[str, typer.Option(
        "--config-ref", help="TAGSYNC_CONFIG for the function: a path in the image, s3://… or ssm:…")
    ] = "/var/task/tagsync.yaml",
    schedule: Annotated[str, typer.Option(
        "--schedule", help="EventBridge expression: rate(1 hour), cron(0 6 * * ? *).")] = "rate(1 hour)",
    arch: Annotated[str, typer.Option("--arch", help="x86_64 or arm64.")] = "x86_64",
    memory: Annotated[int, typer.Option("--memory", help="MB.")] = 512,
    timeout: Annotated[int, typer.Option("--timeout", help="Seconds (Lambda's 3 s default is too short).")
                       ] = 300,
    keep_images: Annotated[int, typer.Option("--keep-images", help="ECR lifecycle: images kept.")] = 10,
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="NAME=VALUE for the function (repeat); kept across deploys, dropped when no "
                      "longer given. Variables set by hand are kept and reported.")] = None,
    secret_env: Annotated[list[str] | None, typer.Option(
        "--secret-env", help="NAME=aws-secretsmanager:ID or NAME=aws-ssm:/name (repeat): the "
                             "function resolves it at run time; the role may read exactly it.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would change; change nothing.")] = False,
    builder: Annotated[str, typer.Option(
        "--builder", help="How a missing image is built: docker, tagsync (no daemon needed), or "
                          "auto (Docker when its daemon answers, else tagsync).")] = "auto",
    base: Annotated[str | None, typer.Option(
        "--base", help="Base image for --builder tagsync; default public.ecr.aws/lambda/python.")] = None,
    python: Annotated[str, typer.Option("--python", help="Python of the base image.")] = "3.11",
    org: Annotated[bool, typer.Option(
        "--org", help="The organisation's function: --config is an org.yaml (built in at "
                      "/var/task/org.yaml unless --config-ref says otherwise), and instead of "
                      "an EventBridge rule, `tagsync org deploy`'s state machine and schedule "
                      "run it, set up in the same command.")] = False,
    max_concurrency: Annotated[int, typer.Option(
        "--max-concurrency", help="With --org: repositories run at once by the state "
                                  "machine's Distributed Map.")] = 10,
) -> None:
    """Deploy tagsync as a scheduled Lambda function for one branch; converges from any state.

    Everything is checked before the first write (names, schedule, --image, builder, config,
    AWS's length and pattern rules, a Zip function of the same name, and the caller's
    permissions through iam:SimulatePrincipalPolicy): a refused deploy creates nothing (exit 2).
    Then it creates what is missing and repairs what differs: the ECR repository (immutable
    tags, scan on push, lifecycle; its policy lets Lambda pull), the image tagged with
    the commit SHA (built with Docker when a daemon is available, else by `tagsync build` with
    --config built in; or give --image), the IAM role (basic execution + read access to exactly
    the secrets and ECR registries the config names), the function (waits until it is ready), the
    version running this SHA with these settings (published if none does), the alias `live` on
    it, and the EventBridge schedule invoking it. A second deploy of the same SHA changes nothing.
    Uses the usual AWS environment (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).
    """
    from tagsync.aws.deploy import Deployer
    from tagsync.aws.spec import DeploySpec
    from tagsync.config import load_config
    from tagsync.reference import parse_ecr_host

    refs: tuple[str, ...] = ()
    ecr: set[tuple[str, str]] = set()
    organisation: str | None = None
    if org:
        from tagsync.errors import ConfigError
        from tagsync.org.config import load_org_config, org_secret_refs

        if config is None:
            raise ConfigError("--org needs --config: the organisation's org.yaml")
        org_cfg = load_org_config(config)
        organisation = org_cfg.organisation
        refs = tuple(r for r in org_secret_refs(org_cfg) if r.startswith("aws-"))
        ecr = {found for r in org_cfg.registries if (found := parse_ecr_host(r.host)) is not None}
        if config_ref == "/var/task/tagsync.yaml":
            config_ref = "/var/task/org.yaml"
    elif config:
        cfg = load_config(config)
        refs = tuple(r for r in cfg.secret_refs() if r.startswith("aws-"))
        hosts = cfg.named_hosts() | _hosts_in_files(cfg)
        ecr = {found for h in hosts if (found := parse_ecr_host(h)) is not None}
    spec = DeploySpec(repo=repo, branch=branch, sha=sha, image=image, architecture=arch, memory=memory,
                      timeout=timeout, schedule=schedule, config_ref=config_ref,
                      secret_refs=refs, ecr_registries=tuple(sorted(ecr)), keep_images=keep_images,
                      environment=_pairs(env, "--env"), secret_environment=_pairs(secret_env, "--secret-env"),
                      builder=builder, base_image=base, python=python, config_file=config, org=org)
    check_fan_out = None
    if organisation is not None and not plan:
        from tagsync.aws.org_deploy import OrgDeployer, OrgDeploySpec

        def check_fan_out(name: str) -> None:
            """The fan-out's refusals (its permissions, a resource not ours) before the
            function's first write, once deploy's first reads have settled the name."""
            assert organisation is not None
            OrgDeployer(OrgDeploySpec(organisation, name, schedule, max_concurrency), dry=True,
                        function_planned=True).deploy()

    deployer = Deployer(spec, dry=plan, before_writes=check_fan_out)
    steps: list[object] = list(deployer.deploy())  # the name is settled by deploy's first reads
    if organisation is not None:
        from tagsync.aws.org_deploy import OrgDeployer, OrgDeploySpec

        fan_out = OrgDeploySpec(organisation, deployer.name, schedule, max_concurrency)
        steps += OrgDeployer(fan_out, dry=plan, function_planned=True).deploy()
    typer.echo(f"environment {deployer.name} ({repo} @ {branch}, {sha[:12]})")
    _print_steps(steps, plan)


@app.command(rich_help_panel=LAMBDA)
def build(
    arch: Annotated[str, typer.Option("--arch", help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    push: Annotated[str | None, typer.Option(
        "--push", help="Push to REGISTRY/REPOSITORY:TAG (ECR logs in through boto3; other "
                       "registries through `docker login`'s config.json).")] = None,
    python: Annotated[str, typer.Option("--python", help="Python of the base image.")] = "3.11",
    base: Annotated[str | None, typer.Option(
        "--base", help="Base image (tag or @digest); default public.ecr.aws/lambda/python with "
                       "--python's version as the tag.")
    ] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="A tagsync.yaml to build in as <task root>/tagsync.yaml.")] = None,
    revision: Annotated[str | None, typer.Option(
        "--revision", envvar="GITHUB_SHA",
        help="Source commit for the label; default $GITHUB_SHA, else the checkout's HEAD.")] = None,
    extra: Annotated[list[str] | None, typer.Option(
        "--extra", help="tagsync extras to install (repeat); default aws and ssh.")] = None,
    requirement: Annotated[list[str] | None, typer.Option(
        "--requirement", "-r", help="Install these instead of tagsync's declared dependencies.")
    ] = None,
    find_links: Annotated[list[str] | None, typer.Option(
        "--find-links", help="A folder or page of wheels for pip (repeat).")] = None,
    index_url: Annotated[str | None, typer.Option("--index-url", help="pip's index.")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Only --find-links.")] = False,
    insecure: Annotated[list[str] | None, typer.Option(
        "--insecure", help="Registry host reached over plain HTTP (loopback hosts always are).")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Blob cache; default $XDG_CACHE_HOME/tagsync.")] = None,
    chunk_mb: Annotated[int, typer.Option("--chunk-mb", help="Upload blobs above this in chunks.")] = 16,
    json_out: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Build tagsync's Lambda image without Docker, reproducibly, and optionally push it.

    Takes the base image's layers as they are (fetched only if the target registry lacks them
    and cannot mount them), installs tagsync's dependencies with pip for the target platform
    (manylinux wheels only: nothing is compiled here), and adds one layer holding them,
    tagsync and the optional config. CMD is the tagsync handler; the base's environment stays.
    The same inputs give the same image digest, so a rebuild pushes nothing new.

    Example: tagsync build --arch arm64 --push 1234567890.dkr.ecr.eu-west-1.amazonaws.com/tagsync:v1
    """
    import json
    import os

    from tagsync.image.pipeline import (
        BlobCache,
        BuildSpec,
        PipOptions,
        Registries,
        Target,
        run_build,
        source_revision,
    )

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    spec = BuildSpec(
        target=Target(arch, python), base=base,
        requirements=tuple(requirement) if requirement else None,
        extras=tuple(extra) if extra else ("aws", "ssh"),
        files={"tagsync.yaml": config} if config else {},
        revision=revision or source_revision(Path.cwd()),
        source_url=_source_url(),
        pip=PipOptions(index_url=index_url, find_links=tuple(find_links or ()), no_index=no_index),
        epoch=int(epoch) if epoch and epoch.isdigit() else None,
    )
    cache = BlobCache(cache_dir) if cache_dir else None
    result = run_build(spec, push, cache=cache, registries=Registries(insecure=frozenset(insecure or ())),
                       chunk_size=chunk_mb << 20)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    built = result.built
    typer.echo(f"base   {built.base} ({built.base.digest[:19]})")
    typer.echo(f"layer  {built.layer.digest[:19]}  {built.layer.size / 1e6:.1f} MB")
    typer.echo(f"image  {built.digest}  ({spec.target.arch})")
    if result.push:
        r = result.push
        typer.echo(f"pushed {r.reference}: {len(r.uploaded)} blob(s) uploaded "
                   f"({r.bytes_uploaded / 1e6:.1f} MB), {len(r.mounted)} mounted, "
                   f"{len(r.skipped)} already there")


def _source_url() -> str | None:
    import os

    server, repo = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    return f"{server}/{repo}" if server and repo else None


@app.command(rich_help_panel=LAMBDA)
def rollback(repo: RepoOption, branch: BranchOption) -> None:
    """Point the alias `live` (what the schedule invokes) at the previously published version."""
    from tagsync.aws.teardown import rollback_environment

    before, after, name = rollback_environment(repo, branch)
    typer.echo(f"{name}: live moved from version {before} to {after}")


@app.command(rich_help_panel=LAMBDA)
def destroy(
    repo: RepoOption,
    branch: BranchOption,
    delete_repository: Annotated[bool, typer.Option(
        "--delete-repository", help="Also delete the ECR repository and its images.")] = False,
    keep_logs: Annotated[bool, typer.Option(
        "--keep-logs", help="Keep the function's CloudWatch log group.")] = False,
    plan: Annotated[bool, typer.Option("--plan", help="List what would be deleted.")] = False,
) -> None:
    """Remove the schedule, function, role and log group tagsync created for a branch.

    Only resources tagged as this repository's and branch's environment are deleted; others of
    the same name are listed as kept.
    """
    from tagsync.aws.teardown import destroy as do_destroy

    steps = do_destroy(repo, branch, delete_repository=delete_repository, keep_logs=keep_logs, dry=plan)
    for step in steps:
        typer.echo(f"  {step}")
    deleted = [s for s in steps if s.action == "delete"]
    typer.echo(("would delete" if plan else "deleted") + f" {len(deleted)} resource(s)"
               + ("" if delete_repository else "; the ECR repository is kept (--delete-repository)"))


@app.command("scaffold", rich_help_panel=LAMBDA)
def scaffold_(
    directory: Annotated[Path, typer.Argument(help="Root of the catalog repository.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    repo: Annotated[str, typer.Option(
        "--repo", envvar="GITHUB_REPOSITORY",
        help="owner/name of the catalog repository: the deploy role trusts only its workflows.")
    ] = "OWNER/REPO",
    branch: Annotated[list[str] | None, typer.Option(
        "--branch", help="Branches that deploy (repeat); default main and dev (--org: main).")] = None,
    account: Annotated[str, typer.Option("--account", help="AWS account id of the deploy role.")
                       ] = "123456789012",
    region: Annotated[str, typer.Option("--region", help="AWS region of the environments.")] = "eu-west-1",
    tagsync_source: Annotated[str | None, typer.Option(
        "--tagsync-source", help="Where the workflow and Dockerfile install tagsync from: a pip "
                                 "requirement pinned to a commit, e.g. "
                                 "git+https://github.com/OWNER/tagsync@<40-hex sha>.")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", help="OWNER/NAME@<40-hex sha> pinning a third-party action (repeat): "
                         "actions/checkout, actions/setup-python, aws-actions/configure-aws-credentials.")
    ] = None,
    org: Annotated[bool, typer.Option(
        "--org", help="Deploy the organisation's function instead (`tagsync deploy --org`): "
                      "writes a starting org.yaml instead of tagsync.yaml, deploys from one "
                      "branch (default main), and the role may also converge and destroy the "
                      "organisation's fan-out (its S3 bucket, state machine, schedule and their "
                      "two roles, by name).")] = False,
    organisation: Annotated[str | None, typer.Option(
        "--organisation", help="With --org: the GitHub organisation (names the fan-out's "
                               "resources); default the owner in --repo.")] = None,
) -> None:
    """Write tagsync.yaml, a Lambda Dockerfile, a GitHub Actions deploy workflow (OIDC), and the
    deploy role's trust and permission policies (least privilege) as JSON.

    Example (one repository): tagsync scaffold --repo acme/catalogs --account 123456789012

    Example (a whole organisation): tagsync scaffold --org --repo acme/platform --account 123456789012
    """
    from tagsync.scaffold import ScaffoldOptions, scaffold

    options = ScaffoldOptions.make(repo=repo, branches=tuple(branch) if branch else None, account=account,
                                   region=region, source=tagsync_source, actions=tuple(action or ()),
                                   org=org, organisation=organisation)
    written, kept = scaffold(directory, options, force=force)
    for rel in written:
        typer.echo(f"wrote {directory / rel}")
    for rel in kept:
        typer.echo(f"kept  {directory / rel} (exists; --force to overwrite)")
    for note in options.notes():
        typer.echo(f"note: {note}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tagsync {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from tagsync.http_policy import RedactingFilter

    for handler in logging.getLogger().handlers:  # a server's words quoting a secret: never logged
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class Stopped(BaseException):
    """SIGINT or SIGTERM, as an exception no `except Exception` (nor click's Ctrl-C handling)
    swallows: files being staged are removed on the way out (atomic.py)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


_GLOBAL = re.compile(r"^(-v+|--verbose)$")


def _global_first(argv: list[str]) -> list[str]:
    """`tagsync run -v` as `tagsync -v run`: -v/--verbose is the root's option, and a person
    adds it at the end of the line they just ran. Not after `--`, where arguments are data."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if _GLOBAL.match(a)]
    rest = [a for a in argv[:end] if not _GLOBAL.match(a)]
    return [*flags, *rest, *argv[end:]]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, map library errors to messages and exit codes; SIGINT and
    SIGTERM end it with 130/143 after removing whatever it had staged."""
    import signal
    import threading

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        args = _global_first(sys.argv[1:] if argv is None else argv)
        app(args=args, prog_name="tagsync")  # click reports usage errors itself (exit 2)
    except TagsyncError as exc:
        typer.echo(f"tagsync: error: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
    except Stopped as exc:
        typer.echo(f"tagsync: stopped by {signal.Signals(exc.signal_number).name}; nothing "
                   "staged is left behind, no file is half-written", err=True)
        return 128 + exc.signal_number
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
