"""tagsync: keep container image references in Git YAML catalogs in step with registries."""

__version__ = "0.1.0"
