"""Pure pieces of the transports: settings, wire format, Retry-After, prompt reading, log masking."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from vnf_operator.core.errors import AuthenticationError, DeviceError, TransportError, VerificationError
from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport import logsafe, wire
from vnf_operator.transport.http import _unquote_cookie, parse_retry_after
from vnf_operator.transport.retry import mark_not_delivered, may_have_landed
from vnf_operator.transport.settings import (
    HttpBasicAuth,
    HttpBodyKeyAuth,
    HttpSessionAuth,
    HttpSettings,
    JumpHostSettings,
    ReachSettings,
    SshSettings,
)
from vnf_operator.transport.ssh import _clean, _error_line, _PromptReader

pytestmark = pytest.mark.unit

SECRET = "Sup3r-Secret-Value"


# --------------------------------------------------------------------------- settings


def test_secrets_go_to_the_masker_and_stay_out_of_repr() -> None:
    h = HttpSettings(name="api", base_url="https://fw:443", auth=HttpBasicAuth("admin", SECRET))
    s = SshSettings(name="cli", host="sw", username="u", password=SECRET, private_key="KEYKEYKEY")
    j = JumpHostSettings(host="bastion", password=SECRET)
    r = ReachSettings(mode="jumpHost", jump_host=j, proxy_url="http://user:Pr0xy-Pass@proxy:3128")
    for obj in (h, s, j, r):
        assert SECRET not in repr(obj)
    assert h.masker(f"x {SECRET} y") == "x ****** y"
    assert s.masker("KEYKEYKEY") == "******"
    assert r.masker(f"{SECRET} Pr0xy-Pass") == "****** ******"
    assert "Pr0xy-Pass" not in repr(r)


def test_equality_ignores_the_masker_but_not_credentials() -> None:
    a = SshSettings(name="cli", host="sw", password=SECRET, masker=SecretMasker(["x1234"]))
    b = SshSettings(name="cli", host="sw", password=SECRET)
    c = SshSettings(name="cli", host="sw", password=SECRET + "-rotated")
    assert a == b
    assert a != c
    assert b.with_appliance("ns/sw").appliance == "ns/sw"


def test_reach_validation() -> None:
    ReachSettings().validate()
    for bad in (ReachSettings(mode="jumpHost"), ReachSettings(mode="proxy"), ReachSettings(mode="broker")):
        with pytest.raises(ValueError):
            bad.validate()


# --------------------------------------------------------------------------- wire


def test_wire_round_trips() -> None:
    login = HttpRequest(connection="api", method="POST", path="/login", json={"u": "admin", "p": SECRET})
    h = HttpSettings(
        name="api",
        appliance="ns/fw",
        base_url="https://fw:8443/api",
        auth=HttpSessionAuth(login=login, token_jsonpath="$.t", csrf_cookie="c", csrf_header="X-C"),
        headers={"X-A": "b"},
        verify=False,
    )
    masker = SecretMasker()
    decoded = wire.decode_http_settings(wire.encode(h), masker)
    assert decoded == h
    assert isinstance(decoded.auth, HttpSessionAuth) and decoded.auth.login.json == {
        "u": "admin",
        "p": SECRET,
    }
    assert SECRET in wire.login_secrets(decoded)

    b = HttpSettings(name="api", base_url="http://x", auth=HttpBodyKeyAuth(field="key", value=SECRET))
    assert wire.decode_http_settings(wire.encode(b)) == b
    assert wire.decode_http_settings(wire.encode(b)).masker(SECRET) == "******"

    s = SshSettings(
        name="cli", host="sw", port=2222, username="u", private_key="K" * 10, on_connect=("a", "b")
    )
    assert wire.decode_ssh_settings(wire.encode(s)) == s
    req = HttpRequest(connection="api", method="PUT", path="/x", query={"a": "1"}, form={"f": "v"}, timeout=3)
    assert wire.decode_request(wire.encode(req)) == req
    cmds = CliCommands(connection="cli", commands=("show run",), mode="exec", config_mode=True, timeout=2.5)
    assert wire.decode_commands(wire.encode(cmds)) == cmds
    resp = RawResponse(status=201, headers={"a": "b"}, text="t", outputs=("o",), exit_status=0, elapsed=1.5)
    assert wire.decode_response(wire.encode(resp)) == resp


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"name": "x"}, "target.host: required"),
        ({"name": "x", "host": 5}, "target.host: must be a str"),
        ({"name": "x", "host": "h", "port": "22"}, "target.port: must be an integer"),
        ({"name": "x", "host": "h", "port": True}, "target.port: must be an integer"),
        ({"name": "x", "host": "h", "mode": "shell"}, "target.mode: must be one of"),
        ({"name": "x", "host": "h", "on_connect": "a"}, "target.on_connect: must be a list"),
        ({"name": "x", "host": "h", "evil": 1}, "unknown key(s) evil"),
        ([], "target: must be an object"),
    ],
)
def test_wire_is_strict(doc: Any, problem: str) -> None:
    with pytest.raises(wire.WireError, match=re.escape(problem)):
        wire.decode_ssh_settings(doc)


def test_wire_rejects_unknown_auth() -> None:
    with pytest.raises(wire.WireError, match=r"auth\.type"):
        wire.decode_http_settings({"name": "a", "base_url": "http://x", "auth": {"type": "magic"}})


@pytest.mark.parametrize("cls", [TransportError, AuthenticationError, VerificationError, DeviceError])
def test_errors_cross_the_wire(cls: type[TransportError]) -> None:
    err = cls(
        f"failed with {SECRET}",
        transient=cls is TransportError,
        status=503,
        retry_after=2.0,
        device_message=f"said {SECRET}",
    )
    if cls is TransportError:
        mark_not_delivered(err)
    back = wire.decode_error(wire.encode_error(err), mask=SecretMasker([SECRET]), via="via broker b: ")
    assert type(back) is cls
    assert back.transient == err.transient
    assert (back.status, back.retry_after) == (503, 2.0)
    assert SECRET not in str(back) and "via broker b: " in str(back)
    assert back.device_message == "said ******"
    assert may_have_landed(back) == (cls is not TransportError)


def test_malformed_error_is_transient() -> None:
    assert wire.decode_error({"type": "Nope"}, mask=SecretMasker()).transient


# --------------------------------------------------------------------------- http helpers


def test_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 + 60) == 0.0


def test_cookie_unquoting() -> None:
    assert _unquote_cookie('"abc"') == "abc"
    assert _unquote_cookie('"\\"abc\\""') == "abc"
    assert _unquote_cookie("abc") == "abc"


# --------------------------------------------------------------------------- CLI parsing


class FakeStream:
    def __init__(self, *chunks: str) -> None:
        self.chunks = list(chunks)

    async def read(self, n: int) -> str:
        await asyncio.sleep(0)
        return self.chunks.pop(0) if self.chunks else ""


PROMPT = re.compile(r"(?:[\r\n][\w.@()/:-]+[#>$%] ?$)")


async def test_prompt_reader_splits_output_at_prompts() -> None:
    stream = FakeStream("Welcome\r\nedge1> ", "show ver\r\nEmuOS 1.0\r\n", "uptime 1d\r\nedge1> ")
    reader = _PromptReader(stream)  # type: ignore[arg-type]
    banner = await reader.until(PROMPT, 5)
    assert banner is not None and _clean(banner, None) == "Welcome"
    text = await reader.until(PROMPT, 5)
    assert text is not None
    assert _clean(text, "show ver") == "EmuOS 1.0\nuptime 1d"
    assert await reader.until(PROMPT, 5) is None  # the session ended


async def test_prompt_reader_matches_a_bare_first_prompt_and_strips_ansi() -> None:
    reader = _PromptReader(FakeStream("\x1b[2Jedge1# "))  # type: ignore[arg-type]
    assert await reader.until(PROMPT, 5) == ""


async def test_prompt_reader_times_out() -> None:
    class Never:
        async def read(self, n: int) -> str:
            await asyncio.sleep(10)
            return ""

    with pytest.raises(TimeoutError):
        await _PromptReader(Never()).until(PROMPT, 0.05)  # type: ignore[arg-type]


def test_error_line_finds_the_devices_line() -> None:
    patterns = [re.compile(r"^%\s?(Invalid|Error)", re.MULTILINE)]
    out = "set x\n% Invalid input detected at '^' marker.\nmore"
    assert _error_line(out, patterns) == "% Invalid input detected at '^' marker."
    assert _error_line("all good\n100% done", patterns) is None


# --------------------------------------------------------------------------- logs


def test_library_logs_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    masker = SecretMasker(["Lib-Secret-123"])
    logsafe.register(masker)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info('HTTP Request: GET %s "200 OK"', "https://fw/api?key=Lib-Secret-123")
    logging.getLogger("asyncssh").info("[conn=1, chan=0]   Command: %s", "set password Unknown-Yet-9")
    logging.getLogger("aiohttp.internal").debug("Dropped cookie %r for %s", "Lib-Secret-123", "fw")
    assert "Lib-Secret-123" not in caplog.text
    assert "https://fw/api?key=******" in caplog.text
    assert "Dropped cookie '******' for fw" in caplog.text
    assert "Unknown-Yet-9" not in caplog.text
    assert "Command: <not logged>" in caplog.text


# --------------------------------------------------------------------------- broker allow-list


async def test_broker_allow_list() -> None:
    from vnf_operator.broker.app import AllowList, TokenSource

    allow = AllowList(["10.0.0.0/8, 2001:db8::/32", "fw1.example.net", "*.lab.example"])
    assert await allow.allows("10.1.2.3")
    assert await allow.allows("2001:db8::1")
    assert not await allow.allows("192.168.1.1")
    assert await allow.allows("FW1.example.net.")
    assert await allow.allows("sw7.lab.example")
    assert not await allow.allows("lab.example.evil")
    names_only = AllowList(["fw1.example.net"])
    assert not await names_only.allows("fw2.example.net")  # no networks: not resolved, refused
    assert not AllowList([])
    tokens = TokenSource(token=" tok-123456\n")
    assert tokens.matches("tok-123456")
    assert not tokens.matches("tok-12345")
    with pytest.raises(ValueError):
        TokenSource(token="  ")
