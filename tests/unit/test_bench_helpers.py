"""The benchmark's own helpers: sizes, percentiles, request minimums, lower bounds, parsing, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bench.ansible.inventory import device_rule, inventory
from bench.common import (
    ProviderShape,
    Size,
    apiserver_requests,
    chain_seconds,
    counter_delta,
    fleet_lower_bound,
    list_requests,
    metric_sum,
    minimum_requests,
    parse_sizes,
    percentile,
    proc_cpu_seconds,
    proc_status_kib,
    split_operator_requests,
    split_reads_writes,
    summary,
)
from bench.profile import short, summarize
from bench.report import evaluate_goals, render_markdown

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OPNSENSE = yaml.safe_load((ROOT / "providers" / "opnsense.yaml").read_text())


def test_parse_sizes() -> None:
    assert parse_sizes("10x10, 100X50,1000x20") == [Size(10, 10), Size(100, 50), Size(1000, 20)]
    assert Size(20, 10).label == "20x10"
    for bad in ("", "10", "10x", "0x5", "ax2", "10x10;5x5"):
        with pytest.raises(ValueError):
            parse_sizes(bad)


def test_percentile_interpolates_like_numpy() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    s = summary([1.0, 2.0, 3.0, 4.0])
    assert (s["min"], s["p50"], s["max"], s["mean"], s["count"]) == (1.0, 2.5, 4.0, 2.5, 4.0)


def test_provider_shape_of_the_opnsense_dictionary() -> None:
    shape = ProviderShape.from_dictionary(OPNSENSE, "firewall_rules")
    # https_port is a TCP probe (no request); firmware_status and filter_readable are HTTP.
    assert shape.health_requests == 2
    assert shape.list_page_size == 500
    assert shape.has_commit
    assert (shape.requests_per_second, shape.burst, shape.max_concurrency) == (5.0, 5.0, 2)


def test_minimum_requests() -> None:
    shape = ProviderShape.from_dictionary(OPNSENSE, "firewall_rules")
    cold = minimum_requests(shape, items_on_device=0, changes=20)
    assert cold == {"health": 2, "list": 1, "writes": 20, "commit": 1, "total": 24}
    noop = minimum_requests(shape, items_on_device=20, changes=0)
    assert noop == {"health": 2, "list": 1, "writes": 0, "commit": 0, "total": 3}
    # A full page means one more (empty) page is needed to know the list ended.
    assert list_requests(499, 500) == 1
    assert list_requests(500, 500) == 2
    assert list_requests(1200, 500) == 3
    assert list_requests(10, None) == 1


def test_chain_seconds_follows_the_token_bucket() -> None:
    # No rate limit in the way: latency only.
    assert chain_seconds(10, 0.02, rate=1000, burst=1000) == pytest.approx(0.2)
    # Burst of 5 at 5/s, no latency: 5 at once, then one every 0.2 s.
    assert chain_seconds(5, 0.0, rate=5, burst=5) == pytest.approx(0.0)
    assert chain_seconds(6, 0.0, rate=5, burst=5) == pytest.approx(0.2)
    assert chain_seconds(24, 0.0, rate=5, burst=5) == pytest.approx(19 * 0.2)
    # Latency refills the bucket while waiting for the answer.
    slow = chain_seconds(24, 0.02, rate=5, burst=5)
    assert 19 * 0.2 < slow < 19 * 0.2 + 24 * 0.02
    assert chain_seconds(0, 0.02, rate=5, burst=5) == 0.0


def test_fleet_lower_bound() -> None:
    assert fleet_lower_bound(1000, 16, 4.0) == 63 * 4.0
    assert fleet_lower_bound(16, 16, 4.0) == 4.0
    assert fleet_lower_bound(17, 16, 4.0) == 8.0
    with pytest.raises(ValueError):
        fleet_lower_bound(1, 0, 1.0)


def test_reads_writes_and_deltas() -> None:
    counts = {
        "GET /api/firewall/filter/searchRule": 4,
        "POST /api/firewall/filter/addRule": 20,
        "POST /api/firewall/filter/apply": 1,
    }
    assert split_reads_writes(counts) == (4, 21)
    assert counter_delta({"a": 5, "b": 1}, {"a": 2, "b": 1, "c": 3}) == {"a": 3, "c": -3}


APISERVER_METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 30
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="vnf.operators.dev",resource="vnfappliances",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 7
apiserver_request_total{code="200",component="",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 3
apiserver_request_duration_seconds_bucket{verb="GET",le="0.1"} 9
"""


def test_apiserver_requests_by_verb_and_resource() -> None:
    assert apiserver_requests(APISERVER_METRICS) == {
        "GET secrets": 32,
        "PATCH vnfappliances/status": 7,
        "GET (non-resource)/metrics": 3,
    }
    assert metric_sum(APISERVER_METRICS, "apiserver_request_total", verb="GET") == 35


def test_operator_share_of_apiserver_requests() -> None:
    operator, other = split_operator_requests(
        {
            "GET secrets": 3,
            "PATCH vnfappliances/status": 1,
            "POST events": 21,
            "WATCH clusterroles": 1,
            "PUT leases": 2,
            "GET (non-resource)/apis": 1,
        }
    )
    assert operator == {"GET secrets": 3, "PATCH vnfappliances/status": 1, "POST events": 21}
    assert other == {"GET (non-resource)/apis": 1, "PUT leases": 2, "WATCH clusterroles": 1}


def test_proc_parsing() -> None:
    stat = "1234 (kopf (main) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0"
    assert proc_cpu_seconds(stat, 100) == pytest.approx(3.0)
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n"
    assert proc_status_kib(status, "VmHWM") == 204800
    assert proc_status_kib(status, "VmRSS") == 102400
    assert proc_status_kib(status, "VmSwap") == 0


def test_profile_summary() -> None:
    collapsed = (
        "process 1:kopf;<module> (kopf:8);reconcile (vnf_operator/engine/appliance.py:130);"
        "render (vnf_operator/core/render.py:40) 30\n"
        "process 1:kopf;<module> (kopf:8);select (/usr/lib/python3.11/selectors.py:468) 70\n"
    )
    out = summarize(collapsed)
    assert out["samples"] == 100
    assert out["top_own"][0]["samples"] == 70
    assert out["top_own"][0]["percent"] == 70.0
    names = [f["function"] for f in out["top_inclusive_vnf_operator"]]
    assert "vnf_operator/engine/appliance.py:reconcile" in names
    assert (
        short("run (/x/site-packages/kopf/_core/reactor/running.py:12)")
        == "kopf/_core/reactor/running.py:run"
    )


def test_inventory_for_the_playbook() -> None:
    rules = [{"description": "rule-0000", "action": "pass", "interface": "wan", "destination_port": 10000}]
    inv = inventory(
        [41000, 41001], api_key="k", api_secret="s", ca_file="/tmp/ca.pem", rules=rules, python="py"
    )
    group = inv["all"]["children"]["opnsense"]
    assert group["hosts"] == {
        "fw-0000": {"ansible_host": "127.0.0.1", "api_port": 41000},
        "fw-0001": {"ansible_host": "127.0.0.1", "api_port": 41001},
    }
    assert group["vars"]["firewall_rules"] == [device_rule(rules[0])]
    assert group["vars"]["firewall_rules"][0]["destination_port"] == "10000"
    assert group["vars"]["ansible_connection"] == "local"
    json.dumps(inv)  # the inventory file is JSON


def _size(label: str, n: int, m: int, wall: float, rss: float) -> dict[str, object]:
    return {
        "size": label,
        "appliances": n,
        "rules": m,
        "cold": {
            "ok": True,
            "wall_s": wall,
            "device_requests": {"total": n * (m + 6), "minimum_total": n * (m + 4), "is_minimum": False},
        },
        "noop": {"ok": True, "wall_s": 4.0, "device_requests": {"writes": 0, "per_appliance": 4.0}},
        "change": {"ok": True, "write_to_device_s": {"p50": 0.3, "p95": 0.6, "max": 0.7}},
        "operator": {"peak_rss_mib": rss},
    }


def test_goals_are_judged_at_1000_appliances_only() -> None:
    small = {"sizes": [_size("20x10", 20, 10, 5.0, 90.0)]}
    goals = {g["goal"]: g for g in evaluate_goals(small)}
    assert goals["cold convergence 1000x20"]["met"] is None
    assert goals["operator peak RSS at 1000 appliances"]["met"] is None
    assert goals["change latency (write → device)"]["met"] is True

    big = {
        "sizes": [_size("20x10", 20, 10, 5.0, 90.0), _size("1000x20", 1000, 20, 250.0, 180.0)],
        "ansible": {
            "size": "20x20",
            "operator": {"wall_s": 2.0},
            "ansible": [{"forks": 5, "ok": True, "wall_s": 60.0}, {"forks": 20, "ok": True, "wall_s": 30.0}],
        },
    }
    goals = {g["goal"]: g for g in evaluate_goals(big)}
    assert goals["cold convergence 1000x20"]["met"] is False  # too slow and not the minimum
    assert goals["cold convergence 1000x20"]["at"] == "1000x20"
    assert goals["no-op resync of 1000"]["met"] is True
    assert goals["operator peak RSS at 1000 appliances"]["met"] is True
    # Against the fastest Ansible run: 30 s / 2 s.
    assert goals["faster than Ansible on 20x20"]["met"] is False
    assert "15.0x" in goals["faster than Ansible on 20x20"]["measured"]


def test_markdown_report_renders_every_section() -> None:
    results = {
        "meta": {"started": "2026-01-01T00:00:00Z", "cpu_count": 2, "versions": {"kopf": "1.45.2"}},
        "sizes": [
            _size("20x10", 20, 10, 5.0, 90.0),
            {"size": "50x5", "appliances": 50, "rules": 5, "error": "boom"},
        ],
        "shard": {"status": "skipped", "reason": "not implemented: sharding not yet in the operator"},
    }
    text = render_markdown(results)
    for heading in (
        "## Goals",
        "## Cold convergence",
        "## No-op resync",
        "## Change latency",
        "## Two shards",
    ):
        assert heading in text
    assert "not implemented: sharding not yet in the operator" in text
    assert "**error** boom" in text
    assert "| 20x10 | 5.00 |" in text
