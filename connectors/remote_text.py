"""A remote's words made readable: an error page becomes the sentence a person would read.

A remote (AWS behind a proxy, a load balancer, a fake, a third-party API) may answer an error with
an HTML page; botocore and the HTTP clients pass its body on as the error's message. A message is
for a person (an operator reading the executor's UI, a log line): an HTML page is cut to its
title, headings and paragraphs, with the markup, scripts and styles dropped and white space
folded, and any message is kept to a length one reads.
"""

from __future__ import annotations

import html
import re

MAX_MESSAGE_CHARS = 1000
# Only the start of a page is read: its title and headings come first, and the scans below are
# not linear on every malformed page (unclosed tags), so a hostile body must not be long.
MAX_PAGE_CHARS = 8192
_LOOKS_LIKE_HTML = re.compile(r"<\s*(!doctype\s+html|html|head|body|title|h[1-6]|p|div|pre)\b", re.IGNORECASE)
_INVISIBLE = re.compile(r"<\s*(script|style|head\s*>\s*<\s*meta)[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_END = re.compile(r"<\s*/?\s*(title|h[1-6]|p|div|pre|br|li|tr)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def readable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` as a person should read it: an HTML page's visible sentences, at most ``limit``
    characters (cut with an ellipsis); other text unchanged but for its length."""
    if _LOOKS_LIKE_HTML.search(text[:MAX_PAGE_CHARS]):
        visible = _INVISIBLE.sub(" ", text[:MAX_PAGE_CHARS])
        visible = _BLOCK_END.sub("\n", visible)
        visible = html.unescape(_TAG.sub(" ", visible))
        parts: dict[str, None] = {}  # in order, each once
        for line in visible.splitlines():
            sentence = " ".join(line.split())
            if sentence:
                parts.setdefault(sentence)
        text = ": ".join(part.rstrip(".:") for part in parts) if parts else "an HTML page with no text"
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


__all__ = ["MAX_MESSAGE_CHARS", "readable"]
