"""The config's regular expressions (`policy.include`/`exclude`, `verify.identity_regex`, an
image template under `new_images`) are bounded: what cannot compile quickly is refused when the
config is read, naming the key; what backtracks runs out of time, naming the key and the
pattern, and never stalls the run.

No assertion here is about time: small budgets and a counting clock are injected, and the
hostile patterns do exponential work, so they run out of any budget.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync import patterns
from tagsync.config import PolicyConfig, load_config
from tagsync.errors import ConfigError, PatternTimeoutError
from tagsync.patterns import Budget, Pattern, blame, check, measure, spending
from tagsync.policy import Kind, Policy

BACKTRACKS = r"^(a|a)*(\d+)$"  # exponential on `a…a-`
BAIT = "a" * 60 + "-"
ANY_BAIT = r"^(?:.|.|.|.)*[#%]$"  # exponential on any long text without `#` or `%`


def _config(tmp_path: Path, policy: str, extra: str = "") -> Path:
    (tmp_path / "x.yaml").write_text("images: []\n")
    path = tmp_path / "tagsync.yaml"
    path.write_text(f"catalogs:\n  - name: app\n    file: x.yaml\n    policy: {policy}\n{extra}")
    return path


# --- compiling: refused when the config is read ------------------------------------------------


@pytest.mark.parametrize(("pattern", "words"), [
    (r"((a{1000}){1000}){1000}", "too large once its counted repeats are unrolled"),
    (r"(?:a{1000}b){1000}", "too large"),
    (r"(?:x{400}|y{400}){400}", "too large"),  # an alternation repeated
    ("a{100001}", "too large"),
    (r"(?:\d{10}){10}" * 1001, "characters long"),
    ("|".join(f"tag{i}" for i in range(300)), "characters long"),  # a huge alternation
    ("v" * 1001, "characters long"),  # a long literal
    ("(" * 30 + "a" + ")" * 30, "nests groups 30 deep"),
])
def test_a_pattern_too_large_to_compile_quickly_is_refused_naming_the_key(
        tmp_path: Path, pattern: str, words: str) -> None:
    config = _config(tmp_path, "{kind: regex, include: '" + pattern + "'}")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "policy: include: " in caught.value.message
    assert words in caught.value.message
    assert caught.value.line == 4


def test_the_size_counts_each_repeat_around_an_atom() -> None:
    assert measure(r"((a{1000}){1000}){1000}")[0] > 10**9
    assert measure(r"(?:ab|cd){3}")[0] < 30
    assert measure(r"[0-9a-f]{64}") == (64, 0)


@pytest.mark.parametrize("pattern", [r"\{99999999\}", "[{99999999}]", "a\\{1000}{2}"])
def test_braces_that_repeat_nothing_count_as_characters(pattern: str) -> None:
    check(pattern)  # escaped, or inside a class: no repeat


@pytest.mark.parametrize("pattern", [
    r"\p{L}+",  # regex's Unicode properties
    r"(?V1)[[a-z]--[aeiou]]",  # regex's version 1, chosen inline
    r"(?r)abc",  # regex's reverse search
    r"(?P>name)",  # regex's recursion
])
def test_only_python_syntax_is_accepted(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        check(pattern)


@pytest.mark.parametrize("pattern", ["(?x) \\d+ # a comment\\\n", r"(?x:\d) +", r"(?ix-s:a)"])
def test_verbose_mode_is_refused(pattern: str) -> None:
    """`regex` reads a verbose pattern's comments otherwise than `re` (a `\\` ending one)."""
    with pytest.raises(ValueError, match="verbose mode"):
        check(pattern)


@pytest.mark.parametrize(("pattern", "same", "other"), [
    ("(?:tag){e<=2}", "tag{e<=2}", "tog"),  # characters in `re`, fuzzy matching in `regex`
    ("[[:alpha:]]", "a]", "b"),  # a class and a `]` in `re`, a POSIX class in `regex`
    ("x{}", "x{}", "x"),
    ("a{,}", "aaa", "a{,}"),  # `re` reads `{,}` as `*`
    ("(?#[)a", "a", "[a"),  # a comment holding a `[`
])
def test_what_python_reads_as_characters_stays_characters(pattern: str, same: str,
                                                          other: str) -> None:
    assert Pattern(pattern, "policy.include").fullmatch(same) is not None
    assert Pattern(pattern, "policy.include").fullmatch(other) is None


def test_a_pattern_made_without_a_config_is_checked_as_well() -> None:
    with pytest.raises(ConfigError, match=r"^policy\.include '\(a\{1000\}\)\{1000\}': .*too large"):
        Pattern("(a{1000}){1000}", "policy.include")


def test_identity_regex_is_checked_when_the_config_is_read(tmp_path: Path) -> None:
    config = _config(tmp_path, "{kind: semver}",
                     "    pin_digests: true\n    verify: {identity_regex: '" + "(?:x{500}){500}"
                     + "', issuer: 'https://i', trusted_root: root.json}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "identity_regex is not a regular expression tagsync accepts" in caught.value.message
    assert "too large" in caught.value.message


def test_an_image_template_too_long_for_new_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("images: []\n")
    template = "lablup/" + "-".join(f"{{f{i}}}" for i in range(80))
    (tmp_path / "tagsync.yaml").write_text(
        f"catalogs:\n  - name: app\n    file: x.yaml\n    image: 'ghcr.io/{template}'\n"
        "    entries: '.images[*]'\n    tag: tag\n    digest: digest\n"
        "    new_images: {template: 'name: ${name}'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "tagsync.yaml")
    assert "image template is matched as a regular expression" in caught.value.message


# --- meaning: Python's, as before ---------------------------------------------------------------

_PIECES = st.sampled_from([r"\d+", r"[a-z]+", r"\.", "-", "v?", r"(\d+)", r"([a-z]+)?", "(?:rc|beta)",
                           r"\w*", "alpine|slim", "^", "$", r"(?P<n>\d)", r"(?P=n)", r"\b", "[^-]+",
                           r"(?!x)", r"(?<=v)\d", "a{2,3}", "(?i)X"])
_TAGS = st.text(alphabet="0123456789abcvxX.-_rcbetalpinsm", max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=5), st.lists(_TAGS, min_size=1, max_size=5))
def test_a_pattern_means_what_python_s_re_says(pieces: list[str], tags: list[str]) -> None:
    text = "".join(pieces)
    try:
        expected = re.compile(text)
    except re.error:
        return  # Python refuses it: so does tagsync (`test_only_python_syntax_is_accepted`)
    pattern = Pattern(text, "policy.include")
    for tag in tags:
        for ours, theirs in ((pattern.fullmatch(tag), expected.fullmatch(tag)),
                             (pattern.search(tag), expected.search(tag))):
            assert (ours is None) == (theirs is None), (text, tag)
            if ours is not None and theirs is not None:
                assert ours.group(0) == theirs.group(0) and ours.groups() == theirs.groups()


_TOKENS = st.sampled_from(["a", "b", "1", "{", "}", ",", "2", "e<=1", "[", "]", ":", "^", "-", "(",
                           ")", "(?:", "|", "*", "+", "?", "\\", "\\d", "\\{", "[[:alpha:]]",
                           "(?#", ".", "$", "&&", "--", "~~", "\\N{DIGIT ONE}", "#", " ",
                           "\n", "(?x)", "(?x:", "(?i-x:"])


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=8),
       st.lists(st.text(alphabet="ab12{},:[]-e<=", max_size=6), min_size=1, max_size=4))
def test_any_pattern_python_accepts_means_the_same(tokens: list[str], texts: list[str]) -> None:
    """Brackets, braces and `regex`'s own operators in every arrangement: whatever Python's
    `re` compiles, tagsync matches as `re` does."""
    import warnings

    text = "".join(tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `re`'s "possible nested set" FutureWarning
        try:
            expected = re.compile(text)
        except (re.error, OverflowError):
            return
    try:
        pattern = Pattern(text, "policy.include")
    except ConfigError as exc:  # `regex` reads verbose comments otherwise: refused
        assert "verbose mode" in exc.message
        return
    for value in texts:
        ours, theirs = pattern.search(value), expected.search(value)
        assert (ours is None) == (theirs is None), (text, value)
        if ours is not None and theirs is not None:
            assert ours.group(0) == theirs.group(0), (text, value)


# --- matching: bounded per match and per run ---------------------------------------------------


def test_a_backtracking_match_runs_out_of_time_naming_the_key_and_the_pattern() -> None:
    with spending(Budget(seconds=1.0, per_match=0.02)), \
            pytest.raises(PatternTimeoutError) as caught:
        Pattern(BACKTRACKS, "policy.include").fullmatch(BAIT)
    assert caught.value.key == "policy.include" and caught.value.pattern == BACKTRACKS
    assert caught.value.message.startswith(f"policy.include {BACKTRACKS!r} took more than 0.02 s")
    assert "backtracks" in caught.value.message


def test_outside_any_run_a_match_is_still_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "MATCH_SECONDS", 0.02)
    with pytest.raises(PatternTimeoutError):
        Pattern(BACKTRACKS, "policy.include").fullmatch(BAIT)


def test_many_matches_just_under_the_limit_cannot_add_up_to_a_stall() -> None:
    """10,000 tags at 0.09 s each would be 15 minutes: the run's budget stops it (a clock that
    says each match took 0.09 s stands in for the CPU)."""
    ticks = itertools.count()
    budget = Budget(seconds=5.0, per_match=0.1, clock=lambda: next(ticks) * 0.09)
    pattern = Pattern(r"^v(\d+)$", "policy.include")
    matched = 0
    with spending(budget), pytest.raises(PatternTimeoutError) as caught:
        for i in range(10_000):
            pattern.fullmatch(f"v{i}")
            matched += 1
    assert matched < 100  # stopped by the budget, not by the end of the tags
    assert "used up their 5 s of CPU" in caught.value.message
    assert caught.value.key == "policy.include"


def test_thousands_of_patterns_cannot_add_their_compiles_up_to_a_stall() -> None:
    """Each compile is bounded by the size limit, and all of a run's compiles draw on its
    budget (a clock that says each took 0.09 s stands in for the CPU)."""
    ticks = itertools.count()
    budget = Budget(seconds=5.0, clock=lambda: next(ticks) * 0.09)
    compiled = 0
    with spending(budget), pytest.raises(PatternTimeoutError) as caught:
        for i in range(10_000):
            patterns.compile_pattern(f"^v{i}-(\\d+)$", "policy.include")
            compiled += 1
    assert compiled < 100
    assert "used up their 5 s of CPU (while compiling it)" in caught.value.message


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([r"^v(\d+)$", "rc", BACKTRACKS, r"(\d+)\.(\d+)"]),
                          st.sampled_from(["v1", "v22", "1.2", "rc1", BAIT, "a" * 12 + "-"]),
                          st.booleans()), max_size=40))
def test_a_run_s_matches_agree_with_re_until_its_budget_stops_them(
        calls: list[tuple[str, str, bool]]) -> None:
    """Whatever a run matches, in any order: each answer is `re`'s, or the run stops with
    PatternTimeoutError; no more matches are measured than the budget pays for (a clock that
    says each took 0.1 s), and none after the budget is spent."""
    ticks = itertools.count()
    budget = Budget(seconds=1.0, per_match=0.01, clock=lambda: next(ticks) * 0.1)
    measured = 0
    with spending(budget):
        for text, value, whole in calls:
            before = len(budget.memo)
            expected = (re.fullmatch if whole else re.search)(text, value) if value != BAIT else None
            try:
                pattern = patterns.compile_pattern(text, "policy.include")
                found = pattern.fullmatch(value) if whole else pattern.search(value)
            except PatternTimeoutError as exc:
                assert exc.pattern == text
                break
            measured += len(budget.memo) > before
            assert (found is None) == (expected is None) and (
                found is None or expected is None or found.groups() == expected.groups())
    assert budget.spent <= budget.seconds + 0.2  # at most the match (and compile) that ran out
    assert measured <= 10


def test_a_spent_budget_refuses_the_next_match_without_running_it() -> None:
    budget = Budget(seconds=0.5)
    budget.charge(0.5)
    with spending(budget), pytest.raises(PatternTimeoutError, match="used up"):
        Pattern("^x$", "policy.exclude").search("x")


def test_the_same_tag_is_matched_once_per_pattern() -> None:
    calls = itertools.count()
    budget = Budget(clock=lambda: float(next(calls)) * 0)
    pattern = Pattern(r"^(\d+)$", "policy.include")
    with spending(budget):
        for _ in range(50):
            assert pattern.fullmatch("42") is not None
    assert next(calls) == 2  # one match measured (start, end); the rest remembered


def test_what_a_run_remembers_is_bounded_and_goes_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "_MEMO", 10)
    budget = Budget()
    pattern = Pattern(r"^v(\d+)$", "policy.include")
    with spending(budget):
        for i in range(25):
            pattern.fullmatch(f"v{i}")
    assert 0 < len(budget.memo) <= 10
    assert not Budget().memo  # the next run starts afresh


def test_a_budget_reaches_the_tasks_and_threads_a_run_starts() -> None:
    budget = Budget(seconds=0.0)

    async def inside() -> None:
        await asyncio.to_thread(Pattern("^x$", "policy.include").fullmatch, "y")

    with spending(budget), pytest.raises(PatternTimeoutError, match="used up"):
        asyncio.run(inside())


def test_the_error_names_the_image_and_catalog_it_was_for() -> None:
    with spending(Budget(per_match=0.02)), pytest.raises(PatternTimeoutError) as caught, \
            blame("ghcr.io/acme/app", "catalog deploy"):
        Pattern(BACKTRACKS, "policy.include").fullmatch(BAIT)
    assert str(caught.value).startswith("ghcr.io/acme/app: catalog deploy: policy.include ")


# --- the policies use it -----------------------------------------------------------------------


def test_a_tag_policy_s_backtracking_include_fails_instead_of_stalling() -> None:
    """The organisation's old xfail: a repository's pattern meeting a tag made for it."""
    policy = PolicyConfig.model_validate({"kind": "regex", "include": BACKTRACKS}).to_policy()
    with spending(Budget(per_match=0.02)), pytest.raises(PatternTimeoutError) as caught:
        policy.admitted(["1", "22", BAIT])
    assert caught.value.key == "policy.include"


def test_a_backtracking_exclude_fails_too() -> None:
    policy = Policy(Kind.semver, exclude=ANY_BAIT)
    with spending(Budget(per_match=0.02)), pytest.raises(PatternTimeoutError) as caught:
        policy.best(["1.0.0", "1.2.0-" + "b" * 40])
    assert caught.value.key == "policy.exclude"


def test_ordinary_policies_choose_as_before() -> None:
    policy = Policy(Kind.regex, include=r"(\d+)\.(\d+)-ubuntu", exclude="rc")
    with spending(Budget()):
        assert policy.best(["3.9-ubuntu", "3.10-ubuntu", "3.11rc-ubuntu", "latest"]) == "3.10-ubuntu"


def test_new_images_matches_listed_names_through_the_run_s_budget() -> None:
    """`new_images` matches every listed repository name against the image template (fields
    side by side could backtrack; `regex` resists the shapes tried, and the budget bounds the
    rest): a run whose budget is spent stops there, naming the image and the catalog."""
    from tagsync.config import DigestFormat
    from tagsync.find.model import Discovery
    from tagsync.find.paths import repository_pattern
    from tagsync.plan import new_repositories
    from tagsync.registry import RepoList, RepoQuery

    registry, namespace, pattern, fields = repository_pattern("ghcr.io/acme/kernel-{name}")
    discovery = Discovery("kernels", "k.yaml", 0, (), 1, registry, namespace, pattern, fields,
                          frozenset(), "name: ${name}", "latest", (), Policy(), DigestFormat.full,
                          None)
    query = RepoQuery(registry, namespace)
    listing = RepoList(query, ("acme/kernel-a", "acme/kernel-b"))
    ticks = itertools.count()
    budget = Budget(seconds=1.0, clock=lambda: next(ticks) * 0.6)  # each compile or match: 0.6 s
    with spending(budget), pytest.raises(PatternTimeoutError) as caught:
        new_repositories([discovery], {query: listing})
    assert caught.value.key == "image" and caught.value.pattern == pattern
    assert str(caught.value).startswith("ghcr.io/acme/kernel-b: catalog kernels: image ")
