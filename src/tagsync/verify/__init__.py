"""Verify before bump: a digest is written only if its signature satisfies the policy.

Self-contained: knows nothing of catalogs or plans. `Verifier(policy).verify(fetch, image,
digest)` answers a `Verdict`; `SourceFetch` (alias `RegistryFetch`) adapts any registry source
(OCI client, ECR, image layout) to the `Fetch` protocol.
sigstore-python (the `verify` extra) is imported only when a Sigstore bundle is verified.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tagsync.verify.fetch import Fetch, RegistryFetch, SourceFetch
    from tagsync.verify.policy import MultiArch, VerifyPolicy
    from tagsync.verify.verdict import Finding, Reason, Verdict
    from tagsync.verify.verifier import Verifier, verify

# The config names `VerifyPolicy` on every run; `cryptography` and the registry client load only
# when something is verified (a cold start pays for every import).
_WHERE = {"Fetch": "fetch", "RegistryFetch": "fetch", "SourceFetch": "fetch",
          "MultiArch": "policy", "VerifyPolicy": "policy",
          "Finding": "verdict", "Reason": "verdict", "Verdict": "verdict", "Verifier": "verifier",
          "verify": "verifier"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"tagsync.verify.{_WHERE[name]}"), name)

__all__ = ["Fetch", "Finding", "MultiArch", "Reason", "RegistryFetch", "SourceFetch",
           "Verdict", "Verifier",
           "VerifyPolicy", "verify"]
