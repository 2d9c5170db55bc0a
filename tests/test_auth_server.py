"""The built-in authorization server, used as a SMART backend service uses it: the authlib
OAuth 2 client with ``PrivateKeyJWT`` (RS384, ES384, RS512) and with a client secret, and
every way a client assertion can be wrong."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt

from service.auth.commands import public_jwks as jwks_file_keys
from service.auth.tokens import unverified_part
from service.cli import main
from tests.authkit import (
    ISSUER,
    TOKEN_URL,
    bearer,
    ec_key,
    public_jwks,
    register,
    rsa_key,
    secure_client,
)

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(client_id: str, key: Any, alg: str, **overrides: Any) -> str:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return jwt.encode({"alg": alg, "kid": key.kid}, values, key, [alg])


def form(client_assertion: str, scope: str | None = None) -> dict[str, str]:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }
    if scope:
        data["scope"] = scope
    return data


@pytest.mark.parametrize("alg", ["RS384", "ES384", "RS512"])
async def test_authlib_private_key_jwt_client_gets_a_token_and_calls_the_api(
    app_factory: AppFactory, database_url: str, alg: str
) -> None:
    import authlib.deprecate  # installs its own "always" filter: ours must come after it

    with warnings.catch_warnings():  # authlib 1.7+ points its httpx client at "httpx2"
        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

    api = await secure_client(app_factory)
    key = ec_key() if alg.startswith("ES") else rsa_key()
    client_id, _ = await register(
        database_url, "system/CareTeam.rs system/Patient.cruds", jwks=public_jwks(key)
    )
    async with AsyncOAuth2Client(
        client_id=client_id,
        client_secret=key,
        token_endpoint_auth_method=PrivateKeyJWT(
            TOKEN_URL,
            alg=alg,
            headers={"kid": key.kid},
            claims={"exp": int(time.time()) + 240},  # SMART: at most 5 minutes ahead
        ),
        transport=api._transport,  # the same in-process app the API client talks to
    ) as oauth:
        token = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 300
    assert "refresh_token" not in token
    assert token["scope"] == "system/CareTeam.rs system/Patient.cruds"
    created = await api.post(
        "/Patient", json={"resourceType": "Patient"}, headers=bearer(token["access_token"])
    )
    assert created.status_code == 201
    refused = await api.post(
        "/CareTeam",
        json={"resourceType": "CareTeam", "status": "active"},
        headers=bearer(token["access_token"]),
    )
    assert refused.status_code == 403


async def test_client_secret_basic_and_jwks_endpoint(
    app_factory: AppFactory, database_url: str
) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs")
    assert secret is not None
    issued = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(client_id, secret),
    )
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    token = issued.json()["access_token"]
    assert (await api.get("/Patient", headers=bearer(token))).status_code == 200
    keys = (await api.get(f"{ISSUER}/jwks")).json()["keys"]
    assert keys and all("d" not in k for k in keys)
    assert unverified_part(token, 0)["kid"] in {k["kid"] for k in keys}


async def test_rotated_key_signs_new_tokens_and_old_ones_still_validate(
    app_factory: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs")
    assert secret is not None

    async def token() -> str:
        issued = await api.post(
            TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        return str(issued.json()["access_token"])

    before = await token()
    monkeypatch.setenv("KEYWORKER_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["keys", "rotate"]) == 0
    after = await token()
    kids = {k["kid"] for k in (await api.get(f"{ISSUER}/jwks")).json()["keys"]}
    assert len(kids) == 2
    for each in (before, after):
        assert (await api.get("/Patient", headers=bearer(each))).status_code == 200


def _assert_token_refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("replayed-jti", "invalid_client"),
        ("exp-too-far-ahead", "invalid_client"),
        ("expired-assertion", "invalid_client"),
        ("wrong-audience", "invalid_client"),
        ("sub-not-client", "invalid_client"),
        ("unknown-kid", "invalid_client"),
        ("wrong-key", "invalid_client"),
        ("rs256-not-allowed", "invalid_client"),
        ("unknown-client", "invalid_client"),
        ("revoked-client", "invalid_client"),
        ("scope-not-registered", "invalid_scope"),
        ("no-jti", "invalid_client"),
    ],
)
async def test_bad_client_assertion_gets_no_token(
    app_factory: AppFactory, database_url: str, case: str, error: str
) -> None:
    api = await secure_client(app_factory)
    key = rsa_key()
    client_id, _ = await register(database_url, "system/CareTeam.rs", jwks=public_jwks(key))
    now = int(time.time())
    scope = None
    if case == "replayed-jti":
        signed = assertion(client_id, key, "RS384", jti="once")
        assert (await api.post(TOKEN_URL, data=form(signed))).status_code == 200
    elif case == "exp-too-far-ahead":
        signed = assertion(client_id, key, "RS384", exp=now + 3600)
    elif case == "expired-assertion":
        signed = assertion(client_id, key, "RS384", exp=now - 600)
    elif case == "wrong-audience":
        signed = assertion(client_id, key, "RS384", aud="https://elsewhere/token")
    elif case == "sub-not-client":
        signed = assertion(client_id, key, "RS384", sub="someone-else")
    elif case == "unknown-kid":
        other = rsa_key()
        signed = assertion(client_id, other, "RS384")
    elif case == "wrong-key":
        other = rsa_key()
        signed = jwt.encode(
            {"alg": "RS384", "kid": key.kid},
            {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "x"},
            other,
            ["RS384"],
        )
    elif case == "rs256-not-allowed":
        signed = assertion(client_id, key, "RS256")
    elif case == "unknown-client":
        signed = assertion("no-such-client", key, "RS384")
    elif case == "revoked-client":
        assert await main_revoke(database_url, client_id) == 0
        signed = assertion(client_id, key, "RS384")
    elif case == "scope-not-registered":
        signed, scope = assertion(client_id, key, "RS384"), "system/Patient.rs"
    else:
        signed = assertion(client_id, key, "RS384", jti=None)
        signed = jwt.encode(
            {"alg": "RS384", "kid": key.kid},
            {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 60},
            key,
            ["RS384"],
        )
    status = 400 if error == "invalid_scope" else 401
    _assert_token_refused(await api.post(TOKEN_URL, data=form(signed, scope)), status, error)


async def main_revoke(database_url: str, client_id: str) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEYWORKER_DATABASE_URL", database_url)
        return await asyncio.to_thread(main, ["clients", "revoke", client_id])


@pytest.mark.parametrize(
    ("auth", "data", "status", "error"),
    [
        (("wrong", "secret"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "password", "username": "u"}, 400, "unsupported_grant_type"),
        (("right", "secret"), {"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        (("right", "secret"), {"scope": "system/*.rs"}, 400, "invalid_request"),
        (("right", "secret"), {"grant_type": ""}, 400, "invalid_request"),
    ],
    ids=[
        "wrong-client-secret",
        "no-client-authentication",
        "unsupported-grant",
        "authorization-code-not-served",
        "no-grant-type",
        "empty-grant-type",
    ],
)
async def test_bad_secret_requests_get_no_token(
    app_factory: AppFactory,
    database_url: str,
    auth: tuple[str, str] | None,
    data: dict[str, str],
    status: int,
    error: str,
) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs")
    assert secret is not None
    credentials = None if auth is None else (client_id, secret if auth[0] == "right" else "no")
    _assert_token_refused(await api.post(TOKEN_URL, data=data, auth=credentials), status, error)


async def test_client_secret_post_gets_a_token(app_factory: AppFactory, database_url: str) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs")
    assert secret is not None
    issued = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "system/*.rs"
    token = issued.json()["access_token"]
    assert (await api.get("/Patient", headers=bearer(token))).status_code == 200
    assert unverified_part(token, 1)["client_id"] == client_id


@pytest.mark.parametrize(
    "case",
    [
        "post-wrong-secret",
        "post-without-client-id",
        "basic-and-post",
        "basic-with-another-client-id",
        "secret-and-assertion",
        "repeated-parameter",
    ],
)
async def test_client_credentials_sent_wrongly_get_no_token(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs")
    assert secret is not None
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    auth: tuple[str, str] | None = None
    status, error = 400, "invalid_request"
    if case == "post-wrong-secret":
        data["client_secret"] = "not-the-secret"
        status, error = 401, "invalid_client"
    elif case == "post-without-client-id":
        del data["client_id"]
    elif case == "basic-and-post":
        auth = (client_id, secret)
    elif case == "basic-with-another-client-id":
        del data["client_secret"]
        data["client_id"] = "another-client"
        auth = (client_id, secret)
    elif case == "secret-and-assertion":
        data |= {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "a.b.c"}
    if case == "repeated-parameter":
        body = "&".join(f"{k}={v}" for k, v in data.items()) + "&grant_type=client_credentials"
        response = await api.post(
            TOKEN_URL,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = await api.post(TOKEN_URL, data=data, auth=auth)
    _assert_token_refused(response, status, error)


@pytest.mark.parametrize(
    "case", ["wrong-type", "no-type", "empty-type", "type-without-assertion", "empty-assertion"]
)
async def test_a_bad_client_assertion_type_is_invalid_request(
    app_factory: AppFactory, database_url: str, case: str
) -> None:
    """SMART's backend services tests expect 400 invalid_request here, not 401."""
    api = await secure_client(app_factory)
    key = rsa_key()
    client_id, _ = await register(database_url, "system/*.rs", jwks=public_jwks(key))
    data = form(assertion(client_id, key, "RS384"))
    if case == "wrong-type":
        data["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    elif case == "no-type":
        del data["client_assertion_type"]
    elif case == "empty-type":
        data["client_assertion_type"] = ""
    elif case == "type-without-assertion":
        del data["client_assertion"]
    else:
        data["client_assertion"] = ""
    _assert_token_refused(await api.post(TOKEN_URL, data=data), 400, "invalid_request")


async def test_console_registers_lists_and_revokes(
    database_url: str,
    app_factory: AppFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    await app_factory()  # an empty database
    monkeypatch.setenv("KEYWORKER_DATABASE_URL", database_url)
    key = ec_key()
    jwk_file = tmp_path / "key.json"
    jwk_file.write_text(json.dumps(key.as_dict(private=True)))
    assert "d" not in jwks_file_keys(jwk_file)["keys"][0]  # the private half never stored
    assert (
        await asyncio.to_thread(
            main,
            ["clients", "add", "--name", "gp", "--scopes", "system/*.rs", "--secret", "--json"],
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["client_secret"]
    assert (
        await asyncio.to_thread(
            main,
            [
                "clients",
                "add",
                "--name",
                "svc",
                "--scopes",
                "system/*.rs",
                "--jwk-file",
                str(jwk_file),
            ],
        )
        == 0
    )
    assert "client_secret" not in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["clients", "list"]) == 0
    listed = capsys.readouterr().out
    assert "gp\tsecret\tactive" in listed and "svc\tjwks\tactive" in listed
    assert printed["client_secret"] not in listed
    assert await asyncio.to_thread(main, ["clients", "revoke", printed["client_id"]]) == 0
    await asyncio.to_thread(main, ["clients", "list"])
    assert "gp\tsecret\tREVOKED" in capsys.readouterr().out


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A JWKS URL on 127.0.0.1 serving whatever set the test puts in the list."""
    served: list[dict[str, Any]] = [{"keys": []}]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(served[-1]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_client_registered_with_a_jwks_url(
    app_factory: AppFactory,
    database_url: str,
    jwks_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, served = jwks_server
    api = await secure_client(app_factory, jwks_min_refresh_seconds=3600)
    key, later = ec_key(), ec_key()
    served.append(public_jwks(key))
    client_id, _ = await register(database_url, "system/*.rs", jwks_url=url)
    issued = await api.post(TOKEN_URL, data=form(assertion(client_id, key, "ES384")))
    assert issued.status_code == 200, issued.text
    # A key published after the last fetch is not fetched again within the refresh interval.
    served.append(public_jwks(key, later))
    refused = await api.post(TOKEN_URL, data=form(assertion(client_id, later, "ES384")))
    _assert_token_refused(refused, 401, "invalid_client")


@pytest.mark.parametrize("scope", ["", "   "], ids=["empty", "blank"])
async def test_an_empty_scope_is_invalid_scope_not_every_scope(
    app_factory: AppFactory, database_url: str, scope: str
) -> None:
    api = await secure_client(app_factory)
    client_id, secret = await register(database_url, "system/*.rs system/*.cruds")
    assert secret is not None
    data = {"grant_type": "client_credentials", "scope": scope}
    response = await api.post(TOKEN_URL, data=data, auth=(client_id, secret))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"
    assert "access_token" not in response.json()
    unasked = await api.post(
        TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert unasked.status_code == 200, unasked.text
    assert unasked.json()["scope"] == "system/*.rs system/*.cruds"
