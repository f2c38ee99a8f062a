"""HttpTransport against a real aiohttp device over HTTPS: every auth mode, sessions, 4xx rule."""

from __future__ import annotations

import json
import logging

import pytest
from transport_servers import API_KEY, API_PASSWORD, API_TOKEN, Device, Pki

from vnf_operator.core.errors import AuthenticationError
from vnf_operator.core.rendered import HttpRequest
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.settings import (
    HttpAuthSettings,
    HttpBasicAuth,
    HttpBearerAuth,
    HttpBodyKeyAuth,
    HttpHeaderAuth,
    HttpSessionAuth,
    HttpSettings,
)

pytestmark = pytest.mark.integration


def settings(device: Device, pki: Pki, auth: HttpAuthSettings | None, **kw: object) -> HttpSettings:
    return HttpSettings(
        name="api",
        appliance="fw1",
        base_url=device.url + "/api",
        ca_pem=pki.ca_pem,
        auth=auth,
        masker=SecretMasker([API_PASSWORD, API_TOKEN, API_KEY]),
        **kw,  # type: ignore[arg-type]
    )


def get(path: str, **kw: object) -> HttpRequest:
    return HttpRequest(connection="api", method="GET", path=path, **kw)  # type: ignore[arg-type]


def login_request(password: str = API_PASSWORD) -> HttpRequest:
    return HttpRequest(
        connection="api",
        method="POST",
        path="/session/login",
        json={"username": "admin", "password": password},
    )


LOGOUT = HttpRequest(connection="api", method="POST", path="/session/logout")


async def test_basic_auth(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, HttpBasicAuth("admin", API_PASSWORD)))
    try:
        resp = await t.send(get("/basic/items"), operation="list")
        assert resp.status == 200
        assert json.loads(resp.text) == {"items": [{"name": "a"}]}
        assert resp.elapsed >= 0
    finally:
        await t.aclose()


async def test_bearer_auth(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, HttpBearerAuth(API_TOKEN)))
    try:
        assert (await t.send(get("/bearer/items"), operation="list")).status == 200
    finally:
        await t.aclose()


async def test_header_auth_and_static_headers(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, HttpHeaderAuth("X-API-Key", API_KEY), headers={"X-Extra": "yes"}))
    try:
        resp = await t.send(get("/header/items"), operation="list")
        assert resp.status == 200
        assert json.loads(resp.text)["extra"] == "yes"
    finally:
        await t.aclose()


async def test_body_key_auth_json_form_and_query(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, HttpBodyKeyAuth("key", API_KEY)))
    try:
        as_json = HttpRequest(
            connection="api", method="POST", path="/bodykey/retrieve", json={"op": "showConfig"}
        )
        resp = await t.send(as_json, operation="show")
        assert resp.status == 200 and json.loads(resp.text)["op"] == "showConfig"
        as_form = HttpRequest(
            connection="api", method="POST", path="/bodykey/retrieve", form={"data": '{"op":1}'}
        )
        resp = await t.send(as_form, operation="show")
        assert resp.status == 200 and json.loads(resp.text)["data"] == '{"op":1}'
        assert (await t.send(get("/bodykey/info"), operation="info")).status == 200
    finally:
        await t.aclose()


async def test_wrong_credentials_raise_authentication_error(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, HttpBearerAuth("tok-wrong-000")))
    try:
        with pytest.raises(AuthenticationError) as info:
            await t.send(get("/bearer/items"), operation="list")
        assert info.value.status == 401
        assert not info.value.transient
        assert "fw1/api/list" in str(info.value)
    finally:
        await t.aclose()


async def test_other_4xx_is_returned_not_raised(device: Device, pki: Pki) -> None:
    t = HttpTransport(settings(device, pki, None))
    try:
        resp = await t.send(get("/missing"), operation="read")
        assert resp.status == 404
        assert json.loads(resp.text) == {"error": "no such item"}
    finally:
        await t.aclose()


@pytest.mark.parametrize("mode", ["token", "cookie"])
async def test_session_login_relogin_and_logout(device: Device, pki: Pki, mode: str) -> None:
    if mode == "token":
        auth = HttpSessionAuth(login=login_request(), token_jsonpath="$.data.token", logout=LOGOUT)
    else:
        auth = HttpSessionAuth(
            login=login_request(), csrf_cookie="ccsrftoken", csrf_header="X-CSRFTOKEN", logout=LOGOUT
        )
    t = HttpTransport(settings(device, pki, auth))
    resp = await t.send(get("/session/items"), operation="list")
    assert resp.status == 200
    await t.send(get("/session/items"), operation="list")
    assert device.logins == 1  # the session is reused

    device.expire_sessions()  # the device forgets every session: next request gets 401
    resp = await t.send(get("/session/items"), operation="list")
    assert resp.status == 200
    assert device.logins == 2
    assert device.hits["GET /api/session/items"] == 4  # 2 + one refused + one after re-login

    await t.aclose()
    assert device.logouts == 1
    assert t.closed


async def test_session_csrf_from_json(device: Device, pki: Pki) -> None:
    auth = HttpSessionAuth(login=login_request(), csrf_jsonpath="$.csrf", csrf_header="X-CSRFTOKEN")
    t = HttpTransport(settings(device, pki, auth))
    try:
        assert (await t.send(get("/session/items"), operation="list")).status == 200
    finally:
        await t.aclose()


async def test_session_still_refused_after_relogin(device: Device, pki: Pki) -> None:
    # Cookie mode without the CSRF header: login works, every request is refused.
    auth = HttpSessionAuth(login=login_request())
    t = HttpTransport(settings(device, pki, auth))
    try:
        with pytest.raises(AuthenticationError, match="after logging in again"):
            await t.send(get("/session/items"), operation="list")
        assert device.logins == 2
    finally:
        await t.aclose()


async def test_secrets_never_in_errors_or_logs(
    device: Device, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-But-Secret-77"
    masker = SecretMasker([wrong])
    # 1. basic auth with a wrong password the device echoes back in its error body
    s = HttpSettings(
        name="api",
        base_url=device.url + "/api",
        ca_pem=pki.ca_pem,
        auth=HttpBasicAuth("admin", wrong),
        masker=masker,
    )
    t = HttpTransport(s)
    with pytest.raises(AuthenticationError) as info:
        await t.send(get("/basic/items"), operation="list")
    await t.aclose()
    assert "bad credentials admin:" in info.value.device_message  # the device's text is there...
    texts = [str(info.value), info.value.device_message, repr(info.value.args), caplog.text, repr(s)]
    # 2. a session login refused by a device that echoes the password
    s2 = HttpSettings(
        name="api",
        base_url=device.url + "/api",
        ca_pem=pki.ca_pem,
        auth=HttpSessionAuth(login=login_request(wrong), token_jsonpath="$.data.token"),
    )  # no masker given: the login body's values are masked all the same
    t2 = HttpTransport(s2)
    with pytest.raises(AuthenticationError) as info2:
        await t2.send(get("/session/items"), operation="list")
    await t2.aclose()
    assert "invalid password ******" in info2.value.device_message
    texts += [str(info2.value), info2.value.device_message, caplog.text, repr(s2)]
    for text in texts:
        assert wrong not in text  # ...the secret is not
    assert "******" in info.value.device_message
