"""What a signature must satisfy before a digest may be written: the policy a catalog names.

One flat model, so a catalog's `verify:` block reads like a sentence: either a public key, or a
keyless identity (exact or a regular expression) plus its OIDC issuer, against a trust root the
user pins. Keys and roots are read once, by `Verifier`, not here: the model stays pure config.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from tagsync.patterns import check as check_pattern

# What must be signed when the digest is a multi-arch index: `index`, a valid signature on the
# index digest suffices; `platforms`, every platform manifest it lists must be signed.
MultiArch = Literal["index", "platforms"]


class VerifyPolicy(BaseModel):
    """A signature policy: key-based (`key`) or keyless (`identity`/`identity_regex` + `issuer`).

    `key` is a PEM public key (ECDSA, RSA or Ed25519) given as a secret reference (`file:…`,
    `env:…`, `aws-secretsmanager:…`, `aws-ssm:…`), a plain file path, or the PEM text itself.
    `trusted_root` is a Sigstore `trusted_root.json` the user pins and refreshes on purpose; it is
    required for keyless, and with a key it lets a Rekor SET in the signature be checked
    (`require_tlog: true` refuses signatures without one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    key: str | None = None
    """A cosign public key: a secret reference, a path (relative to the config) or inline PEM."""
    identity: str | None = None
    """Keyless: the certificate identity that must have signed."""
    identity_regex: str | None = None
    """Keyless: a regular expression (Python syntax) the whole identity must match; bounded like
    `policy.include`."""
    issuer: str | None = None
    """Keyless: the OIDC issuer Fulcio recorded."""
    trusted_root: str | None = None
    """A pinned Sigstore trusted_root.json (never fetched by tagsync)."""
    require_tlog: bool = False
    """Key-based: refuse a signature without a verified Rekor entry."""
    multi_arch: MultiArch = "index"
    """index: the index's signature suffices; platforms: every platform must be signed."""
    match_reference: bool = False
    """The signature must name the image's repository (cosign's `docker-reference`, a statement's subject)."""

    @model_validator(mode="after")
    def _one_kind(self) -> "VerifyPolicy":
        keyless = self.identity is not None or self.identity_regex is not None
        if self.key is not None and (keyless or self.issuer is not None):
            raise ValueError("give either `key` (key-based) or `identity`/`identity_regex` with "
                             "`issuer` (keyless), not both")
        if self.key is None and not keyless:
            raise ValueError("a verify policy needs `key`, or `identity` (or `identity_regex`) "
                             "with `issuer`")
        if self.identity is not None and self.identity_regex is not None:
            raise ValueError("give `identity` or `identity_regex`, not both")
        if keyless:
            if not self.issuer:
                raise ValueError("a keyless policy needs `issuer` (the OIDC issuer URL), "
                                 "or any identity could sign through any issuer")
            if not self.trusted_root:
                raise ValueError("a keyless policy needs `trusted_root` (a trusted_root.json path)")
        if self.identity_regex is not None:
            try:
                check_pattern(self.identity_regex)
            except ValueError as exc:
                raise ValueError(f"identity_regex is not a regular expression tagsync accepts: "
                                 f"{exc}") from None
        if self.require_tlog and not self.trusted_root:
            raise ValueError("require_tlog needs `trusted_root` (the Rekor keys live there)")
        return self

    @property
    def keyless(self) -> bool:
        return self.key is None
