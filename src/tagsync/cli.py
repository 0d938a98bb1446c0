"""The command line: the only place that turns typed errors into messages and exit codes.

Exit codes:
  0  success (including "nothing to change")
  1  error: nothing was written or published
  2  bad usage or configuration
  3  partial: what could be updated was published, some images failed (see the summary)
"""

from __future__ import annotations

import logging
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
    (`yes`, `01`, `1.10`, `a: b` ...); an existing quote style is kept.

    Example: tagsync set -i image-metadata.yml '.images[0].tags[1][1]' 0a1b2c3d4e5f
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


@app.command("run")
def run_(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Config file.", envvar="TAGSYNC_CONFIG")
    ] = Path("tagsync.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show the diff; write and push nothing.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
) -> None:
    """Look at the registries, update the catalogs where an image changed, and publish.

    Where the catalogs are read and written depends on the config:

    - `github:` reads and commits through GitHub's API (one verified commit per run; with
      `mode: pull-request`, one PR from `tagsync/<catalog>` kept up to date);
    - `git:` fetches the branch and pushes one commit with pure-Python Git (HTTPS or SSH);
    - neither: the files beside the config are edited in place.

    Entries whose digest is a placeholder or points at another tag are left alone.

    Exit codes: 0 done (or nothing to change), 1 error (nothing written), 2 bad config or
    usage, 3 partial (published what could be; some images failed).
    """
    import json

    from tagsync.config import load_config
    from tagsync.run import run

    cfg = load_config(config)
    progress_cb, finish = _progress(enabled=sys.stderr.isatty() and not json_out)
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


@app.command()
def status(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Config file.", envvar="TAGSYNC_CONFIG")
    ] = Path("tagsync.yaml"),
    json_out: Annotated[bool, typer.Option("--json", help="A JSON list of rows on stdout.")] = False,
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="A Markdown table, for a GitHub job summary or a PR comment.")] = False,
    no_ages: Annotated[bool, typer.Option(
        "--no-ages", help="Skip image creation times (saves two reads per image).")] = False,
) -> None:
    """Show every tracked image at a glance: current, candidate, how far behind, and why.

    One row per reference: where it is written (file:line), the tag and digest it holds, the
    policy, the tag and digest the policy would choose now, how many versions the policy ranks
    above the current one, the age of the current and of the candidate image, and the state
    (up to date, behind, left alone or failed, with the reason). It asks the registries what
    `run --dry-run` asks, plus each image's creation time, and writes nothing.

    Example: tagsync status --markdown >> "$GITHUB_STEP_SUMMARY"
    """
    import json

    from tagsync.config import load_config
    from tagsync.status import markdown as as_markdown
    from tagsync.status import plain
    from tagsync.status import status as survey

    rows = survey(load_config(config), ages=not no_ages)
    if json_out:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
    elif markdown:
        typer.echo(as_markdown(rows), nl=False)
    elif sys.stdout.isatty():
        _status_table(rows)
    else:
        typer.echo(plain(rows), nl=False)
    behind = sum(1 for r in rows if r.state == "behind")
    failed = sum(1 for r in rows if r.state == "failed")
    if not json_out and not markdown:
        typer.echo(f"{len(rows)} references: {behind} behind, {failed} failed, "
                   f"{sum(1 for r in rows if r.state == 'left alone')} left alone")


def _status_table(rows: Sequence[object]) -> None:
    """A coloured table for a person at a terminal."""
    from rich.console import Console
    from rich.table import Table

    from tagsync.status import COLUMNS, Row, cells

    table = Table(*COLUMNS, show_lines=False)
    colour = {"up to date": "green", "behind": "yellow", "waiting": "cyan", "failed": "red",
              "left alone": "dim"}
    for row in rows:
        assert isinstance(row, Row)
        table.add_row(*cells(row), style=colour.get(row.state))
    Console().print(table)


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
    (Kubernetes manifests, Helm values, kustomizations, compose files, GitHub Actions
    workflows, Dockerfiles, marker comments), so you can see what tagsync understands in a
    checkout before writing a config. With a config, it lists what the config's catalogs find,
    in the files as the target branch holds them.

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

        cfg = load_config(config or Path("tagsync.yaml"))
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
        typer.echo(f"{where}  {row['shape']}  {row['status']}  {row['value']}{reason}")
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
    Dockerfiles, marker comments), listing the files they are in. Nothing is asked of any
    registry. Review the policy and pin_digests lines, then try `tagsync run --dry-run`.

    Example: tagsync init . && tagsync refs -c tagsync.yaml
    """
    from tagsync.config import parse_config
    from tagsync.errors import ConfigError
    from tagsync.init import starting_config

    if not directory.is_dir():
        raise ConfigError("no such folder: init looks through a checkout and writes its "
                          "tagsync.yaml there" if not directory.exists() else
                          "not a folder: init looks through a checkout and writes its "
                          "tagsync.yaml there", file=str(directory))
    target = directory / "tagsync.yaml"
    if target.exists() and not force:
        raise ConfigError("already exists; pass --force to replace it", file=str(target))
    text, found = starting_config(str(directory))
    if not found.slots and not found.notes:
        raise ConfigError(f"no image reference found under {directory} (looked at YAML files and "
                          "Dockerfiles)")
    parse_config(text, str(target), directory)  # what we write must load
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", file=str(target)) from None
    typer.echo(f"wrote {target}: {len(found.slots)} tracked, {len(found.notes)} left alone")


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
    enabled: bool,
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A progress bar on stderr for long scans, only when a person is watching."""
    if not enabled:
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True, console=None)
    task = bar.add_task("querying registries", total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


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
        typer.echo(f"failed {f.image}:{f.tag} ({f.file}:{f.line}): {f.error}", err=True)
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
        verb = {"opened": "opened", "updated": "updated"}.get(summary.pull_request_action or "",
                                                              "left as it is")
        out(f"{verb} pull request #{summary.pull_request} {summary.url or ''}: {counts}")
    elif summary.pushed and summary.commit:
        out(f"committed {summary.commit[:12]} to {summary.target}: {counts}")
    elif summary.pushed:
        out(f"wrote {summary.target}: {counts}")
    else:
        out(f"nothing to change: {counts}")


# --- AWS: deploy, rollback, destroy; scaffold --------------------------------------------------

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


@app.command()
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
    from tagsync.aws.deploy import Deployer, DeploySpec
    from tagsync.config import load_config
    from tagsync.reference import parse_ecr_host

    refs: tuple[str, ...] = ()
    ecr: set[tuple[str, str]] = set()
    if config:
        cfg = load_config(config)
        refs = tuple(r for r in cfg.secret_refs() if r.startswith("aws-"))
        hosts = cfg.named_hosts() | _hosts_in_files(cfg)
        ecr = {found for h in hosts if (found := parse_ecr_host(h)) is not None}
    spec = DeploySpec(repo=repo, branch=branch, sha=sha, image=image, architecture=arch, memory=memory,
                      timeout=timeout, schedule=schedule, config_ref=config_ref,
                      secret_refs=refs, ecr_registries=tuple(sorted(ecr)), keep_images=keep_images,
                      environment=_pairs(env, "--env"), secret_environment=_pairs(secret_env, "--secret-env"),
                      builder=builder, base_image=base, python=python, config_file=config)
    deployer = Deployer(spec, dry=plan)
    steps: list[object] = list(deployer.deploy())  # the name is settled by deploy's first reads
    typer.echo(f"environment {deployer.name} ({repo} @ {branch}, {sha[:12]})")
    _print_steps(steps, plan)


@app.command()
def build(
    arch: Annotated[str, typer.Option("--arch", help="Lambda architecture: x86_64 or arm64.")] = "x86_64",
    push: Annotated[str | None, typer.Option(
        "--push", help="Push to REGISTRY/REPOSITORY:TAG (ECR logs in through boto3; other "
                       "registries through `docker login`'s config.json).")] = None,
    python: Annotated[str, typer.Option("--python", help="Python of the base image.")] = "3.11",
    base: Annotated[str | None, typer.Option(
        "--base", help="Base image (tag or @digest); default public.ecr.aws/lambda/python:<python>.")
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


@app.command()
def rollback(repo: RepoOption, branch: BranchOption) -> None:
    """Point the alias `live` (what the schedule invokes) at the previously published version."""
    from tagsync.aws.teardown import rollback_environment

    before, after, name = rollback_environment(repo, branch)
    typer.echo(f"{name}: live moved from version {before} to {after}")


@app.command()
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


@app.command("scaffold")
def scaffold_(
    directory: Annotated[Path, typer.Argument(help="Root of the catalog repository.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    repo: Annotated[str, typer.Option(
        "--repo", envvar="GITHUB_REPOSITORY",
        help="owner/name of the catalog repository: the deploy role trusts only its workflows.")
    ] = "OWNER/REPO",
    branch: Annotated[list[str] | None, typer.Option(
        "--branch", help="Branches that deploy (repeat); default main and dev.")] = None,
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
) -> None:
    """Write tagsync.yaml, a Lambda Dockerfile, a GitHub Actions deploy workflow (OIDC), and the
    deploy role's trust and permission policies (least privilege) as JSON."""
    from tagsync.scaffold import ScaffoldOptions, scaffold

    options = ScaffoldOptions.make(repo=repo, branches=tuple(branch or ("main", "dev")), account=account,
                                   region=region, source=tagsync_source, actions=tuple(action or ()))
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, map library errors to messages and exit codes."""
    try:
        app(args=argv, prog_name="tagsync")  # click reports usage errors itself (exit 2)
    except TagsyncError as exc:
        typer.echo(f"tagsync: error: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
