"""The config file: what it can express, and errors that point at the offending line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsync.config import EXAMPLE, DigestFormat, load_config
from tagsync.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tagsync.yaml"
    p.write_text(text)
    return p


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, EXAMPLE))
    assert cfg.catalogs[0].digest_format is DigestFormat.image_id
    assert cfg.base_dir == tmp_path


def test_helm_values_shape(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """\
catalogs:
  - name: web
    file: values.yaml
    image: "{image.repository}"
    tag: .image.tag
    digest: .image.digest
"""))
    assert cfg.catalogs[0].entries == "."


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "catalogs:\n  - name: a\n    file: f\n    image: x\n"
                                    "    pairs: .tags\n    colour: blue\n"))
    assert err.value.line == 6
    assert err.value.message == 'unknown key colour in catalog "a"'


def test_config_errors_are_words_all_of_them_with_names_not_indexes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "catalogs:\n  - name: deploy\n    files: ['*.yaml']\n"
                                    "    pin_digest: true\n  - name: b\n    file: f\n"
                                    "    policy: {kind: semver, rnge: '^1'}\n"
                                    "registries:\n  - host: ghcr.io\n    usrname: bot\n"))
    text = str(err.value)
    assert (err.value.line, err.value.column) == (4, 17)
    assert text.splitlines() == [
        f"{tmp_path / 'tagsync.yaml'}:4:17: unknown key pin_digest in catalog \"deploy\" "
        "(did you mean pin_digests?)",
        f"{tmp_path / 'tagsync.yaml'}:7:34: unknown key rnge in `policy` in catalog \"b\" "
        "(did you mean range?)",
        f"{tmp_path / 'tagsync.yaml'}:10:14: unknown key usrname in registry \"ghcr.io\" "
        "(did you mean username?)"]
    assert "catalogs.0" not in text and "Extra inputs" not in text


def test_a_catalog_without_a_name_is_named_by_its_place(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"catalog 1 \(unnamed\): needs `name`"):
        load_config(write(tmp_path, "catalogs:\n  - files: ['*.yaml']\n"))


def test_missing_shape_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set either `pairs`"):
        load_config(write(tmp_path, "catalogs:\n  - name: a\n    file: f\n    image: x\n"))


def test_bad_path_is_reported_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "catalogs:\n  - name: a\n    file: f\n    image: x\n"
                                    "    pairs: .tags[oops]\n"))
    assert err.value.line == 5
    assert "neither an index nor a quoted key" in err.value.message


def test_bad_yaml_in_config_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "catalogs: [\n"))
    assert err.value.line is not None


def test_config_errors_exit_with_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tagsync.cli import main

    code = main(["run", "-c", str(write(tmp_path, "catalogs: []\n"))])
    assert code == 2
    assert "tagsync.yaml:1:" in capsys.readouterr().err


def test_missing_token_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    cfg = load_config(write(tmp_path, "catalogs:\n  - {name: a, file: f, image: x, pairs: .t}\n"
                                      "git: {repo: r, token_env: NOPE_TOKEN}\n"))
    assert cfg.git is not None
    with pytest.raises(ConfigError, match="NOPE_TOKEN is not set"):
        cfg.git.resolve_token()


POLICY_BASE = """\
catalogs:
  - name: a
    file: a.yml
    image: "x/{name}"
"""


@pytest.mark.parametrize(("extra", "message"), [
    ("    tag: .tag\n", "`tag` without `digest`"),
    ("    tag: .tag\n    digest: .d\n    policy: {kind: semver, range: '>=x'}\n", "not a version"),
    ("    pairs: .tags\n    new_tags: true\n", "`new_tags` needs a policy"),
    ("    tag: .tag\n    digest: .d\n    new_tags: true\n    policy: {kind: numeric}\n",
     "needs the `pairs` shape"),
    ("    pairs: .tags\n    policy: {kind: regex}\n", "needs `include`"),
])
def test_policy_mistakes_are_explained_with_their_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write(tmp_path, POLICY_BASE + extra))
    assert err.value.line is not None


def test_per_image_policies_take_the_first_matching_glob(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, POLICY_BASE + """\
    pairs: .tags
    new_tags: true
    policies:
      "x/py*": {kind: numeric}
      "*": {kind: semver}
"""))
    cat = config.catalogs[0]
    assert cat.policy_for("x/python").kind == "numeric"
    assert cat.policy_for("x/r").kind == "semver"


NEW_IMAGES = """\
catalogs:
  - name: kernels
    file: images.yml
    entries: .images[*]
    image: "lablup/kernel-{name}"
    pairs: .tags
    new_tags: true
    policy: {kind: newest}
    new_images:
      template: |
%s
"""


def test_a_new_entry_template_that_defines_an_anchor_is_refused_at_load(tmp_path: Path) -> None:
    """Every new entry would define the anchor again, which YAML 1.1 readers refuse: said before
    any run, with the template's line in the config."""
    template = "        name: ${name}\n        slots: &slots {cpu: 1}\n        tags: []"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, NEW_IMAGES % template))
    assert "must not define an anchor (&slots)" in err.value.message
    assert err.value.line == 10  # the `template:` key


def test_a_new_entry_template_without_anchors_loads(tmp_path: Path) -> None:
    template = "        name: ${name}\n        tags: [['${tag}', '${digest}']]"
    cfg = load_config(write(tmp_path, NEW_IMAGES % template))
    assert cfg.catalogs[0].new_images is not None


@pytest.mark.parametrize("extra, says", [
    ("    ignore: postgres\n", 'catalog "a": ignore: Input should be a valid list'),
    ("    policy: {kind: semver, within: patch}\n", "within: Input should be 'major' or 'minor'"),
    ("    policy: {kind: numeric, within: major}\n", "`within` applies to `kind: semver` only"),
])
def test_ignore_and_within_mistakes_are_said_in_words(tmp_path: Path, extra: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "catalogs:\n  - name: a\n    files: ['*.yaml']\n" + extra))
    assert says in err.value.message and err.value.line == 4


def test_a_hostile_catalog_name_is_never_echoed_and_a_flood_of_mistakes_is_cut(tmp_path: Path) -> None:
    keys = "".join(f"    bogus{i}: 1\n" for i in range(200))
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, 'catalogs:\n  - name: "x\\n\\u001b[31mfake"\n    files: [a]\n'
                          + keys))
    lines = str(err.value).splitlines()
    assert "\x1b" not in str(err.value) and "fake" not in str(err.value)
    assert lines[0].endswith("catalog 1: name: String should match pattern "
                             "'^[A-Za-z0-9][A-Za-z0-9._-]*$'")
    assert len(lines) == 51 and lines[-1] == "(and 151 more)"
