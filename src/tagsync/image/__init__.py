"""The OCI images tagsync makes, without Docker.

- `pipeline`: tagsync's own Lambda image, `tagsync build` (base → dependencies → one layer →
  config and manifest → push), with `platform`, `base`, `deps`, `bytecode`, `assemble`, `push`.
- `tiny`: small reproducible images and OCI layouts for the offline demo, the tests and the
  benchmarks.

Both write layers with `layer`, so the two cannot disagree on what a reproducible layer is.
The package itself imports nothing: each use loads only its own modules.
"""
