"""Tag policies end to end: a real registry's tags decide which tag an entry follows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tagsync.config import load_config
from tagsync.image.tiny import build_image
from tagsync.reference import short
from tagsync.run import run
from tests.servers.fixtures import RegistryServer


def setup(tmp_path: Path, registry: RegistryServer, catalog: str, catalog_cfg: str) -> Path:
    (tmp_path / "values.yaml").write_text(catalog)
    config = tmp_path / "tagsync.yaml"
    config.write_text(f"""\
catalogs:
  - name: apps
    file: values.yaml
{catalog_cfg}
registries:
  - host: "{registry.host}"
    url: {registry.url}
""")
    return config


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return "pol" + str(abs(hash(request.node.name)) % 10**8)


def test_semver_policy_moves_the_tag_and_its_digest_together(registry, tmp_path, ns):
    for tag in ("1.2.0", "1.3.1", "1.10.0", "2.0.0"):
        registry.push(f"{ns}/api", tag, f"{ns} api {tag}")
    catalog = f"""\
api:
  image: {registry.host}/{ns}/api   # the service
  tag: "1.2.0"
  digest: sha256:old
"""
    config = setup(tmp_path, registry, catalog, """\
    entries: .api
    image: "{image}"
    tag: .tag
    digest: .digest
    policy: {kind: semver, range: ">=1.2 <2"}
""")
    summary = run(load_config(config))
    new = registry.pushed[f"{ns}/api:1.10.0"]
    assert (tmp_path / "values.yaml").read_text() == catalog.replace('"1.2.0"', '"1.10.0"').replace(
        "sha256:old", new)
    assert [c.reason for c in summary.changes] == ["policy semver >=1.2 <2", "tag moved to 1.10.0"]


def test_tag_without_a_digest_follows_the_policy_alone(registry, tmp_path, ns):
    for tag in ("7", "9", "10"):
        registry.push(f"{ns}/worker", tag, f"{ns} worker {tag}")
    config = setup(tmp_path, registry, f"image: {registry.host}/{ns}/worker\ntag: 9  # pinned\n", """\
    entries: .
    image: "{image}"
    tag: .tag
    policy: {kind: numeric}
""")
    run(load_config(config))
    text = (tmp_path / "values.yaml").read_text()
    assert text.endswith('tag: "10"  # pinned\n')  # a string, as it was meant
    assert yaml.safe_load(text)["tag"] == "10"


def test_a_policy_nothing_matches_is_a_failure_and_the_file_is_untouched(registry, tmp_path, ns):
    registry.push(f"{ns}/api", "1.0.0", f"{ns} api")
    catalog = f"image: {registry.host}/{ns}/api\ntag: 1.0.0\ndigest: x1\n"
    config = setup(tmp_path, registry, catalog, """\
    entries: .
    image: "{image}"
    tag: .tag
    digest: .digest
    policy: {kind: semver, range: ">=5"}
""")
    summary = run(load_config(config))
    assert "no tag matches the policy (semver >=5)" in summary.failures[0].error
    assert (tmp_path / "values.yaml").read_text() == catalog


def test_newest_policy_reads_creation_times_from_image_configs(registry, tmp_path, ns):
    registry.push(f"{ns}/nightly", "b", build_image(f"{ns} b", created="2026-01-02T00:00:00Z"))
    registry.push(f"{ns}/nightly", "a", build_image(f"{ns} a", created="2026-03-01T00:00:00.123456789Z"))
    registry.push(f"{ns}/nightly", "c", build_image(f"{ns} c"))  # no creation time: not a candidate
    config = setup(tmp_path, registry, f"image: {registry.host}/{ns}/nightly\ntag: b\n", """\
    entries: .
    image: "{image}"
    tag: .tag
    policy: {kind: newest}
""")
    run(load_config(config))
    assert (tmp_path / "values.yaml").read_text().endswith("tag: a\n")


LABLUP = """\
images:
  - name: python
    tags:
      - ["latest",     ":3.6-ubuntu"]
      - ["3.6-ubuntu", "{d36}"]  # default
  - name: r
    tags:
      - ['3.5', '{r}']
"""


def lablup(registry, ns, *more_python_tags: str) -> tuple[str, dict[str, str]]:
    """The Lablup-shaped catalog with python 3.6-ubuntu and r 3.5 current; returns its text and
    the digests of the extra python tags pushed."""
    py36 = registry.push(f"{ns}/kernel-python", "3.6-ubuntu", f"{ns} 3.6")
    pushed = {t: short(registry.push(f"{ns}/kernel-python", t, f"{ns} {t}").digest)
              for t in more_python_tags}
    r = registry.push(f"{ns}/kernel-r", "3.5", f"{ns} r")
    return LABLUP.format(d36=short(py36.digest), r=short(r.digest)), pushed


def kernels(registry, ns: str, extra: str) -> str:
    return f"""\
    entries: .images[*]
    image: "{registry.host}/{ns}/kernel-{{name}}"
    pairs: .tags
    digest_format: short
""" + extra


def test_new_tags_are_appended_in_the_lists_style_and_nothing_else_moves(registry, tmp_path, ns):
    # 3.5-ubuntu is older (history, not new); 3.8-debian is not admitted
    before, d = lablup(registry, ns, "3.7-ubuntu", "3.10-ubuntu", "3.5-ubuntu", "3.8-debian")
    config = setup(tmp_path, registry, before, kernels(registry, ns, """\
    new_tags: true
    policies:
      "*/kernel-python": {kind: regex, include: '(\\d+)\\.(\\d+)-ubuntu'}
      "*": {kind: semver}
"""))
    summary = run(load_config(config))
    assert (tmp_path / "values.yaml").read_text() == before.replace(
        "  # default\n",
        f'  # default\n      - ["3.7-ubuntu", "{d["3.7-ubuntu"]}"]\n'
        f'      - ["3.10-ubuntu", "{d["3.10-ubuntu"]}"]\n')
    assert [c.kind for c in summary.changes] == ["append", "append"]
    again = run(load_config(config))
    assert again.changes == []  # the catalog is the state: a second run adds nothing


def test_an_ignored_image_gains_no_new_tags_either(registry, tmp_path, ns):
    before, _ = lablup(registry, ns, "3.7-ubuntu")
    config = setup(tmp_path, registry, before, kernels(registry, ns, """\
    new_tags: true
    policy: {kind: regex, include: '(\\d+)\\.(\\d+)-ubuntu'}
    ignore: ["*/kernel-python"]
"""))
    summary = run(load_config(config))
    assert summary.changes == [] and (tmp_path / "values.yaml").read_text() == before
    assert any("ignore: */kernel-python" in n.reason for n in summary.skipped)


def test_new_tags_are_off_by_default(registry, tmp_path, ns):
    before, _ = lablup(registry, ns, "3.7-ubuntu")
    config = setup(tmp_path, registry, before, kernels(registry, ns, """\
    policy: {kind: regex, include: '(\\d+)\\.(\\d+)-ubuntu'}
"""))
    assert run(load_config(config)).changes == []


BAIT = "a" * 60 + "-"  # a tag made for the pattern below


def test_a_backtracking_include_ends_the_run_with_a_config_error_naming_it(
        registry, tmp_path, ns, capsys: pytest.CaptureFixture[str]) -> None:
    """A pattern written to backtrack meets a tag made for it: the run stops with exit 2 and a
    message naming the image, the key and the pattern (no traceback); nothing is written."""
    from tagsync.cli import main

    registry.push(f"{ns}/api", "1", f"{ns} api 1")
    registry.push(f"{ns}/api", BAIT, f"{ns} api bait")
    catalog = f"image: {registry.host}/{ns}/api\ntag: '1'\ndigest: x1\n"
    config = setup(tmp_path, registry, catalog, """\
    entries: .
    image: "{image}"
    tag: .tag
    digest: .digest
    policy: {kind: regex, include: '^(a|a)*(\\d+)$'}
""")
    assert main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert (f"tagsync.yaml: {registry.host}/{ns}/api: catalog apps: "
            "policy.include '^(a|a)*(\\\\d+)$' took more") in err
    assert "Traceback" not in err, err
    assert (tmp_path / "values.yaml").read_text() == catalog


def test_status_bounds_the_same_pattern(registry, tmp_path, ns) -> None:
    from tagsync.errors import PatternTimeoutError
    from tagsync.status import status

    registry.push(f"{ns}/api", "1", f"{ns} api 1")
    registry.push(f"{ns}/api", BAIT, f"{ns} api bait")
    config = setup(tmp_path, registry, f"image: {registry.host}/{ns}/api\ntag: '1'\ndigest: x1\n", """\
    entries: .
    image: "{image}"
    tag: .tag
    digest: .digest
    policy: {kind: numeric, exclude: '^(a|a)*(\\d+)$'}
""")
    with pytest.raises(PatternTimeoutError, match=r"policy\.exclude"):
        status(load_config(config), ages=False)
