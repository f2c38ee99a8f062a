"""A service's `begin`/`abort` steps: where `begin.NAME` may be used, that it is captured before use,
how the steps are found and rendered, and `vnfctl render` of operations using `begin`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from vnf_operator.cli.main import cli
from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import DictionaryError, TemplateError
from vnf_operator.core.loader import load_provider_data, load_provider_file
from vnf_operator.core.render import find_operation, render_operation, with_begin
from vnf_operator.core.rendered import HttpRequest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CTX = TemplateContext(appliance=ApplianceInfo(name="lb1", namespace="edge", host="192.0.2.1"))
TX = "/transactions/{{ begin.transaction_id }}"


def dictionary(**service: Any) -> dict[str, Any]:
    """A one-service dictionary whose changes go through a transaction (overridable parts)."""
    svc: dict[str, Any] = {
        "fields": {"name": {"required": True}},
        "identity": {"key": ["name"]},
        "begin": [
            {"http": {"path": "/version"}, "response": {"capture": {"version": "$"}}},
            {
                "http": {
                    "method": "POST",
                    "path": "/transactions",
                    "query": {"version": "{{ begin.version }}"},
                },
                "response": {"capture": {"transaction_id": "$.id"}},
            },
        ],
        "commit": {"http": {"method": "PUT", "path": TX}},
        "abort": {"http": {"method": "DELETE", "path": TX}},
        "operations": {
            "list": {"http": {"path": "/items"}, "response": {"items": "$[*]"}},
            "create": {
                "http": {
                    "method": "POST",
                    "path": "/items",
                    "query": {"transaction_id": "{{ begin.transaction_id }}"},
                    "body": {"name": "{{ item.name }}"},
                }
            },
        },
    }
    svc.update(service)
    return {
        "language": "v1",
        "info": {"name": "tx", "vendor": "example", "version": "1.0.0"},
        "connections": {"api": {"type": "https", "port": 443}},
        "services": {"things": svc},
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DictionaryError) as failed:
        load_provider_data(data)
    return [f"{p.path}: {p.message}" for p in failed.value.problems]


def test_a_transactional_service_loads_and_its_steps_are_found_by_name() -> None:
    lp = load_provider_data(dictionary())
    svc = lp.dictionary.services["things"]
    assert find_operation(lp, "things", "begin[1]") == (svc.begin[1], "services.things.begin[1]")
    assert find_operation(lp, "things", "abort") == (svc.abort, "services.things.abort")
    with pytest.raises(DictionaryError, match=r"known: list, create, commit, abort, begin\[0\], begin\[1\]"):
        find_operation(lp, "things", "begin[2]")


def test_changes_commit_and_abort_render_with_the_begin_values() -> None:
    lp = load_provider_data(dictionary())
    ctx = with_begin(CTX, {"version": 7, "transaction_id": "tx-1"}).for_item({"name": "a"})
    create = render_operation(lp, "things", "create", ctx)
    assert isinstance(create, HttpRequest)
    assert create.query == {"transaction_id": "tx-1"} and create.json == {"name": "a"}
    commit = render_operation(lp, "things", "commit", ctx)
    assert isinstance(commit, HttpRequest) and (commit.method, commit.path) == ("PUT", "/transactions/tx-1")
    opened = render_operation(lp, "things", "begin[1]", with_begin(CTX, {"version": 7}))
    assert isinstance(opened, HttpRequest) and opened.query == {"version": "7"}


def test_without_an_open_transaction_begin_is_undefined() -> None:
    lp = load_provider_data(dictionary())
    with pytest.raises(TemplateError, match="begin"):
        render_operation(lp, "things", "create", CTX.for_item({"name": "a"}))


def test_a_name_no_begin_step_captures_is_refused() -> None:
    data = dictionary()
    data["services"]["things"]["commit"]["http"]["path"] = "/transactions/{{ begin.tx }}"
    assert problems(data) == [
        "services.things.commit.http.path: uses `begin.tx` but no `begin` step captures `tx` "
        "(captured: transaction_id, version)"
    ]


def test_a_begin_step_may_use_only_what_earlier_steps_captured() -> None:
    steps = dictionary()["services"]["things"]["begin"]
    steps[0]["http"]["path"] = "/version/{{ begin.transaction_id }}"
    found = problems(dictionary(begin=steps))
    assert "services.things.begin[0].http.path: `begin` is defined only in a service's changes" in found[0]


def test_begin_values_in_a_snippet_are_checked_where_the_snippet_is_used() -> None:
    data = dictionary()
    data["templates"] = {"tx_query": "{{ begin.transaction }}"}
    data["services"]["things"]["operations"]["create"]["http"]["query"] = {"t": "{{ templates.tx_query }}"}
    assert problems(data) == [
        "services.things.operations.create.http.query.t: uses `begin.transaction` but no `begin` "
        "step captures `transaction` (captured: transaction_id, version)"
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("list", "services.things.operations.list.http.path: `begin` is defined only in"),
        ("health", "healthChecks[0].http.path: `begin` is defined only in"),
    ],
)
def test_begin_is_refused_where_no_transaction_is_open(where: str, expected: str) -> None:
    data = dictionary()
    if where == "list":
        data["services"]["things"]["operations"]["list"]["http"]["path"] = TX
    else:
        data["healthChecks"] = [{"name": "up", "http": {"path": TX}}]
    assert problems(data)[0].startswith(expected)


def test_begin_must_be_used_by_name_and_abort_needs_begin() -> None:
    data = dictionary()
    data["services"]["things"]["commit"]["http"]["path"] = "/t/{{ begin[item.name] }}"
    assert problems(data) == [
        "services.things.commit.http.path: `begin` must be used as `begin.NAME` so the names can be checked"
    ]
    bare = dictionary(
        begin=[],
        commit={"http": {"method": "PUT", "path": "/commit"}},
        abort={"http": {"method": "DELETE", "path": "/staged"}},
    )
    del bare["services"]["things"]["operations"]["create"]["http"]["query"]
    assert problems(bare) == ["services.things.abort: needs `begin` (abort drops what `begin` opened)"]
    unopened = dictionary(begin=[], abort=None)
    assert "uses `begin.transaction_id` but service `things` has no `begin`" in problems(unopened)[0]


def test_vnfctl_renders_begin_values_as_placeholders_or_given_values() -> None:
    path = ROOT / "providers/haproxy-dataplane.yaml"
    load_provider_file(path)  # the shipped dictionary uses begin and loads
    runner = CliRunner()
    args = ["render", str(path), "-s", "lb_pools", "--op", "delete", "--actual", "{name: web}", "-o", "yaml"]
    shown = yaml.safe_load(runner.invoke(cli, args, catch_exceptions=False).output)
    assert shown["query"] == {"transaction_id": "<begin.transaction_id>"}
    given = runner.invoke(cli, [*args[:4], "--op", "commit", "--begin", "transaction_id=tx-9", "-o", "yaml"])
    assert given.exit_code == 0, given.output
    assert yaml.safe_load(given.output)["path"] == "/services/haproxy/transactions/tx-9"
    wrong = runner.invoke(cli, [*args[:4], "--op", "commit", "--begin", "transaction_id"])
    assert wrong.exit_code != 0 and "NAME=VALUE" in wrong.output
