"""Templating: filters, strict undefined with precise names, the sandbox, snippets, omit."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnf_operator.core import filters as f
from vnf_operator.core.errors import TemplateError, VnfError
from vnf_operator.core.templating import (
    OMIT,
    Kind,
    compile_expression,
    compile_template,
    evaluate,
    render,
    render_text,
)

pytestmark = pytest.mark.unit


def r(source: str, kind: Kind = Kind.TEXT, **ctx: object) -> object:
    return render(compile_template(source, kind, where="t"), ctx, where="t")


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 24 | netmask }}", "255.255.255.0"),
        ("{{ '/8' | netmask }}", "255.0.0.0"),
        ("{{ '10.1.2.3/30' | netmask }}", "255.255.255.252"),
        ("{{ '2001:db8::/64' | netmask }}", "ffff:ffff:ffff:ffff::"),
        ("{{ '255.255.240.0' | prefixlen }}", "20"),
        ("{{ '10.0.0.0/12' | prefixlen }}", "12"),
        ("{{ '10.0.0.0/24' | wildcard }}", "0.0.0.255"),
        ("{{ '255.255.255.252' | wildcard }}", "0.0.0.3"),
        ("{{ '0.0.0.255' | wildcard_prefixlen }}", "24"),
        ("{{ '10.1.2.3/24' | network }}", "10.1.2.0"),
        ("{{ '10.1.2.3/24' | address }}", "10.1.2.3"),
        ("{{ '10.1.2.3/24' | prefix }}", "24"),
        ("{{ '10.1.2.3' | prefix }}", "32"),
        ("{{ '10.1.2.3/24' | cidr }}", "10.1.2.0/24"),
        ("{{ '2001:db8::1/64' | ip_version }}", "6"),
        ("{{ '192.0.2.1' | ip_version }}", "4"),
        ("{{ true | bool01 }}{{ 'no' | bool01 }}{{ 'On' | bool01 }}{{ 0 | bool01 }}", "1010"),
        ("{{ 'a b/c?d' | urlquote }}", "a%20b%2Fc%3Fd"),
        ("{{ 'x y' | quote }}", '"x y"'),
        ("{{ {'a': [1, 'é']} | tojson }}", '{"a": [1, "é"]}'),
        ("{{ '<a & \"b\">' | xmlescape }}", "&lt;a &amp; &quot;b&quot;&gt;"),
        ("{{ 'ABC' | lower }}{{ 'abc' | upper }}", "abcABC"),
    ],
)
def test_filters(source: str, expected: str) -> None:
    assert r(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ '255.0.255.0' | prefixlen }}", "not a contiguous netmask"),
        ("{{ 33 | netmask }}", "not an IPv4 prefix length"),
        ("{{ 'banana' | network }}", "is not an IP address or CIDR prefix"),
        ("{{ 'maybe' | bool01 }}", "is not a boolean"),
        ("{{ '2001:db8::/64' | wildcard }}", "IPv4 only"),
        ("{{ none | quote }}", "got no value"),
        ("{{ 'a\nb' | quote }}", "a newline"),
    ],
)
def test_filter_errors_are_template_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        r(source)
    assert info.value.where == "t" and message in str(info.value)


@given(st.integers(min_value=0, max_value=32))
def test_netmask_and_prefixlen_are_inverse(plen: int) -> None:
    mask = f.netmask(plen)
    assert f.prefixlen(mask) == plen
    assert f.wildcard_prefixlen(f.wildcard(plen)) == plen
    assert int(ipaddress.IPv4Address(mask)) ^ int(ipaddress.IPv4Address(f.wildcard(plen))) == 0xFFFFFFFF


@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=32))
def test_network_address_prefix_of_any_cidr(ip: ipaddress.IPv4Address, plen: int) -> None:
    text = f"{ip}/{plen}"
    assert f.address(text) == str(ip)
    assert f.prefix(text) == plen
    assert ipaddress.ip_address(f.network(text)) in ipaddress.ip_network(text, strict=False)


# ----------------------------------------------------------------------------- strict undefined


def test_undefined_top_level_variable_is_named() -> None:
    with pytest.raises(TemplateError) as info:
        r("{{ item.name }}", vars={})
    assert str(info.value) == "t: undefined variable `item`"


def test_undefined_nested_field_names_the_dotted_path() -> None:
    with pytest.raises(TemplateError) as info:
        r("{{ item.source.port }}", item={"source": {"net": "any"}})
    assert "`item.source` has no field `port`" in str(info.value)


def test_undefined_list_element_is_named() -> None:
    with pytest.raises(TemplateError, match=r"`item.ports` has no element 3"):
        r("{{ item.ports[3] }}", item={"ports": [1]})


def test_is_defined_and_default_work_with_strict_undefined() -> None:
    assert r("{{ 'y' if item.x is defined else 'n' }}", item={}) == "n"
    assert r("{{ item.x | default('d') }}", item={}) == "d"


def test_field_names_win_over_dict_methods() -> None:
    assert (
        r("{{ item.items }}-{{ item.values }}-{{ item.keys }}", item={"items": 1, "values": 2, "keys": 3})
        == "1-2-3"
    )


# ----------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ item.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
        "{{ item.update({'x': 1}) }}",
        "{{ 'a' * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ range(10**9) | list }}",
        "{{ lipsum.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_escapes_and_bombs(source: str) -> None:
    with pytest.raises(TemplateError):
        r(source, item={"a": 1})


def test_sandbox_blocks_format_string_escape() -> None:
    with pytest.raises(TemplateError):
        r("{{ '{0.__class__.__mro__}'.format(item) }}", item={})


# ----------------------------------------------------------------------------- snippets, omit, native


def test_snippets_render_with_the_same_context_and_rules() -> None:
    ctx = {"templates": {"iface": "interface {{ item.name }}"}, "item": {"name": "Gi1"}}
    assert render_text("{{ templates.iface }}", Kind.CLI, ctx, where="t") == "interface Gi1"
    bad = {"templates": {"iface": "interface {{ item.name }}"}, "item": {"name": "Gi1; reload"}}
    with pytest.raises(TemplateError, match="not a safe CLI token"):
        render_text("{{ templates.iface }}", Kind.CLI, bad, where="t")


def test_recursive_snippets_stop() -> None:
    ctx = {"templates": {"a": "{{ templates.a }}"}}
    with pytest.raises(TemplateError, match="nested too deeply"):
        render_text("{{ templates.a }}", Kind.TEXT, ctx, where="t")


def test_json_leaf_that_is_one_expression_keeps_its_type() -> None:
    assert r("{{ item.port }}", Kind.JSON, item={"port": 22}) == 22
    assert r("{{ item.tags }}", Kind.JSON, item={"tags": ["a", "b"]}) == ["a", "b"]
    assert r("{{ item.on }}", Kind.JSON, item={"on": False}) is False
    assert r("p{{ item.port }}", Kind.JSON, item={"port": 22}) == "p22"


def test_omit_drops_a_value_only_where_allowed() -> None:
    assert r("{{ item.x | default(omit) }}", Kind.JSON, item={}) is OMIT
    assert r("{{ omit }}", Kind.QUERY) is OMIT
    with pytest.raises(TemplateError, match="`omit` is only allowed"):
        r("{{ omit }}", Kind.CLI)


def test_expressions_evaluate_to_plain_data() -> None:
    expr = compile_expression("steps.a.captured.key is defined", where="e")
    assert evaluate(expr, {"steps": {"a": {"captured": {"key": "k"}}}}, where="e") is True
    assert evaluate(expr, {"steps": {"a": {"captured": {}}}}, where="e") is False
    with pytest.raises(TemplateError, match="undefined variable `steps`"):
        evaluate(compile_expression("steps.a", where="e"), {}, where="e")


def test_compile_errors_name_the_place() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("{% if x %}", Kind.TEXT, where="spec.x.y")
    assert info.value.where == "spec.x.y" and "template syntax error" in str(info.value)


@given(st.text(max_size=60))
def test_any_template_text_fails_only_with_vnf_errors(source: str) -> None:
    try:
        out = r(source, Kind.CLI, item={"a": "b c"}, id="x")
    except VnfError as e:
        assert str(e).startswith("t: ")
    else:
        assert isinstance(out, str)
