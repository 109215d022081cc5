"""Passwords in connection settings never reach output, however the URL was written.

A password with an unencoded ``/``, ``?``, ``#`` or ``@`` makes the URL split inside it, so a
parser sees part of the password as a port, a path or a fragment; every message must still
show it masked (issue 12). ``mask_dsn`` is the one pattern-based masking function; the server
providers use it too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_migorch.errors import ConfigurationError
from pytest_migorch.postgres import servers
from pytest_migorch.postgres.connection import mask_dsn, mask_secret, resolve_settings

UNENCODED = [
    ("postgres://deployer:1234/5678@host/db", ("1234", "5678")),
    ("postgres://deployer:S3cr#t@host:5432/db", ("S3cr", "#t")),
    ("postgres://deployer:S3cr?t=1@host/db", ("S3cr", "t=1")),
    ("postgres://deployer:a@b@host/db", ("a@b",)),
]


@pytest.mark.parametrize(("url", "pieces"), UNENCODED)
def test_mask_dsn_hides_everything_between_user_and_the_last_at(
        url: str, pieces: tuple[str, ...]) -> None:
    masked = mask_dsn(url)
    assert masked.startswith("postgres://deployer:***@host")
    for piece in pieces:
        assert piece not in masked


@pytest.mark.parametrize(("url", "pieces"), UNENCODED[:3])
def test_an_unencoded_password_is_refused_without_showing_it(
        url: str, pieces: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match="not percent-encoded|port is not a number") \
            as caught:
        resolve_settings(url, {})
    for piece in pieces:
        assert piece not in str(caught.value)
    assert "deployer:***@host" in str(caught.value)


def test_an_unencoded_at_sign_is_the_password_up_to_the_last_one() -> None:
    settings = resolve_settings("postgres://deployer:a@b@host/db", {})
    assert settings.display == "postgres://deployer:***@host/db"
    assert settings.password == "a@b"


def test_the_server_providers_mask_with_the_same_function() -> None:
    assert servers.mask_dsn is mask_dsn


def test_mask_secret_also_masks_what_is_written_in_the_text() -> None:
    assert mask_secret("could not connect to postgres://u:pw/x@h/db") == \
        "could not connect to postgres://u:***@h/db"


@pytest.mark.parametrize(("url", "pieces"), UNENCODED[:2])
def test_the_cli_json_never_shows_an_unencoded_password(
        url: str, pieces: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_migorch", "--json", "status", "--all",
         "--root", "examples/services", "--env", "development", "--database-url", url],
        capture_output=True, text=True)
    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["ok"] is False and "percent-encoded" in document["error"]
    for piece in pieces:
        assert piece not in done.stdout and piece not in done.stderr
