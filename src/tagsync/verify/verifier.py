"""`Verifier.verify(fetch, image, digest)`: may this digest be written under this policy?

Where signatures live: cosign's `sha256-<hex>.sig` tag (a manifest whose layers are
simple-signing payloads with the signature, and for keyless the certificate, chain and Rekor SET,
in annotations), and Sigstore bundles attached as OCI 1.1 referrers of the digest (found through
the referrers API, or the `sha256-<hex>` tag where the registry has none). Any one signature
that satisfies the policy accepts the digest; otherwise the verdict names the failure that got
furthest. Nothing the registry serves can raise past here except the registry client's own
errors (unreachable, refused, not found): bytes are checked against their digests, and
unreadable signatures are findings, not tracebacks.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tagsync.errors import (
    ConfigError,
    DeadlineError,
    ImageNotFoundError,
    PatternTimeoutError,
    RegistryError,
)
from tagsync.reference import validate_digest
from tagsync.registry.manifest import INDEX_TYPES, MANIFEST_TYPES
from tagsync.secrets import SecretRef, resolve
from tagsync.verify.fetch import Fetch
from tagsync.verify.policy import VerifyPolicy
from tagsync.verify.trust import (
    IdentityRule,
    PublicKey,
    TrustError,
    TrustRoot,
    hashedrekord,
    key_id,
    load_trust_root,
    verify_chain,
    verify_promise,
    verify_sct,
    verify_set,
    verify_with_key,
)
from tagsync.verify.verdict import Finding, Reason, Verdict, from_findings

log = logging.getLogger(__name__)

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
REKOR_ANNOTATION = "dev.sigstore.cosign/bundle"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
IN_TOTO = "application/vnd.in-toto+json"
# A hostile registry could list thousands of "signatures" or point at huge blobs: cosign adds one
# layer per signature (payloads are ~300 bytes, bundles ~10 kB), so these bounds cost nothing real.
MAX_SIGNATURES = 16
MAX_SIGNATURE_BYTES = 1 << 20
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError)


def _is_message_signature(raw: bytes) -> bool:
    try:
        doc = json.loads(raw)
    except (*_MALFORMED, RecursionError):
        return False  # verify_bundle reports it
    return isinstance(doc, dict) and "messageSignature" in doc


def _is_image_manifest(data: bytes | None, digest: str) -> bool:
    """Are these the bytes of `digest`, and an image manifest or index (schema 2)?"""
    if data is None or not _matches(data, digest):
        return False
    try:
        doc = json.loads(data)
    except (*_MALFORMED, RecursionError):
        return False
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        return False
    declared = doc.get("mediaType")
    if declared is not None and declared not in MANIFEST_TYPES | INDEX_TYPES:
        return False
    return (isinstance(doc.get("manifests"), list)
            or (isinstance(doc.get("layers"), list) and isinstance(doc.get("config"), dict)))


def _matches(data: bytes, digest: str) -> bool:
    """Are these the bytes `digest` names (sha256 or sha512)?"""
    algorithm, _, expected = digest.partition(":")
    return algorithm in ("sha256", "sha512") and hashlib.new(algorithm, data).hexdigest() == expected


def _too_big(descriptor: dict[str, Any]) -> bool:
    size = descriptor.get("size")
    return not isinstance(size, int) or size > MAX_SIGNATURE_BYTES


def _tag_of(digest: str) -> str:
    """cosign's and the OCI tag schema's name for things about `digest`: `sha256-<hex>`."""
    return digest.replace(":", "-")


def load_public_key(ref: str, base_dir: Path | None) -> PublicKey:
    """The policy's key from inline PEM, a secret reference, or a file path."""
    if ref.lstrip().startswith("-----BEGIN"):
        pem, where = ref, "verify.key"
    else:
        try:
            secret = SecretRef.parse(ref)
        except ValueError:
            path = Path(ref).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            secret = SecretRef("file", str(path))
        pem = resolve(secret, "verify.key", base_dir) or ""
        where = str(secret) if secret.scheme != "file" else secret.name
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise ConfigError("verify.key is not a PEM public key", file=where) from None
    if not isinstance(key, PublicKey):
        raise ConfigError(f"verify.key: {type(key).__name__} keys are not supported "
                          "(ECDSA, RSA or Ed25519)", file=where)
    return key


class Verifier:
    """One policy, its key or trust root read once, verifying any number of digests."""

    def __init__(self, policy: VerifyPolicy, base_dir: Path | None = None) -> None:
        self.policy = policy
        self.key = load_public_key(policy.key, base_dir) if policy.key is not None else None
        self.root_path: Path | None = None
        self.root: TrustRoot | None = None
        if policy.trusted_root:
            path = Path(policy.trusted_root).expanduser()
            self.root_path = path if path.is_absolute() or base_dir is None else base_dir / path
            self.root = load_trust_root(self.root_path)
        self.rule = (IdentityRule(policy.issuer or "", policy.identity, policy.identity_regex)
                     if policy.keyless else None)
        self._sigstore: Any = None  # sigstore's Verifier, made on the first bundle

    # --- the entry point ------------------------------------------------------------------------

    async def verify(self, fetch: Fetch, image: str, digest: str) -> Verdict:
        validate_digest(digest, image)
        if self.policy.multi_arch == "platforms":
            children = await self._platforms(fetch, image, digest)
            if children:
                verdicts = await asyncio.gather(*(self._verify_one(fetch, image, d)
                                                  for d, _ in children))
                named = [(name, v) for (_, name), v in zip(children, verdicts, strict=True)]
                failed = [(name, v) for name, v in named if not v.ok]
                if failed:
                    name, first = failed[0]
                    return Verdict(image, digest, False, first.reason,
                                   f"platform {name} ({first.digest}): {first.detail}",
                                   platforms=tuple(verdicts))
                return Verdict(image, digest, True, Reason.ok,
                               f"all {len(verdicts)} platform manifests are signed",
                               verdicts[0].accepted, platforms=tuple(verdicts))
        return await self._verify_one(fetch, image, digest)

    async def _platforms(self, fetch: Fetch, image: str, digest: str) -> list[tuple[str, str]]:
        """(digest, platform) of each runnable manifest when `digest` is an index, else []."""
        got = await fetch.manifest(image, digest)
        if got is None:
            raise ImageNotFoundError(f"manifest {digest} not found", image=image)
        body = got[0]
        if not _matches(body, digest):
            raise RegistryError(f"the registry answered a manifest that is not {digest}", image=image)
        try:
            doc = json.loads(body)
            entries = doc.get("manifests") if isinstance(doc, dict) else None
            if not isinstance(entries, list):
                return []
            out = []
            for m in entries:
                platform = m.get("platform") or {}
                annotations = m.get("annotations") or {}
                if (annotations.get("vnd.docker.reference.type") == "attestation-manifest"
                        or platform.get("os") == "unknown"):
                    continue  # buildx's provenance/SBOM entries are not platforms
                name = "/".join(str(platform[k]) for k in ("os", "architecture", "variant")
                                if platform.get(k)) or "unknown"
                out.append((validate_digest(str(m["digest"]), image), name))
            return out
        except _MALFORMED as exc:
            raise RegistryError(f"the index {digest} is unreadable: {exc}", image=image) from None

    async def _verify_one(self, fetch: Fetch, image: str, digest: str) -> Verdict:
        findings = await self._cosign_signatures(fetch, image, digest)
        if not any(f.reason is Reason.ok for f in findings):
            findings += await self._bundles(fetch, image, digest)
        verdict = from_findings(image, digest, findings)
        log.info("verify %s@%s: %s", image, digest, verdict.reason)
        return verdict

    # --- cosign's `sha256-<hex>.sig` ---------------------------------------------------------------

    async def _cosign_signatures(self, fetch: Fetch, image: str, digest: str) -> list[Finding]:
        tag = _tag_of(digest) + ".sig"
        got = await fetch.manifest(image, tag)
        if got is None:
            return []
        try:
            layers = json.loads(got[0])["layers"]
            if not isinstance(layers, list):
                raise TypeError("layers is not a list")
        except _MALFORMED as exc:
            return [Finding("cosign", Reason.malformed, f"the .sig manifest is unreadable: {exc}",
                            location=tag)]
        findings: list[Finding] = []
        for i, layer in enumerate(layers):
            where = f"{tag} layer {i}"
            if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
                continue
            if len(findings) == MAX_SIGNATURES:
                log.warning("%s: only the first %d signatures in %s are read", image,
                            MAX_SIGNATURES, tag)
                break
            if _too_big(layer):
                findings.append(Finding("cosign", Reason.malformed,
                                        f"the payload's size is not a number up to {MAX_SIGNATURE_BYTES}",
                                        location=where))
                continue
            try:
                layer_digest = validate_digest(str(layer["digest"]), image)
                annotations = {str(k): str(v) for k, v in (layer.get("annotations") or {}).items()}
            except (*_MALFORMED, RegistryError) as exc:
                findings.append(Finding("cosign", Reason.malformed, f"bad layer descriptor: {exc}",
                                        location=where))
                continue
            payload = await _blob(fetch, image, layer_digest)
            if payload is None or not _matches(payload, layer_digest):
                findings.append(Finding("cosign", Reason.malformed,
                                        "the payload blob is missing or does not match its digest",
                                        location=where))
                continue
            check = self._keyless_sig if self.policy.keyless else self._key_sig
            try:
                finding = check(payload, annotations, digest, image)
            except TrustError as exc:
                finding = Finding("cosign-keyless" if self.policy.keyless else "cosign-key",
                                  Reason[exc.reason], str(exc))
            except _MALFORMED as exc:
                finding = Finding("cosign", Reason.malformed, f"unreadable signature: {exc}")
            findings.append(Finding(finding.form, finding.reason, finding.detail, finding.signer,
                                    finding.signed_at, where))
        return findings

    def _key_sig(self, payload: bytes, annotations: dict[str, str], digest: str,
                 image: str) -> Finding:
        assert self.key is not None
        signer = f"key {key_id(self.key)}"
        raw = annotations.get(SIGNATURE_ANNOTATION)
        if raw is None:
            return Finding("cosign-key", Reason.malformed, "the layer has no signature annotation")
        signature = base64.b64decode(raw, validate=True)
        if not verify_with_key(self.key, signature, payload):
            return Finding("cosign-key", Reason.bad_signature,
                           f"the signature does not verify with {signer}")
        mismatch = _payload_mismatch(payload, digest, image if self.policy.match_reference else None)
        if mismatch:
            return Finding("cosign-key", mismatch[0], mismatch[1], signer)
        signed_at = None
        bundle = annotations.get(REKOR_ANNOTATION)
        if bundle is not None and self.root is not None:
            entry = verify_set(self.root, bundle)
            _same_entry(entry, payload, signature)
            if _spki(entry.public_material) != _spki_of(self.key):
                raise TrustError("bad_tlog", "the Rekor entry was made with another key")
            signed_at = entry.integrated_time
        elif bundle is not None:
            log.debug("Rekor entry not checked: the policy has no trusted_root")
        elif self.policy.require_tlog:
            return Finding("cosign-key", Reason.missing_tlog,
                           "the policy requires a Rekor entry and the signature has none", signer)
        return Finding("cosign-key", Reason.ok, f"signed with {signer}", signer, signed_at)

    def _keyless_sig(self, payload: bytes, annotations: dict[str, str], digest: str,
                     image: str) -> Finding:
        assert self.root is not None and self.rule is not None
        raw, pem = annotations.get(SIGNATURE_ANNOTATION), annotations.get(CERTIFICATE_ANNOTATION)
        if raw is None:
            return Finding("cosign-keyless", Reason.malformed, "the layer has no signature annotation")
        if pem is None:
            return Finding("cosign-keyless", Reason.wrong_identity,
                           "signed with a plain key, not a certificate; the policy wants an identity")
        bundle = annotations.get(REKOR_ANNOTATION)
        if bundle is None:
            return Finding("cosign-keyless", Reason.missing_tlog,
                           "no Rekor entry: the certificate's time of use cannot be established")
        signature = base64.b64decode(raw, validate=True)
        leaf = x509.load_pem_x509_certificate(pem.encode())
        entry = verify_set(self.root, bundle)
        _same_entry(entry, payload, signature)
        logged = x509.load_pem_x509_certificate(entry.public_material)
        if logged.public_bytes(serialization.Encoding.DER) != leaf.public_bytes(serialization.Encoding.DER):
            raise TrustError("bad_tlog", "the Rekor entry was made with another certificate")
        chain = verify_chain(self.root, leaf, entry.integrated_time)
        verify_sct(self.root, leaf, chain[1])
        if not verify_with_key(leaf.public_key(), signature, payload):  # type: ignore[arg-type]
            return Finding("cosign-keyless", Reason.bad_signature,
                           "the signature does not verify with the certificate's key")
        identity = self.rule.check(leaf)
        signer = f"{identity} (issuer {self.rule.issuer})"
        mismatch = _payload_mismatch(payload, digest, image if self.policy.match_reference else None)
        if mismatch:
            return Finding("cosign-keyless", mismatch[0], mismatch[1], signer)
        return Finding("cosign-keyless", Reason.ok, f"signed by {signer}", signer,
                       entry.integrated_time)

    # --- Sigstore bundles as OCI 1.1 referrers ------------------------------------------------

    async def _bundles(self, fetch: Fetch, image: str, digest: str) -> list[Finding]:
        try:
            descriptors = await fetch.referrers(image, digest, BUNDLE_TYPE)
        except DeadlineError:
            raise  # the run's time or the pull allowance: not an answer about this image
        except RegistryError as exc:
            # Off-spec (a registry without the API answers 404): read the tag schema, as for a
            # registry without it, rather than lose what the `.sig` tag showed.
            log.info("%s: the referrers API failed (%s); reading the tag schema", image,
                     exc.message)
            descriptors = None
        where = "referrers API"
        if descriptors is None:  # no referrers API: the tag schema (OCI distribution 1.1)
            where = f"tag {_tag_of(digest)}"
            got = await fetch.manifest(image, _tag_of(digest))
            descriptors = []
            if got is not None:
                try:
                    entries = json.loads(got[0]).get("manifests") or []
                    descriptors = [d for d in entries if isinstance(d, dict)]
                except _MALFORMED as exc:
                    return [Finding("sigstore-bundle", Reason.malformed,
                                    f"the referrers index is unreadable: {exc}", location=where)]
        findings: list[Finding] = []
        for d in descriptors:
            if not str(d.get("artifactType", "")).startswith(BUNDLE_PREFIX):
                continue  # SBOMs, other attestations: not ours to judge
            if len(findings) == MAX_SIGNATURES:
                log.warning("%s: only the first %d bundles of %s are read", image, MAX_SIGNATURES,
                            digest)
                break
            try:
                ref_digest = validate_digest(str(d["digest"]), image)
            except (*_MALFORMED, RegistryError):
                continue
            location = f"referrer {ref_digest} ({where})"
            finding = await self._bundle(fetch, image, digest, ref_digest)
            findings.append(Finding(finding.form, finding.reason, finding.detail, finding.signer,
                                    finding.signed_at, location))
        return findings

    async def _bundle(self, fetch: Fetch, image: str, digest: str, ref_digest: str) -> Finding:
        got = await fetch.manifest(image, ref_digest)
        if got is None or not _matches(got[0], ref_digest):
            return Finding("sigstore-bundle", Reason.malformed, "the referrer manifest is missing "
                                                                "or does not match its digest")
        try:
            manifest = json.loads(got[0])
            subject = manifest.get("subject") or {}
            if subject.get("digest") != digest:
                return Finding("sigstore-bundle", Reason.digest_mismatch,
                               f"the referrer's subject is {subject.get('digest')}, not {digest}")
            layer = next(layer for layer in manifest["layers"]
                         if str(layer.get("mediaType", "")).startswith(BUNDLE_PREFIX))
            if _too_big(layer):
                return Finding("sigstore-bundle", Reason.malformed,
                               f"the bundle's size is not a number up to {MAX_SIGNATURE_BYTES}")
            blob_digest = validate_digest(str(layer["digest"]))
        except (*_MALFORMED, StopIteration, RegistryError) as exc:
            return Finding("sigstore-bundle", Reason.malformed,
                           f"the referrer manifest has no readable bundle layer: {exc!r}")
        raw = await _blob(fetch, image, blob_digest)
        if raw is None or not _matches(raw, blob_digest):
            return Finding("sigstore-bundle", Reason.malformed,
                           "the bundle blob is missing or does not match its digest")
        message = None
        if _is_message_signature(raw):
            # A message signature signs bytes, not an image: a key that also signs release
            # tarballs must not make a tarball's digest pass for a signed image. The bytes behind
            # the digest must be an image manifest or index (Ed25519 signs those bytes too).
            try:
                got = await fetch.manifest(image, digest)
            except RegistryError:  # what a registry serves there is not even a manifest
                got = None
            message = got[0] if got is not None else None
            if not _is_image_manifest(message, digest):
                return Finding("sigstore-bundle", Reason.malformed,
                               f"a message signature over {digest}, whose bytes are not an image "
                               "manifest or index: it does not sign an image (cosign signs "
                               "images with DSSE statements)")
        finding = self.verify_bundle(raw, digest, message)
        if finding.reason is Reason.ok and self.policy.match_reference:
            return _bundle_reference(raw, digest, image, finding)
        return finding

    def verify_bundle(self, raw: bytes, digest: str, message: bytes | None = None) -> Finding:
        """One Sigstore bundle about `digest`: a DSSE in-toto statement whose subject is the
        digest, or a message signature over the digest itself. Key-based bundles (a `publicKey`
        hint instead of a certificate) are checked here with the policy's key; certificate
        bundles with sigstore-python, offline. `message` is the manifest, for Ed25519 keys.

        This checks a bundle about a digest, whatever the digest names; `verify` also requires
        a message signature's digest to be an image manifest or index."""
        try:
            doc = json.loads(raw)
            material = doc["verificationMaterial"]
            keyed = isinstance(material, dict) and "publicKey" in material
        except (*_MALFORMED, RecursionError) as exc:
            return Finding("sigstore-bundle", Reason.malformed, f"unreadable bundle: {exc!r}")
        if keyed and self.policy.keyless:
            return Finding("sigstore-bundle", Reason.wrong_identity,
                           "a bundle signed with a plain key, not a certificate; the policy wants "
                           "an identity")
        if not keyed and not self.policy.keyless:
            assert self.key is not None
            return Finding("sigstore-bundle", Reason.wrong_identity,
                           "a certificate (keyless) bundle; the policy wants a signature with "
                           f"key {key_id(self.key)}")
        if keyed:
            try:
                return self._key_bundle(doc, digest, message)
            except TrustError as exc:
                return Finding("sigstore-bundle", Reason[exc.reason], str(exc))
            except (*_MALFORMED, RecursionError, OverflowError, OSError) as exc:
                return Finding("sigstore-bundle", Reason.malformed,
                               f"unreadable bundle: {type(exc).__name__}: {exc}")
        return self._certificate_bundle(raw, digest)

    def _key_bundle(self, doc: dict[str, Any], digest: str, message: bytes | None) -> Finding:
        """A key-based bundle, with `cryptography` alone (no sigstore import): the signature with
        the policy's key, the digest it is about, then its Rekor entry as for a key `.sig`."""
        assert self.key is not None
        signer = f"key {key_id(self.key)}"
        if "dsseEnvelope" in doc:
            envelope = doc["dsseEnvelope"]
            payload_type, payload = str(envelope["payloadType"]), _b64(envelope["payload"])
            signed = _pae(payload_type, payload)
            sigs = [_b64(s["sig"]) for s in envelope["signatures"][:MAX_SIGNATURES]]
            signature = next((sig for sig in sigs if verify_with_key(self.key, sig, signed)), None)
            if signature is None:
                return Finding("sigstore-bundle", Reason.bad_signature,
                               f"the DSSE envelope does not verify with {signer}")
            if payload_type != IN_TOTO:
                return Finding("sigstore-bundle", Reason.malformed,
                               f"DSSE payload type {payload_type!r}, expected in-toto", signer)
            subjects = json.loads(payload)["subject"]
            hexes = {str((s.get("digest") or {}).get("sha256")) for s in subjects}
            if digest.removeprefix("sha256:") not in hexes:
                return Finding("sigstore-bundle", Reason.digest_mismatch,
                               f"the statement is about {', '.join(sorted(hexes))}, not {digest}",
                               signer)
            logged: Any = (payload, signature)
        else:
            ms = doc["messageSignature"]
            claimed, signature = ms["messageDigest"], _b64(ms["signature"])
            if claimed.get("algorithm") != "SHA2_256":
                return Finding("sigstore-bundle", Reason.malformed,
                               f"message digest algorithm {claimed.get('algorithm')!r}, "
                               "expected SHA2_256")
            hashed = _b64(claimed["digest"])
            if not _verify_message(self.key, signature, hashed, message):
                return Finding("sigstore-bundle", Reason.bad_signature,
                               f"the message signature does not verify with {signer}")
            if hashed.hex() != digest.removeprefix("sha256:") or not digest.startswith("sha256:"):
                return Finding("sigstore-bundle", Reason.digest_mismatch,
                               f"the signature is for sha256:{hashed.hex()}, not {digest}", signer)
            logged = (hashed, signature)
        entries = doc["verificationMaterial"].get("tlogEntries") or []
        promised = [e for e in entries[:MAX_SIGNATURES] if (e.get("inclusionPromise") or {})]
        signed_at = None
        if promised and self.root is not None:
            entry = promised[0]
            promise = verify_promise(
                self.root, _b64(entry["inclusionPromise"]["signedEntryTimestamp"]),
                entry["canonicalizedBody"], int(entry["integratedTime"]),
                _b64(entry["logId"]["keyId"]).hex(), int(entry["logIndex"]))
            if "dsseEnvelope" in doc:
                _same_dsse_entry(promise.body, logged[0], logged[1], self.key)
            else:
                found = hashedrekord(promise)
                if found.payload_sha256 != logged[0].hex():
                    raise TrustError("bad_tlog", "the Rekor entry's hash is not the signed digest")
                if found.signature != logged[1]:
                    raise TrustError("bad_tlog", "the Rekor entry holds another signature")
                if _spki(found.public_material) != _spki_of(self.key):
                    raise TrustError("bad_tlog", "the Rekor entry was made with another key")
            signed_at = promise.integrated_time
        elif promised:
            log.debug("Rekor entry not checked: the policy has no trusted_root")
        elif self.policy.require_tlog:
            detail = ("the policy requires a Rekor entry and the bundle has none" if not entries
                      else "the bundle's Rekor entry has no inclusion promise (SET) to check")
            return Finding("sigstore-bundle", Reason.missing_tlog, detail, signer)
        return Finding("sigstore-bundle", Reason.ok, f"signed with {signer}", signer, signed_at)

    def _certificate_bundle(self, raw: bytes, digest: str) -> Finding:
        """A keyless bundle, with sigstore-python, offline."""
        try:
            from sigstore.errors import CertValidationError, Error
            from sigstore.hashes import Hashed
            from sigstore.models import Bundle
            from sigstore_models.common.v1 import HashAlgorithm
        except ImportError:
            raise ConfigError("verifying Sigstore bundles needs sigstore: "
                              "pip install 'tagsync[verify]'") from None

        assert self.rule is not None
        policy = _RecordingPolicy(self.rule)
        try:
            dsse = "dsseEnvelope" in json.loads(raw)
            bundle = Bundle.from_json(raw)
        except (Error, *_MALFORMED) as exc:
            return Finding("sigstore-bundle", Reason.malformed, f"unreadable bundle: {exc}")
        verifier = self._sigstore_verifier()
        try:
            if dsse:
                payload_type, payload = verifier.verify_dsse(bundle, policy)
                if payload_type != IN_TOTO:
                    return Finding("sigstore-bundle", Reason.malformed,
                                   f"DSSE payload type {payload_type!r}, expected in-toto")
                subjects = json.loads(payload).get("subject") or []
                hexes = {str((s.get("digest") or {}).get("sha256")) for s in subjects}
                if digest.removeprefix("sha256:") not in hexes:
                    return Finding("sigstore-bundle", Reason.digest_mismatch,
                                   f"the statement is about {', '.join(sorted(hexes))}, not {digest}",
                                   self._signer(policy))
            else:
                algorithm, _, hexdigest = digest.partition(":")
                if algorithm != "sha256":
                    return Finding("sigstore-bundle", Reason.digest_mismatch,
                                   f"bundles sign sha256 digests, not {algorithm}")
                hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(hexdigest))
                verifier.verify_artifact(hashed, bundle, policy)
        except policy.failures as exc:
            if policy.stalled is not None:  # the config's pattern ran out of time: the run's fault
                raise policy.stalled from None
            if policy.failure is not None:
                return Finding("sigstore-bundle", Reason.wrong_identity, str(policy.failure))
            reason = (Reason.untrusted_root if isinstance(exc, CertValidationError)
                      else _bundle_reason(str(exc)))
            return Finding("sigstore-bundle", reason, str(exc))
        except _MALFORMED as exc:
            return Finding("sigstore-bundle", Reason.malformed, f"unreadable statement: {exc}")
        except Exception as exc:  # whatever else a hostile bundle trips in sigstore
            if policy.stalled is not None:
                raise policy.stalled from None
            log.debug("bundle verification failed", exc_info=True)
            return Finding("sigstore-bundle", Reason.malformed,
                           f"the bundle could not be verified: {type(exc).__name__}: {exc}")
        signer = self._signer(policy)
        return Finding("sigstore-bundle", Reason.ok, f"signed by {signer}", signer, _logged_at(raw))

    def _signer(self, policy: _RecordingPolicy) -> str:
        assert self.rule is not None
        return f"{policy.identity} (issuer {self.rule.issuer})"

    def _sigstore_verifier(self) -> Any:
        if self._sigstore is None:
            from sigstore.models import TrustedRoot
            from sigstore.verify import Verifier as SigstoreVerifier

            assert self.root_path is not None
            try:
                root = TrustedRoot.from_file(str(self.root_path))
                self._sigstore = SigstoreVerifier(trusted_root=root)
            except Exception as exc:  # sigstore's own checks of the pinned file
                raise ConfigError(f"sigstore cannot use this trust root: {exc}",
                                  file=str(self.root_path)) from None
        return self._sigstore


class _RecordingPolicy:
    """sigstore's policy protocol over our identity rule, remembering why it refused, so a wrong
    identity is told apart from a broken signature."""

    def __init__(self, rule: IdentityRule) -> None:
        from sigstore.errors import Error

        self.rule = rule
        self.failure: TrustError | None = None
        self.stalled: PatternTimeoutError | None = None  # `identity_regex` ran out of time
        self.identity: str | None = None
        self.failures: tuple[type[Exception], ...] = (Error, TrustError)

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        try:
            self.identity = self.rule.check(cert)
        except TrustError as exc:
            self.failure = exc
            raise VerificationError(str(exc)) from None
        except PatternTimeoutError as exc:  # through sigstore's code, and out again
            self.stalled = exc
            raise VerificationError(str(exc)) from None


def _logged_at(raw: bytes) -> dt.datetime | None:
    """The Rekor time of a bundle sigstore-python has just verified (its entry is checked)."""
    try:
        entry = json.loads(raw)["verificationMaterial"]["tlogEntries"][0]
        return dt.datetime.fromtimestamp(int(entry["integratedTime"]), dt.UTC)
    except (*_MALFORMED, IndexError, OverflowError, OSError):
        return None


async def _blob(fetch: Fetch, image: str, digest: str) -> bytes | None:
    """A blob a signature manifest names; a missing one makes that signature unusable, not the
    run: other signatures may still satisfy the policy."""
    try:
        return await fetch.blob(image, digest)
    except ImageNotFoundError:
        return None


def _b64(value: Any) -> bytes:
    """Standard base64 as the bundle's protobuf JSON writes bytes; anything else is malformed."""
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    return base64.b64decode(value, validate=True)


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the envelope's signatures are over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _verify_message(key: PublicKey, signature: bytes, hashed: bytes, message: bytes | None) -> bool:
    """A message signature over the artifact, checked from its sha256 (ECDSA and RSA sign the
    hash); Ed25519 signs the artifact itself, so it needs the bytes."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, hashed, ec.ECDSA(Prehashed(hashes.SHA256())))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, hashed, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            return message is not None and hashlib.sha256(message).digest() == hashed \
                and verify_with_key(key, signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _same_dsse_entry(body: dict[str, Any], payload: bytes, signature: bytes, key: PublicKey) -> None:
    """A `dsse` Rekor entry must hold this payload's hash and this signature by this key."""
    if body.get("kind") != "dsse":
        raise TrustError("malformed", f"entry kind {body.get('kind')!r}, expected dsse")
    spec = body["spec"]
    hashed = spec["payloadHash"]
    if hashed.get("algorithm") != "sha256" or hashed.get("value") != hashlib.sha256(payload).hexdigest():
        raise TrustError("bad_tlog", "the Rekor entry's payload hash is not this statement's")
    for logged in spec["signatures"]:
        if _b64(logged["signature"]) == signature:
            if _spki(_b64(logged["verifier"])) != _spki_of(key):
                raise TrustError("bad_tlog", "the Rekor entry was made with another key")
            return
    raise TrustError("bad_tlog", "the Rekor entry holds another signature")


def _bundle_reason(message: str) -> Reason:
    text = message.lower()
    if "digest mismatch" in text:
        return Reason.digest_mismatch
    if "log entry" in text or "inclusion" in text or "checkpoint" in text or "set:" in text:
        return Reason.bad_tlog
    if "certificate chain" in text or "sct" in text:
        return Reason.untrusted_root
    return Reason.bad_signature


def _payload_mismatch(payload: bytes, digest: str, image: str | None) -> tuple[Reason, str] | None:
    """cosign's simple-signing payload must be an image signature naming exactly the digest
    being written, and with `image` (`match_reference`), that image's repository."""
    doc = json.loads(payload)
    critical = doc["critical"]
    if critical.get("type") != "cosign container image signature":
        return (Reason.wrong_payload, f"the signed payload's type is {critical.get('type')!r}, "
                "not 'cosign container image signature': it signs something else")
    signed = critical["image"]["docker-manifest-digest"]
    if signed != digest:
        return Reason.digest_mismatch, f"the signature is for {signed}, not {digest}"
    if image is not None:
        claimed = (critical.get("identity") or {}).get("docker-reference")
        if not isinstance(claimed, str) or not _same_repository(claimed, image):
            return (Reason.reference_mismatch, f"the signature was made for {claimed!r}, not "
                    f"{image} (`match_reference: true`)")
    return None


def _bundle_reference(raw: bytes, digest: str, image: str, finding: Finding) -> Finding:
    """`match_reference` for a bundle that verified: its in-toto statement must name this
    image's repository for this digest (a message signature names none)."""
    try:
        envelope = json.loads(raw).get("dsseEnvelope")
        if envelope is None:
            return Finding(finding.form, Reason.reference_mismatch, "a message signature names no "
                           "repository, and `match_reference: true` needs one (a DSSE statement "
                           "or a cosign payload)", finding.signer, finding.signed_at)
        subjects = json.loads(_b64(envelope["payload"])).get("subject") or []
        names = sorted({str(s.get("name")) for s in subjects if isinstance(s, dict)
                        and (s.get("digest") or {}).get("sha256") == digest.removeprefix("sha256:")})
    except (*_MALFORMED, RecursionError) as exc:
        return Finding(finding.form, Reason.malformed, f"unreadable statement: {exc}")
    if any(_same_repository(name, image) for name in names):
        return finding
    return Finding(finding.form, Reason.reference_mismatch,
                   f"the statement names {', '.join(names) or 'no repository'} for {digest}, not "
                   f"{image} (`match_reference: true`)", finding.signer, finding.signed_at)


def _same_repository(reference: str, image: str) -> bool:
    """Does a payload's `docker-reference` (a repository, perhaps with a tag or digest) name
    this image's repository? Docker Hub's spellings are one registry."""
    from tagsync.errors import TagsyncError
    from tagsync.reference import ImageName, Reference

    try:
        ref = Reference.parse(reference)
        return ImageName.parse(str(ref.name)) == ImageName.parse(image)
    except (TagsyncError, ValueError):
        return False


def _same_entry(entry: Any, payload: bytes, signature: bytes) -> None:
    """The logged entry must be this signature over this payload (CVE-2022-36056's lesson)."""
    if entry.payload_sha256 != hashlib.sha256(payload).hexdigest():
        raise TrustError("bad_tlog", "the Rekor entry's hash is not the payload's sha256")
    if entry.signature != signature:
        raise TrustError("bad_tlog", "the Rekor entry holds another signature")


def _spki(pem: bytes) -> bytes:
    key = serialization.load_pem_public_key(pem)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _spki_of(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


async def verify(fetch: Fetch, image: str, digest: str, policy: VerifyPolicy | Verifier,
                 base_dir: Path | None = None) -> Verdict:
    """Verify one digest; pass a `Verifier` to read the key or trust root only once."""
    verifier = policy if isinstance(policy, Verifier) else Verifier(policy, base_dir)
    return await verifier.verify(fetch, image, digest)
