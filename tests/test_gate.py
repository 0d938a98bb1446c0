"""The gate: with `verify:` or `min_age`, nothing unverified or young reaches a file, whichever
way it would have been written (a slot's digest, an appended tag, a new repository, a
promotion). Each adversary is a real image on the local registry, signed (or not) here with a
fresh key, its Rekor entry made by a test log in a test trust root; each is refused or waits,
with its reason, the file byte-identical but for the other images, which are still updated."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tagsync.config import load_config
from tagsync.errors import ConfigError
from tagsync.image.tiny import build_image
from tagsync.run import run
from tests.servers.fixtures import RegistryServer, unique_namespace
from tests.servers.signed import SIMPLE_SIGNING, CosignLayer, SignedRegistry, simple_signing

pytestmark = pytest.mark.servers
OLD = "sha256:" + "0" * 64


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class RekorLog:
    """A Rekor stand-in: its key in a test trusted root, signing inclusion promises (SETs)."""

    key: ec.EllipticCurvePrivateKey
    root: Path

    @classmethod
    def new(cls, tmp_path: Path) -> RekorLog:
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        log = cls(key, tmp_path / "trusted_root.json")
        log.root.write_text(json.dumps({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "https://rekor.test", "hashAlgorithm": "SHA2_256",
                       "publicKey": {"rawBytes": b64(der), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                     "validFor": {"start": "2020-01-01T00:00:00Z"}},
                       "logId": {"keyId": b64(hashlib.sha256(der).digest())}}],
            "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []}))
        return log

    def bundle(self, payload: bytes, signature: bytes, public: bytes, when: int) -> str:
        """cosign's `dev.sigstore.cosign/bundle` annotation: a hashedrekord entry and its SET."""
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        body = b64(json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(public)}}}},
            separators=(",", ":")).encode())
        log_id = hashlib.sha256(der).hexdigest()
        promise = json.dumps({"body": body, "integratedTime": when, "logID": log_id, "logIndex": 7},
                             sort_keys=True, separators=(",", ":")).encode()
        return json.dumps({"SignedEntryTimestamp": b64(self.key.sign(promise, ec.ECDSA(hashes.SHA256()))),
                           "Payload": {"body": body, "integratedTime": when, "logID": log_id,
                                       "logIndex": 7}})


@dataclass
class Cosign:
    """`cosign sign --key`: a simple-signing payload signed with a fresh key, as a `.sig` tag."""

    key: ec.EllipticCurvePrivateKey
    pub: Path
    registry: SignedRegistry
    log: RekorLog | None = None

    @classmethod
    def new(cls, tmp_path: Path, registry: RegistryServer, log: RekorLog | None = None) -> Cosign:
        key = ec.generate_private_key(ec.SECP256R1())
        pub = tmp_path / "cosign.pub"
        pub.write_bytes(pem(key.public_key()))
        return cls(key, pub, SignedRegistry(registry.url, registry.host, tmp_path, registry.url), log)

    def sign(self, repo: str, digest: str, reference: str | None = None,
             logged: datetime | None = None) -> None:
        payload = simple_signing(digest, reference or f"{self.registry.host}/{repo}")
        signature = self.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        notes = {"dev.cosignproject.cosign/signature": b64(signature)}
        if logged is not None:
            assert self.log is not None
            notes["dev.sigstore.cosign/bundle"] = self.log.bundle(
                payload, signature, pem(self.key.public_key()), int(logged.timestamp()))
        self.registry.push_sig(repo, digest, [CosignLayer(SIMPLE_SIGNING, payload, notes)])

    def policy(self) -> str:
        root = f", trusted_root: '{self.log.root}'" if self.log is not None else ""
        return f"{{key: '{self.pub}'{root}}}"


def registries(registry: RegistryServer) -> str:
    return f"registries:\n  - host: '{registry.host}'\n    url: {registry.url}\n"


def pod(*images: str) -> str:
    return ("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n"
            + "".join(f"    - image: {i}\n" for i in images))


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    return unique_namespace("gate", request)


# --- 1. one gate for every write ------------------------------------------------------------


def test_a_tag_without_its_digest_under_verify_is_refused_at_load_at_the_key(tmp_path: Path) -> None:
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: apps\n    file: apps.yaml\n    image: 'ghcr.io/acme/{name}'\n"
                      "    entries: .apps[*]\n    tag: .tag\n    policy: {kind: semver}\n"
                      "    verify: {key: cosign.pub}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.line == 6
    assert 'catalog "apps": tag:' in caught.value.message and "add `digest:`" in caught.value.message


def test_a_new_images_template_without_a_digest_under_verify_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: k\n    file: k.yaml\n    image: 'ghcr.io/acme/k-{name}'\n"
                      "    entries: .images[*]\n    pairs: .tags\n    verify: {key: cosign.pub}\n"
                      "    new_images:\n      template: |\n        name: ${name}\n"
                      "        tags: [['${tag}', 'x']]\n")
    with pytest.raises(ConfigError, match=r"catalog \"k\": new_images: .*add `\$\{digest\}`") as caught:
        load_config(config)
    assert caught.value.line == 9


PAIRS = """\
catalogs:
  - name: kernels
    file: images.yaml
    image: "{image}"
    entries: .images[*]
    pairs: .tags
    policy: {policy}
    verify: {verify}
{extra}"""


def pairs_catalog(tmp_path: Path, registry: RegistryServer, image: str, text: str,
                  policy: str, verify: str, extra: str = "") -> Path:
    (tmp_path / "images.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text(PAIRS.format(image=image, policy=policy, verify=verify, extra=extra)
                      + registries(registry))
    return config


def test_an_unsigned_appended_tag_is_not_written_and_the_signed_images_still_are(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    cosign = Cosign.new(tmp_path, registry)
    web = registry.push(f"{ns}/web", "1.0", f"{ns} web 1.0").digest
    cosign.sign(f"{ns}/web", web)
    registry.push(f"{ns}/web", "1.1", f"{ns} web 1.1 unsigned")
    api = registry.push(f"{ns}/api", "1.0", f"{ns} api 1.0").digest
    cosign.sign(f"{ns}/api", api)
    text = ("images:\n  - name: web\n    tags:\n      - ['1.0', '" + OLD + "']\n"
            "  - name: api\n    tags:\n      - ['1.0', '" + OLD + "']\n")
    config = pairs_catalog(tmp_path, registry, f"{registry.host}/{ns}/{{name}}", text,
                           "{kind: semver}", cosign.policy(), "    new_tags: true\n")
    summary = run(load_config(config))
    assert (tmp_path / "images.yaml").read_text() == text.replace(OLD, web, 1).replace(OLD, api)
    [failure] = summary.failures
    assert (failure.image, failure.tag) == (f"{registry.host}/{ns}/web", "1.1")
    assert failure.error.startswith("not written, signature refused: no signature")


def test_an_unsigned_new_repository_is_not_added(registry: RegistryServer, tmp_path: Path,
                                                 ns: str) -> None:
    cosign = Cosign.new(tmp_path, registry)
    known = registry.push(f"{ns}/k-python", "latest", f"{ns} python").digest
    cosign.sign(f"{ns}/k-python", known)
    registry.push(f"{ns}/k-rogue", "latest", f"{ns} rogue unsigned")
    signed = registry.push(f"{ns}/k-julia", "latest", f"{ns} julia").digest
    cosign.sign(f"{ns}/k-julia", signed)
    text = f"images:\n  - name: python\n    tags:\n      - ['latest', '{known}']\n"
    config = pairs_catalog(tmp_path, registry, f"{registry.host}/{ns}/k-{{name}}", text, "{}",
                           cosign.policy(),
                           "    new_images:\n      template: |\n        name: ${name}\n"
                           "        tags:\n          - ['${tag}', '${digest}']\n")
    summary = run(load_config(config))
    after = (tmp_path / "images.yaml").read_text()
    assert after == text + f"  - name: julia\n    tags:\n      - ['latest', '{signed}']\n"
    [failure] = summary.failures
    assert failure.image == f"{registry.host}/{ns}/k-rogue"
    assert "signature refused: no signature" in failure.error


def test_a_signature_made_for_another_repository_is_refused_with_match_reference(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    """The payload's `docker-reference` names the repository the signer meant: a signature
    lifted from `evil.example/other` (same digest, same key) does not vouch for this one."""
    cosign = Cosign.new(tmp_path, registry)
    digest = registry.push(f"{ns}/web", "1.0", f"{ns} web").digest
    cosign.sign(f"{ns}/web", digest, reference="evil.example/other")
    (tmp_path / "pod.yaml").write_text(pod(f"{registry.host}/{ns}/web:1.0@{OLD}"))
    config = tmp_path / "tagsync.yaml"
    policy = cosign.policy().replace("}", ", match_reference: true}")
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n"
                      f"    verify: {policy}\n" + registries(registry))
    summary = run(load_config(config))
    [failure] = summary.failures
    assert "reference mismatch" in failure.error and "evil.example/other" in failure.error
    assert (tmp_path / "pod.yaml").read_text() == pod(f"{registry.host}/{ns}/web:1.0@{OLD}")
    config.write_text(config.read_text().replace(", match_reference: true", ""))
    assert not run(load_config(config)).failures  # cosign's own default: not compared


# --- 2. age is the digest's age --------------------------------------------------------------


def same_policy_pod(tmp_path: Path, registry: RegistryServer, text: str, policy: str,
                    verify: str = "") -> Path:
    (tmp_path / "pod.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n"
                      f"    policy: {policy}\n" + (f"    verify: {verify}\n" if verify else "")
                      + registries(registry))
    return config


def test_a_fresh_repush_of_the_current_tag_waits_under_a_moving_policy(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    registry.push(f"{ns}/web", "1.0", build_image(f"{ns} 1.0", created=ago(days=40)))
    old = registry.push(f"{ns}/web", "1.1", build_image(f"{ns} 1.1", created=ago(days=30))).digest
    registry.push(f"{ns}/web", "1.1", build_image(f"{ns} 1.1 again", created=ago(minutes=5)))
    other = registry.push(f"{ns}/api", "2.0", build_image(f"{ns} api", created=ago(days=9))).digest
    text = pod(f"{registry.host}/{ns}/web:1.1@{old}", f"{registry.host}/{ns}/api:2.0@{OLD}")
    config = same_policy_pod(tmp_path, registry, text, "{kind: semver, min_age: 3d}")
    summary = run(load_config(config))
    assert (tmp_path / "pod.yaml").read_text() == text.replace(OLD, other)
    [note] = [n for n in summary.skipped if n.line == 5]
    assert note.reason.startswith("waiting: new digest of 1.1 waits until ")
    assert "the image's `created`" in note.reason and "min_age 3d" in note.reason
    assert not summary.failures


def test_an_appended_tag_younger_than_min_age_waits(registry: RegistryServer, tmp_path: Path,
                                                    ns: str) -> None:
    old = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} 1.0", created=ago(days=40))).digest
    registry.push(f"{ns}/web", "1.1", build_image(f"{ns} 1.1", created=ago(hours=2)))
    text = f"images:\n  - name: web\n    tags:\n      - ['1.0', '{old}']\n"
    (tmp_path / "images.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text(PAIRS.replace("    verify: {verify}\n", "").format(
        image=f"{registry.host}/{ns}/{{name}}", policy="{kind: semver, min_age: 1d}",
        extra="    new_tags: true\n") + registries(registry))
    summary = run(load_config(config))
    assert (tmp_path / "images.yaml").read_text() == text
    [note] = [n for n in summary.skipped if n.tag == "1.1"]
    assert note.reason.startswith("waiting: new digest of 1.1 waits until ")


def test_a_new_repository_younger_than_min_age_waits(registry: RegistryServer, tmp_path: Path,
                                                     ns: str) -> None:
    known = registry.push(f"{ns}/k-py", "latest", build_image(f"{ns} py", created=ago(days=9))).digest
    registry.push(f"{ns}/k-new", "latest", build_image(f"{ns} new", created=ago(minutes=1)))
    text = f"images:\n  - name: py\n    tags:\n      - ['latest', '{known}']\n"
    (tmp_path / "images.yaml").write_text(text)
    config = tmp_path / "tagsync.yaml"
    config.write_text(PAIRS.replace("    verify: {verify}\n", "").format(
        image=f"{registry.host}/{ns}/k-{{name}}", policy="{min_age: 1d}",
        extra="    new_images:\n      template: |\n        name: ${name}\n"
              "        tags:\n          - ['${tag}', '${digest}']\n") + registries(registry))
    summary = run(load_config(config))
    assert (tmp_path / "images.yaml").read_text() == text
    [note] = summary.skipped
    assert note.image.endswith("/k-new") and "waits until" in note.reason


def test_a_transparency_log_time_gates_an_image_that_claims_to_be_old(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    """`created` is the publisher's word and says 2020; Rekor logged the signature an hour
    ago. The later clock gates, and the note says which one it was."""
    cosign = Cosign.new(tmp_path, registry, RekorLog.new(tmp_path))
    new = registry.push(f"{ns}/web", "1.0",
                        build_image(f"{ns} backdated", created="2020-01-01T00:00:00Z")).digest
    cosign.sign(f"{ns}/web", new, logged=datetime.now(UTC) - timedelta(hours=1))
    text = pod(f"{registry.host}/{ns}/web:1.0@{OLD}")
    config = same_policy_pod(tmp_path, registry, text, "{min_age: 1d}", cosign.policy())
    summary = run(load_config(config))
    assert (tmp_path / "pod.yaml").read_text() == text
    [note] = summary.skipped
    assert "by the transparency log (Rekor)" in note.reason and not summary.failures


def test_an_old_enough_signed_digest_is_written_and_the_explanation_names_the_clock(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    cosign = Cosign.new(tmp_path, registry, RekorLog.new(tmp_path))
    new = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} ok", created=ago(days=10))).digest
    cosign.sign(f"{ns}/web", new, logged=datetime.now(UTC) - timedelta(days=5, hours=1))
    config = same_policy_pod(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{OLD}"),
                             "{min_age: 1d}", cosign.policy())
    summary = run(load_config(config))
    [change] = summary.changes
    assert change.why is not None
    assert change.why.startswith("signed by key SHA256:")
    assert "in the transparency log since " in change.why and f"digest {new}" in change.why
    assert "aged 5d 1h by the transparency log (Rekor)" in change.why


def test_a_signature_logged_in_the_future_is_no_way_around_min_age(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    """The later of the clocks gates: a log time ahead of now (a clock set forward) can only
    make the digest younger."""
    cosign = Cosign.new(tmp_path, registry, RekorLog.new(tmp_path))
    new = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} f", created=ago(days=10))).digest
    cosign.sign(f"{ns}/web", new, logged=datetime.now(UTC) + timedelta(days=3))
    config = same_policy_pod(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{OLD}"),
                             "{min_age: 1d}", cosign.policy())
    summary = run(load_config(config))
    assert not summary.changes
    [note] = summary.skipped
    assert "in the future" in note.reason


# --- 5. rollback ------------------------------------------------------------------------------


def test_refuse_rollback_keeps_a_digest_built_after_the_one_offered(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    """A tag pointed back at an older (validly signed) build is refused when asked to."""
    cosign = Cosign.new(tmp_path, registry)
    current = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} cur", created=ago(days=2))).digest
    older = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} old", created=ago(days=90))).digest
    cosign.sign(f"{ns}/web", older)
    text = pod(f"{registry.host}/{ns}/web:1.0@{current}")
    config = same_policy_pod(tmp_path, registry, text, "{}", cosign.policy())
    assert not run(load_config(config), dry_run=True).failures  # off by default
    config.write_text(config.read_text().replace("    policy:", "    refuse_rollback: true\n    policy:"))
    summary = run(load_config(config))
    assert (tmp_path / "pod.yaml").read_text() == text
    [failure] = summary.failures
    assert failure.error.startswith("refuse_rollback: the new digest ")


def test_the_commit_message_keeps_verified_facts_apart_from_label_claims(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    from tagsync.config import load_config as load
    from tagsync.plan import Plan, commit_message

    cosign = Cosign.new(tmp_path, registry)
    labels = {"org.opencontainers.image.version": "9.9.9"}
    new = registry.push(f"{ns}/web", "1.0", build_image(f"{ns} l", labels=labels)).digest
    cosign.sign(f"{ns}/web", new)
    config = same_policy_pod(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{OLD}"),
                             "{}", cosign.policy())
    summary = run(load(config), dry_run=True)
    assert len(summary.changes) == 1
    message = commit_message(load(config), Plan(changes=summary.changes))
    verified, claimed = message.splitlines()[3:5]
    assert verified.startswith("  verified: signed by key SHA256:") and "version" not in verified
    assert claimed == "  claimed by the image's labels (not verified): version 9.9.9"


def test_a_platform_chosen_with_only_the_index_signed_says_so_and_how_to_verify_the_index(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    """cosign signs the index of a multi-arch image, not each platform (unless `--recursive`)."""
    cosign = Cosign.new(tmp_path, registry)
    index = registry.push(f"{ns}/web", "1.0", build_image(
        f"{ns} multi", platforms=("linux/amd64", "linux/arm64"))).digest
    cosign.sign(f"{ns}/web", index)
    (tmp_path / "pod.yaml").write_text(pod(f"{registry.host}/{ns}/web:1.0@{OLD}"))
    config = tmp_path / "tagsync.yaml"
    config.write_text("catalogs:\n  - name: app\n    file: pod.yaml\n    pin_digests: true\n"
                      f"    platform: linux/arm64\n    verify: {cosign.policy()}\n"
                      + registries(registry))
    summary = run(load_config(config))
    [failure] = summary.failures
    assert "the linux/arm64 manifest" in failure.error and f"its index {index} is" in failure.error
    assert "remove `platform:`" in failure.error and "--recursive" in failure.error
    assert (tmp_path / "pod.yaml").read_text() == pod(f"{registry.host}/{ns}/web:1.0@{OLD}")


def test_a_signed_payload_of_another_type_is_refused_as_such_not_as_a_digest_mismatch(
        registry: RegistryServer, tmp_path: Path, ns: str) -> None:
    cosign = Cosign.new(tmp_path, registry)
    digest = registry.push(f"{ns}/web", "1.0", f"{ns} web").digest
    doc = json.loads(simple_signing(digest, f"{registry.host}/{ns}/web"))
    doc["critical"]["type"] = "atomic container signature"
    payload = json.dumps(doc).encode()
    notes = {"dev.cosignproject.cosign/signature": b64(cosign.key.sign(payload, ec.ECDSA(hashes.SHA256())))}
    cosign.registry.push_sig(f"{ns}/web", digest, [CosignLayer(SIMPLE_SIGNING, payload, notes)])
    config = same_policy_pod(tmp_path, registry, pod(f"{registry.host}/{ns}/web:1.0@{OLD}"), "{}",
                             cosign.policy())
    [failure] = run(load_config(config)).failures
    assert failure.error.startswith("not written, signature refused: wrong payload type: ")
    assert "'atomic container signature'" in failure.error


def test_a_change_that_writes_no_digest_under_verify_is_refused_whatever_produced_it() -> None:
    """The runtime backstop of the load-time check: a tag moved without its digest (any finder,
    any shape) has nothing to verify, so it is not written."""
    from tagsync.gate import Facts, Rule, gate
    from tagsync.plan import Change, Plan

    moved = Change("app", "values.yaml", 0, ".image.tag", 3, "ghcr.io/acme/web", "1.0", "1.0",
                   "1.1", "policy semver", slot="values.yaml:0:3")
    final = gate(Plan(changes=[moved]), lambda c: Rule(verify="a policy"), Facts(), datetime.now(UTC))
    assert not final.changes
    [failure] = final.failures
    assert failure.error.startswith("not written: `verify` has nothing to check")
