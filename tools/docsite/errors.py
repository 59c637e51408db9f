"""The error every generated part raises when a page and the code disagree."""

from __future__ import annotations


class DocsError(Exception):
    """A page and the code disagree, or the code reads a field in a way tools/docsite/field_reads.py
    cannot follow."""
