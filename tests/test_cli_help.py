"""`--help` teaches: paragraphs reflow at any width (no sentence broken where the docstring's
line ended), types read as click users expect, and every command has an example or a list."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys

import pytest

COMMANDS = ["", "run", "refs", "init", "status", "get", "set", "deploy", "build", "rollback",
            "destroy", "scaffold", "update-trust-root"]


def render(command: str, columns: int) -> str:
    env = {"COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1", "PATH": "/usr/bin:/bin",
           # the code under test, not whatever the interpreter would find on its own
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    argv = [sys.executable, "-m", "tagsync.cli", *command.split(), "--help"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def prose(text: str) -> list[str]:
    """The description lines: above the first option/argument box."""
    head = text.split("╭", 1)[0]
    return [line.rstrip() for line in head.splitlines()]


@pytest.mark.parametrize("columns", [60, 120])
@pytest.mark.parametrize("command", COMMANDS)
def test_no_sentence_is_broken_before_the_line_is_full(command: str, columns: int) -> None:
    lines = prose(render(command, columns))
    for line, following in itertools.pairwise(lines):
        words = following.split()
        if not line.strip() or not words or following.lstrip().startswith(("•", "-", "Usage")):
            continue
        room = columns - 2 - len(line)
        assert len(words[0]) + 1 > room, f"{line!r} was broken before {words[0]!r} at {columns} columns"


@pytest.mark.parametrize("command", COMMANDS)
def test_types_read_as_click_users_expect(command: str) -> None:
    text = render(command, 120)
    assert not re.search(r"<(bool|int|str|float|path)>|list\[", text)
    assert re.search(r"--help +Show this message", text)  # a flag shows no type


def test_lambda_commands_have_their_own_panel() -> None:
    text = render("", 120)
    everyday, _, lambda_panel = text.partition("Running as a scheduled AWS Lambda function")
    for command in ("deploy", "build", "rollback", "destroy", "scaffold"):
        assert re.search(rf"│ {command} ", lambda_panel), command
        assert not re.search(rf"│ {command} ", everyday), command
    assert re.search(r"│ run ", everyday)


def test_build_help_names_its_default_base_image_in_full() -> None:
    assert "public.ecr.aws/lambda/python:." not in render("build", 120)


def test_run_help_speaks_of_every_shape_not_only_catalogs_by_paths() -> None:
    text = " ".join(render("run", 120).split())
    assert "placeholder" not in text and "pointer" not in text
    assert "pin_digests" in text and "--catalog" in text and "--image" in text
