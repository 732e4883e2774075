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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://h/p?token=abc&x=1", "http://h/p?token=***&x=1"),
        (
            "GET https://b.s3.example/a.tgz?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d failed",
            "GET https://b.s3.example/a.tgz?X-Amz-Credential=***&X-Amz-Signature=*** failed",
        ),
        (
            "https://h/o?X-Goog-Signature=abc&X-Goog-Credential=svc%40p",
            "https://h/o?X-Goog-Signature=***&X-Goog-Credential=***",
        ),
        ("http://h/cb?code=4/0Ab&state=xyz", "http://h/cb?code=***&state=xyz"),
        (
            "http://h/?API_KEY=a&apikey=b&access_token=c&sig=d&Password=e&auth=f&pwd=g",
            "http://h/?API_KEY=***&apikey=***&access_token=***&sig=***&Password=***&auth=***&pwd=***",
        ),
        ("http://h/?X%2DAmz%2DSignature=zz", "http://h/?X%2DAmz%2DSignature=***"),  # a percent-encoded key
        ("http://h/#access_token=abc&expires=3600", "http://h/#access_token=***&expires=3600"),
        # urllib3's --debug line shows the path without scheme or host
        (
            'http://h:80 "POST /r?token=abc&page=2 HTTP/1.1" 200 2',
            'http://h:80 "POST /r?token=***&page=2 HTTP/1.1" 200 2',
        ),
        # the URL quoted in a message, or git's "repository '...' not found"
        ("invalid URL 'http://h/?secret=abc': why", "invalid URL 'http://h/?secret=***': why"),
        (
            "fatal: repository 'https://h/r.git?token=abc/' not found",
            "fatal: repository 'https://h/r.git?token=***' not found",
        ),
        ("(see http://h/?key=abc).", "(see http://h/?key=***)."),
        # a quote inside the value does not end it early
        ("'http://h/?token=ab'cd&x=1'", "'http://h/?token=***&x=1'"),
        # not credentials: kept as they are
        (
            "http://h/?page=1&design=blue&Idempotency-Key=k&token=",
            "http://h/?page=1&design=blue&Idempotency-Key=k&token=",
        ),
        ("http://h/health#status=200&json=status=UP", "http://h/health#status=200&json=status=UP"),
        ("a=b and c=d", "a=b and c=d"),
    ],
)
def test_secret_query_values_are_masked(text, expected):
    assert redact.redact(text) == expected


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True), ("Proxy-Authorization", True), ("X-Api-Key", True), ("PRIVATE-TOKEN", True),
        ("Cookie", True), ("X-Auth-Token", True), ("X-Hub-Signature-256", True), ("code", True), ("Code", True),
        ("Idempotency-Key", False), ("X-Team", False), ("Content-Type", False), ("X-Design", False),
        ("zipcode", False), ("User-Agent", False),
    ],
)  # fmt: skip
def test_one_rule_names_credentials_in_headers_and_query_keys(name, secret):
    from initkit import headers

    assert redact.is_secret_name(name) is secret
    redact.forget_all()
    headers.parse([f"{name}: value-{name}"], None)
    assert (redact.redact(f"value-{name}") == "***") is secret  # header values registered by the same rule
    assert (redact.redact(f"http://h/?{name}=v") == f"http://h/?{name}=***") is secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://h/a?sig=abc: HTTP 503", "GET http://h/a?sig=***: HTTP 503"),
        ("(url='/r?api_key=abc'): Retry(total=1)", "(url='/r?api_key=***'): Retry(total=1)"),
        ("targets: http://h/?token=a, http://h/?token=b.", "targets: http://h/?token=***, http://h/?token=***."),
        ("http://h/?token=a:b.c!d", "http://h/?token=***"),  # punctuation inside the value is the value
    ],
)
def test_punctuation_after_a_url_is_not_the_value(text, expected):
    assert redact.redact(text) == expected
