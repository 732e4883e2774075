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
