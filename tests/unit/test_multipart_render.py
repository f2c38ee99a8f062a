"""Multipart bodies in the dictionary language: model rules, loader checks, rendering, wire framing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import DictionaryError, InjectionError
from vnf_operator.core.loader import load_provider_file, load_provider_text
from vnf_operator.core.render import (
    describe,
    display_masker,
    format_text,
    render_connection,
    render_operation,
)
from vnf_operator.core.rendered import HttpRequest, MultipartField
from vnf_operator.transport.http import FormPart, _multipart_parts, encode_multipart

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

DICTIONARY = """
info: {name: Multipart, vendor: Test}
credentials:
  token: {}
connections:
  api: {type: https, auth: {type: bearer, token: "{{ credentials.token }}"}}
services:
  system:
    operations:
      restore:
        parameters:
          config: {required: true}
          name: {default: config.xml}
        http:
          method: POST
          path: /backup/restore
          multipart:
            conffile: {filename: "{{ params.name }}", contentType: text/xml, content: "{{ params.config }}"}
            keep: {content: "1"}
"""

CTX = TemplateContext(appliance=ApplianceInfo(name="fw", host="192.0.2.1"), credentials={"token": "T0ken!x"})


def test_parts_render_in_order_with_any_content() -> None:
    lp = load_provider_text(DICTIONARY)
    config = '<?xml version="1.0"?>\n<opnsense><a b="c">&amp;</a></opnsense>\r\n'
    op = render_operation(lp, "system", "restore", CTX.replace(params={"config": config, "name": "fw.xml"}))
    assert isinstance(op, HttpRequest)
    assert op.multipart == (
        MultipartField("conffile", config, "fw.xml", "text/xml"),
        MultipartField("keep", "1", None, ""),
    )
    assert op.json is None and op.form is None and op.content is None
    conn = render_connection(lp, "api", CTX)
    shown = describe(op, conn, display_masker(CTX, [conn]))
    assert shown["multipart"]["conffile"] == {
        "filename": "fw.xml",
        "contentType": "text/xml",
        "content": config,
    }
    assert "--- part conffile; filename='fw.xml' (text/xml)" in format_text(shown)


def test_a_file_name_cannot_inject_a_header_line() -> None:
    lp = load_provider_text(DICTIONARY)
    with pytest.raises(InjectionError, match=r"multipart\.conffile\.filename"):
        render_operation(lp, "system", "restore", CTX.replace(params={"config": "x", "name": "a\r\nX: y"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("          form: {a: b}\n", "only one of body, form, rawBody, multipart may be set"),
        ("", "needs at least one part"),
    ],
)
def test_multipart_is_the_only_body(change: str, message: str) -> None:
    text = DICTIONARY.replace("          multipart:\n", change + "          multipart:\n")
    if not change:
        text = text.split("          multipart:")[0] + "          multipart: {}\n"
    with pytest.raises(DictionaryError, match=message):
        load_provider_text(text)


def test_loader_checks_part_templates_and_methods() -> None:
    with pytest.raises(DictionaryError, match=r"multipart\.conffile\.content"):
        load_provider_text(DICTIONARY.replace("{{ params.config }}", "{{ params.config "))
    with pytest.raises(DictionaryError, match="a GET request cannot carry a body"):
        load_provider_text(DICTIONARY.replace("method: POST", "method: GET"))
    with pytest.raises(DictionaryError, match="contentType"):
        load_provider_text(DICTIONARY.replace("contentType: text/xml", "contentType: 'text/xml\\r\\nX: y'"))


def test_frames_files_and_plain_fields_as_httpx_did() -> None:
    req = HttpRequest(
        "api",
        "POST",
        "/r",
        multipart=(MultipartField("conffile", "<x/>", "c.xml", "text/xml"), MultipartField("keep", "1")),
    )
    parts = _multipart_parts(req)
    assert parts is not None
    body, ctype = encode_multipart(parts, boundary="b0")
    assert ctype == "multipart/form-data; boundary=b0"
    # httpx's framing, kept byte for byte when the transport moved to aiohttp
    built = httpx.Request(
        "POST",
        "http://127.0.0.1/r",
        files=[("conffile", ("c.xml", b"<x/>", "text/xml")), ("keep", (None, b"1"))],
        headers={"Content-Type": ctype},
    )
    assert body == built.read()
    text = body.decode()
    assert 'name="conffile"; filename="c.xml"\r\nContent-Type: text/xml\r\n\r\n<x/>' in text
    assert 'name="keep"\r\n\r\n1' in text
    assert _multipart_parts(HttpRequest("api", "GET", "/")) is None


def test_form_params_are_escaped() -> None:
    body, _ = encode_multipart([FormPart('a"b\\c\n', b"v", 'f"\r.xml', "text/xml")], boundary="b")
    assert b'name="a%22b\\\\c%0A"; filename="f%22%0D.xml"' in body


def test_opnsense_restore_is_a_conffile_upload() -> None:
    opn = load_provider_file(ROOT / "providers" / "opnsense.yaml")
    op = render_operation(opn, "system_backup", "restore", CTX.replace(params={"config": "<opnsense/>"}))
    assert isinstance(op, HttpRequest) and op.path == "/core/backup/restore"
    assert op.multipart is not None and op.multipart[0] == MultipartField(
        "conffile", "<opnsense/>", "config.xml", "text/xml"
    )
