"""A remote's HTML error page is never a message: the caller reads its title and sentences.

A proxy or load balancer in front of an AWS endpoint (or a broken fake) answers an error with an
HTML page; botocore passes its body on as the error's message, and before this it reached the
executor, the logs and the task's notes whole (DeleteTask of a Glue task answered `unavailable`
with a raw HTML page). Here Glue's endpoint (JSON 1.1: botocore passes a non-JSON body on as the
message) is a loopback server that answers every call with an HTML 500 page, and CreateTask goes
through the served app.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.builtin.aws.glue import GlueJobConnector
from connectors.errors import Code
from connectors.remote_text import MAX_MESSAGE_CHARS, readable
from tests.aws_world import task_request
from tests.scripted_endpoint import scripted_endpoint

# What a Flask/werkzeug server (moto's, a proxy's admin app...) answers an unhandled error with.
ERROR_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
    "<p>The server encountered an internal error and was unable to complete your request.</p>\n"
    "<script>var trace = 'Traceback (most recent call last)';</script>\n"
)


@pytest.fixture
def glue_behind_a_broken_proxy(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with scripted_endpoint(monkeypatch, "AWS_ENDPOINT_URL_GLUE", 500, "text/html", ERROR_PAGE.encode()) as url:
        yield url


def test_an_html_error_page_from_aws_is_answered_as_its_words(aws_world, glue_behind_a_broken_proxy):
    world = aws_world(GlueJobConnector())
    request = task_request("glue_job", {"job_name": "nightly"}, run="html-page")
    error = world.error(world.create, request)
    assert error.code == Code.UNAVAILABLE, error
    assert "500 Internal Server Error" in error.message and "unable to complete" in error.message, error.message
    assert "<" not in error.message and "Traceback" not in error.message, error.message
    record = next(iter(world.records("html-page").values()))
    assert "<" not in " ".join(record.notes), record.notes


def test_readable_keeps_plain_text_and_bounds_any_message():
    assert readable("a < b and c > d") == "a < b and c > d"
    assert readable("x" * 5000).endswith("…") and len(readable("x" * 5000)) == MAX_MESSAGE_CHARS
    page = "<!doctype html><title>Oops</title><script>var secret = 1;</script><p>Try &amp; again.</p>"
    assert readable(page) == "Oops: Try & again"
