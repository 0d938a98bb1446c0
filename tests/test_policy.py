"""Tag policies choose which tag a catalog entry follows; pure functions over tag lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagsync.policy import Kind, Policy, Version, parse_range

TAGS = ["1.0.0", "1.2.0", "1.2.3", "1.10.0", "2.0.0-rc1", "2.0.0", "latest", "v1.11.0", "1.3"]


def test_same_admits_every_tag_and_changes_nothing():
    assert Policy().best(["3.6-ubuntu"]) == "3.6-ubuntu"


def test_semver_picks_the_highest_release():
    assert Policy(Kind.semver).best(TAGS) == "2.0.0"


def test_semver_orders_numerically_not_lexically():
    assert Policy(Kind.semver, range="<2").best(TAGS) == "v1.11.0"


def test_semver_range_with_two_bounds():
    assert Policy(Kind.semver, range=">=1.2 <1.10").best(TAGS) == "1.3"


def test_semver_caret_and_tilde():
    assert Policy(Kind.semver, range="^1.2").best(TAGS) == "v1.11.0"
    assert Policy(Kind.semver, range="~1.2").best(TAGS) == "1.2.3"


def test_semver_x_range_and_alternatives():
    assert Policy(Kind.semver, range="1.2.x || 1.0.0").admitted(TAGS) == ["1.0.0", "1.2.0", "1.2.3"]


def test_semver_skips_prereleases_by_default():
    assert "2.0.0-rc1" not in Policy(Kind.semver).admitted(TAGS)


def test_semver_prereleases_on_request_rank_below_their_release():
    ranked = Policy(Kind.semver, prerelease=True).admitted(TAGS)
    assert ranked[-2:] == ["2.0.0-rc1", "2.0.0"]


def test_semver_upper_bound_excludes_its_prereleases():
    assert Policy(Kind.semver, range="<2", prerelease=True).best(["1.9.0", "2.0.0-rc1"]) == "1.9.0"


def test_semver_more_specific_tag_wins_a_tie():
    assert Policy(Kind.semver).best(["1.2", "1.2.0"]) == "1.2.0"


def test_semver_with_a_capture_group_reads_the_version_out_of_the_tag():
    policy = Policy(Kind.semver, include=r"(.+)-alpine")
    assert policy.best(["3.9.1-alpine", "3.10.0-alpine", "3.11.0"]) == "3.10.0-alpine"


def test_regex_orders_by_capture_groups_numerically():
    policy = Policy(Kind.regex, include=r"(\d+)\.(\d+)-ubuntu")
    assert policy.best(["3.6-ubuntu", "3.10-ubuntu", "3.9-ubuntu", "3.11-debian"]) == "3.10-ubuntu"


def test_exclude_filters_any_kind():
    policy = Policy(Kind.semver, exclude=r"^1\.1")
    assert policy.best(["1.0.0", "1.1.0", "1.10.0"]) == "1.0.0"


def test_numeric():
    assert Policy(Kind.numeric).best(["9", "10", "build-11", "latest"]) == "10"


def test_newest_uses_creation_time_and_skips_undated_tags():
    created = {"a": datetime(2024, 1, 1, tzinfo=UTC), "b": datetime(2025, 1, 1, tzinfo=UTC)}
    assert Policy(Kind.newest).best(["a", "b", "c"], created) == "b"


def test_nothing_admitted_gives_none():
    assert Policy(Kind.semver, range=">=5").best(TAGS) is None


def test_newer_lists_only_tags_above_what_the_catalog_knows():
    policy = Policy(Kind.regex, include=r"(\d+)\.(\d+)-ubuntu")
    tags = ["3.5-ubuntu", "3.6-ubuntu", "3.7-ubuntu", "3.8-ubuntu", "latest"]
    assert policy.newer(tags, known=["3.6-ubuntu", "latest"]) == ["3.7-ubuntu", "3.8-ubuntu"]


def test_newer_with_nothing_known_lists_every_admitted_tag():
    assert Policy(Kind.numeric).newer(["2", "1", "x"], known=[]) == ["1", "2"]


@pytest.mark.parametrize(("policy", "message"), [
    (Policy(Kind.regex), "needs `include`"),
    (Policy(Kind.semver, range=">=banana"), "not a version"),
    (Policy(Kind.numeric, range=">=1"), "applies to"),
    (Policy(Kind.regex, include="(unclosed"), "invalid regular expression"),
])
def test_invalid_policies_say_why(policy, message):
    with pytest.raises(ValueError, match=message):
        policy.check()


def test_version_parse_rejects_non_versions():
    assert Version.parse("3.6-ubuntu") is not None  # a pre-release to semver
    assert Version.parse("latest") is None
    assert Version.parse("01.2.3") is None


def test_range_parse_accepts_commas():
    assert len(parse_range(">=1.2, <2")[0]) == 2


# --- within: major / minor, measured from each reference's own tag ---------------------------

def test_within_major_moves_a_tag_inside_its_major_only() -> None:
    policy = Policy(Kind.semver, within="major").anchored("v5.2.1")
    assert policy.best(["v5.2.1", "v5.4.0", "v6.0.0", "v5.10.1", "5.11.0"]) == "v5.10.1"


def test_within_keeps_the_way_the_tag_is_written() -> None:
    policy = Policy(Kind.semver, within="major").anchored("3.12-slim")
    tags = ["3.12-slim", "3.13-slim", "3.13", "3.13.1-slim", "4.0-slim", "3.14-slim-bookworm"]
    assert policy.best(tags) == "3.13-slim"


def test_within_minor_moves_only_the_patch() -> None:
    assert Policy(Kind.semver, within="minor").anchored("1.25.3").best(
        ["1.25.3", "1.25.9", "1.26.0"]) == "1.25.9"


def test_within_leaves_a_tag_that_is_no_version_on_its_tag() -> None:
    policy = Policy(Kind.semver, within="major").anchored("latest")
    assert policy.kind is Kind.same and "latest is no version" in policy.describe()


def test_within_is_for_semver_only() -> None:
    with pytest.raises(ValueError, match="`within` applies to `kind: semver` only"):
        Policy(Kind.regex, include="x", within="major").check()


def test_a_pre_release_never_counts_as_a_newer_version_within_the_line() -> None:
    policy = Policy(Kind.semver, within="major").anchored("2.1.0")
    assert policy.newer(["2.1.0", "2.2.0-rc1", "3.0.0"], ["2.1.0"]) == []


_PART = st.integers(0, 30).map(str)
_TAG = st.builds(lambda v, nums, suffix: v + ".".join(nums) + suffix,
                 st.sampled_from(["", "v"]), st.lists(_PART, min_size=1, max_size=3),
                 st.sampled_from(["", "-alpine", "-slim", "-rc1"]))


@settings(max_examples=200, deadline=None)
@given(anchor=_TAG, tags=st.lists(_TAG, max_size=25), within=st.sampled_from(["major", "minor"]))
def test_within_never_leaves_the_line_nor_the_way_the_tag_is_written(
        anchor: str, tags: list[str], within: str) -> None:
    """Whatever the registry lists: the chosen tag has the anchor's `v`, number of parts and
    suffix, its major (and minor), and is never a lower version than the anchor."""
    import re as regex

    shape = regex.compile(r"^(v?)(\d+(?:\.\d+)*)(.*)$")
    policy = Policy(Kind.semver, within=within).anchored(anchor)
    best = policy.best([anchor, *tags])
    assert best is not None  # the anchor itself is always in its own line
    a, b = shape.match(anchor), shape.match(best)
    assert a is not None and b is not None
    assert (a[1], a[3]) == (b[1], b[3])
    mine, theirs = [int(x) for x in a[2].split(".")], [int(x) for x in b[2].split(".")]
    assert len(mine) == len(theirs)
    keep = 1 if within == "major" else 2
    assert theirs[:keep] == mine[:keep]
    assert theirs >= mine


@pytest.mark.parametrize("text", ["1" + " " * 100_000 + "!", ">=1 " + "," * 100_000 + "!",
                                  "1" + ".x" * 100_000 + "y"])
def test_a_version_range_longer_than_any_real_one_is_refused_before_it_is_read(text: str) -> None:
    """A repository's config writes the range: a long run of spaces, commas or `.x` made its
    scan quadratic (minutes for a config-sized one)."""
    with pytest.raises(ValueError, match="a version range is at most 256 characters"):
        Policy(Kind.semver, range=text).check()


@pytest.mark.parametrize(("text", "admits", "refuses"), [
    ("1.x", "1.9.0", "2.0.0"), ("1.2.*", "1.2.7", "1.3.0"), ("1.X.x", "1.0.1", "0.9.0")])
def test_trailing_wildcards_still_widen_a_range(text: str, admits: str, refuses: str) -> None:
    policy = Policy(Kind.semver, range=text)
    assert policy.admitted([admits, refuses]) == [admits]
