"""Text a registry, a repository, a CA bundle or pip's output controls is read in linear time.

Each rewritten reader is held to the regular expression it replaced (kept here, as the
specification of what is found) on ordinary input, and given a hostile input that the old
pattern took minutes over: a regression hangs the test visibly. Timings live in the audit's
scratch measurements, never in assertions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.errors import BuildError, MalformedAnswerError, RegistryAuthError
from tagsync.image.certs import hashed_folder, pem_blocks
from tagsync.image.deps import no_version
from tagsync.init import github_repo
from tagsync.reference import host_allowed, host_key, host_pattern, wildcard_match
from tagsync.registry.answers import next_link, parse_challenge, read_challenge

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _texts(*pieces: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=30).map("".join)


# --- WWW-Authenticate parameters (registry/answers.py) ---------------------------------------

OLD_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def _old_parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                            for m in OLD_CHALLENGE_PARAM.finditer(rest)}


@PROPERTY
@given(_texts("Bearer ", "realm", "a", "=", '"', ",", " ", "\t", "-", "é", "_1", "x=y"))
def test_challenge_parameters_are_what_the_old_pattern_found(header: str) -> None:
    assert parse_challenge(header) == _old_parse_challenge(header)


def test_a_challenge_of_one_long_word_without_a_value_is_read_at_once() -> None:
    # the old pattern retried the word from each of its letters: ~1.5 hours for this one
    assert parse_challenge("Bearer " + "a" * 1_000_000) == ("bearer", {})


def test_a_long_word_before_a_parameter_does_not_hide_it() -> None:
    header = 'Bearer ' + "a" * 200_000 + ' realm="https://auth.example/token"'
    assert parse_challenge(header) == ("bearer", {"realm": "https://auth.example/token"})


def test_a_registrys_wordy_challenge_fails_its_image_with_a_reason() -> None:
    with pytest.raises(RegistryAuthError, match="names no realm"):
        read_challenge("Bearer " + "a" * 8000, "https://registry.example", "app")


def test_a_challenge_or_a_link_over_the_header_bound_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(MalformedAnswerError, match="WWW-Authenticate header is not well-formed"):
        read_challenge("Bearer " + "a" * 9000, "https://registry.example", "app")
    with pytest.raises(MalformedAnswerError, match="Link header is not well-formed"):
        next_link("<" + "a" * 9000 + '>; rel="next"', "https://registry.example/v2/", "app")


# --- host globs (reference.py) ---------------------------------------------------------------

def _old_glob_admits(pattern: str, key: str) -> bool:
    name, colon, port = pattern.rpartition(":") if ":" in pattern else (pattern, "", "")
    regex = re.escape(name).replace(r"\*", "[^:]*").replace(r"\?", "[^:]")
    if colon and port == "*":
        regex += "(?::[0-9]+)?"
    elif colon:
        regex += re.escape(f":{port}")
    return re.fullmatch(regex, key) is not None


@PROPERTY
@given(glob=_texts("a", "b", ".", "*", "?", "-"), port=st.sampled_from(["", ":*", ":5000"]),
       host=_texts("a", "b", ".", "-", "ab"), host_port=st.sampled_from(["", ":5000", ":1", ":"]))
def test_host_globs_admit_what_the_old_pattern_admitted(glob: str, port: str, host: str,
                                                        host_port: str) -> None:
    pattern = (glob or "*") + port
    if "*" not in pattern and "?" not in pattern:
        pattern += "*"
    key = host_key(host + host_port)
    assert host_allowed(host + host_port, [pattern]) == _old_glob_admits(pattern, key)


@PROPERTY
@given(glob=_texts("a", "b", "*", "?"), text=_texts("a", "b", "ab"))
def test_wildcards_match_as_fnmatch_style_stars_and_question_marks(glob: str, text: str) -> None:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    assert wildcard_match(glob, text) == (re.fullmatch(regex, text, re.S) is not None)


def test_a_glob_of_many_stars_is_matched_at_once() -> None:
    # as a regular expression: every placement of 30 stars in 250 letters (longer than the universe)
    pattern = host_pattern("*a" * 30 + "*b.example")
    assert not host_allowed("a" * 250 + ".example", [pattern])
    assert host_allowed("a" * 250 + "b.example", [pattern])


# --- the GitHub remote of a checkout (init.py) -------------------------------------------------

OLD_GITHUB_REMOTE = re.compile(
    r"^\s*url\s*=\s*(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?\s*$", re.M)

_CONFIG_LINES = st.sampled_from([
    '[remote "origin"]', "\turl = https://github.com/o/n.git", "  url=git@github.com:o/n.git/",
    "url = ssh://git@github.com/o/.git", "\turl = https://github.com/o/n.git.git  ",
    "\turl = https://gitlab.com/o/n", "\tfetch = +refs/heads/*:refs/remotes/origin/*", "",
    "   ", "\t", "url = https://github.com/o/n x", "url = https://github.com/o/n\r", "# url",
])


@PROPERTY
@given(st.lists(_CONFIG_LINES, max_size=12))
def test_the_github_remote_is_what_the_old_pattern_found(tmp_path_factory: pytest.TempPathFactory,
                                                         lines: list[str]) -> None:
    text = "\n".join(lines)
    old = OLD_GITHUB_REMOTE.search(text)
    root = tmp_path_factory.mktemp("checkout")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(text, encoding="utf-8", newline="")
    assert github_repo(str(root)) == (old.group(1) if old else None)


def test_a_git_config_of_blank_lines_is_read_at_once(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("\n" * 65536 + "\turl = https://github.com/o/n\n")
    assert github_repo(str(tmp_path)) is None  # only the first 64 KiB are read


# --- PEM blocks of a CA bundle (image/certs.py) ------------------------------------------------

OLD_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n(.*?)-----END CERTIFICATE-----", re.S)
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


@PROPERTY
@given(_texts(BEGIN, END, "\n", "\r\n", "\r", "MIIB", "-", "x"))
def test_pem_blocks_are_what_the_old_pattern_found(bundle: str) -> None:
    data = bundle.encode()
    assert pem_blocks(data) == OLD_PEM.findall(data)


def test_a_bundle_of_beginnings_without_an_end_is_refused_as_holding_no_certificate() -> None:
    # the old pattern ran from each BEGIN to the bundle's end: hours for this one
    with pytest.raises(BuildError, match="holds no certificate"):
        hashed_folder(f"{BEGIN}\n".encode() * 200_000)


# --- pip's "could not find a version" (image/deps.py) -------------------------------------------

HEAD = "Could not find a version that satisfies the requirement "
OLD_NO_VERSION = re.compile(re.escape(HEAD) + r"([A-Za-z0-9][A-Za-z0-9._-]*)"
                            r"[^(\n]*\(from versions: ([^)]*)\)")


@PROPERTY
@given(_texts(HEAD, "pkg", "a", "-", " ", "(", ")", "(from versions: ", "1.0, 2.0", "\n", "C",
              HEAD + "pkg>=2 (from versions: 1.0, 2.0)", "(from versions: none)"))
def test_a_missing_version_is_what_the_old_pattern_found(stderr: str) -> None:
    old = OLD_NO_VERSION.search(stderr)
    assert no_version(stderr) == (old.groups() if old else None)


def test_pips_message_is_found_after_a_line_of_repeats() -> None:
    noise = (HEAD + "a") * 20_000  # one line, never naming versions: minutes for the old pattern
    stderr = noise + "\n" + HEAD + "numpy>=9 (from versions: 1.0, 2.0)\n"
    assert no_version(stderr) == ("numpy", "1.0, 2.0")
    assert no_version(noise) is None
