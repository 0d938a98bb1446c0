"""Verify before bump: a digest is written only if its signature satisfies the policy.

Self-contained: knows nothing of catalogs or plans. `Verifier(policy).verify(fetch, image,
digest)` answers a `Verdict`; `RegistryFetch` adapts the OCI client to the `Fetch` protocol.
sigstore-python (the `verify` extra) is imported only when a Sigstore bundle is verified.
"""

from tagsync.verify.fetch import Fetch, RegistryFetch
from tagsync.verify.policy import MultiArch, VerifyPolicy
from tagsync.verify.verdict import Finding, Reason, Verdict
from tagsync.verify.verifier import Verifier, verify

__all__ = ["Fetch", "Finding", "MultiArch", "Reason", "RegistryFetch", "Verdict", "Verifier",
           "VerifyPolicy", "verify"]
