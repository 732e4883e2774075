import json

import pytest

from initkit import redact


@pytest.fixture(autouse=True)
def _clean():
    redact.forget_all()
    yield
    redact.forget_all()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pa55@git.example/x.git", "https://user:***@git.example/x.git"),
        ("clone http://ghp_0123456789abcdef@host/r failed", "clone http://***@host/r failed"),
        ("ssh://git@host:22/r.git", "ssh://git@host:22/r.git"),
        ("ssh://git:pw@host/r.git", "ssh://git:***@host/r.git"),
        ("no url here", "no url here"),
    ],
)
def test_urls(text, expected):
    assert redact.redact(text) == expected


def test_registered_secrets_are_masked_longest_first():
    redact.register("abc123")
    redact.register("abc123456")
    redact.register("  ")  # too short to be a secret: ignored
    assert redact.redact("t=abc123456 u=abc123") == "t=*** u=***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://alice:top@secret@host/", "http://alice:***@host/"),
        ("GET http://alice:t@p@s@cret@host:8080/x?y=1 failed", "GET http://alice:***@host:8080/x?y=1 failed"),
        ("https://tok@en@host/r.git", "https://***@host/r.git"),
        ("a http://u:p@h1/x and http://v:q@h2/y", "a http://u:***@h1/x and http://v:***@h2/y"),
        ("http://u:p@h1 then mail bob@example.com", "http://u:***@h1 then mail bob@example.com"),
        ("ssh://git@host:22/r.git and http://host:80/x", "ssh://git@host:22/r.git and http://host:80/x"),
    ],
)
def test_userinfo_ends_at_the_last_at_sign_before_the_host(text, expected):
    assert redact.redact(text) == expected
    assert "top" not in redact.redact(text) and "secret" not in redact.redact(text)


SECRET = "s3cr\u00e9t'line1\nl\"ine2\t\\end"


@pytest.mark.parametrize(
    "message",
    [
        SECRET,
        f"Invalid header value {('Bearer ' + SECRET).encode()!r}",  # what http.client says: a bytes repr
        f"Invalid header value {'Bearer ' + SECRET!r}",
        f"{{'Authorization': {'Bearer ' + SECRET!r}}}",  # a dict shown in a message
        f"ValueError: {json.dumps({'token': SECRET})}",
        f"ValueError: {json.dumps({'token': SECRET}, ensure_ascii=False)}",
        repr(("x", SECRET, b"y")),
    ],
)
def test_escaped_forms_of_a_registered_secret_are_masked(message):
    redact.register(SECRET)
    shown = redact.redact(message)
    assert "***" in shown
    for fragment in ("s3cr", "line1", "ine2", "end"):
        assert fragment not in shown, shown


def test_every_line_of_a_multi_line_secret_file_is_masked_even_escaped(tmp_path):
    from initkit import secretfile
    from initkit.errors import BadInput

    path = tmp_path / "token"
    path.write_text("first-line-secret\nsecond-line-secret\n")
    with pytest.raises(BadInput) as refused:
        secretfile.read(str(path), "token file")
    assert "secret" not in str(refused.value)
    for shown in (
        f"value {'x first-line-secret'!r}",
        f"{b'first-line-secret' + bytes([10]) + b'second-line-secret'!r}",
    ):
        masked = redact.redact(shown)
        assert "line-secret" not in masked, masked
