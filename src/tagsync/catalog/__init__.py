"""Locate and edit values in YAML catalogs without disturbing anything else in the file."""

from tagsync.catalog.edit import Catalog, Edit, apply_edits, get_value
from tagsync.catalog.path import WILDCARD, Path, format_path, parse_path

__all__ = [
    "WILDCARD",
    "Catalog",
    "Edit",
    "Path",
    "apply_edits",
    "format_path",
    "get_value",
    "parse_path",
]
