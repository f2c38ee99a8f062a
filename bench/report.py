"""Goals and the markdown report, from the results dict that `bench.run` writes as JSON (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

GOALS = {
    "cold_wall_s": 60.0,  # 1000x20 cold convergence
    "noop_wall_s": 10.0,  # no-op resync of 1000
    "change_p50_s": 0.5,
    "change_p95_s": 2.0,
    "peak_rss_mib": 200e6 / 2**20,  # the goal's 200 MB (decimal) in MiB, ~190.7; at 1000 appliances
    "ansible_speedup": 20.0,  # on 20x20
}
GOAL_FLEET = 1000


def _largest(sizes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(sizes, key=lambda s: (s["appliances"], s["rules"]), default=None)


def _at(sizes: Sequence[Mapping[str, Any]], appliances: int) -> Mapping[str, Any] | None:
    exact = [s for s in sizes if s["appliances"] == appliances]
    return _largest(exact)


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def evaluate_goals(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per goal: target, measured value (with the size it comes from), met (None: not measured)."""
    sizes: list[Mapping[str, Any]] = list(results.get("sizes") or [])
    at_goal = _at(sizes, GOAL_FLEET)
    src = at_goal or _largest(sizes)
    label = src["size"] if src else "-"
    scaled = at_goal is None
    rows: list[dict[str, Any]] = []

    def row(goal: str, target: str, value: Any, met: bool | None, where: str, note: str = "") -> None:
        if scaled and met is not None and where != "20x20":
            note = (note + "; " if note else "") + f"measured at {where}, not at {GOAL_FLEET} appliances"
            met = None
        rows.append(
            {"goal": goal, "target": target, "measured": value, "at": where, "met": met, "note": note}
        )

    cold = _get(src, "cold")
    wall = _get(cold, "wall_s")
    minimum = _get(cold, "device_requests", "is_minimum")
    row(
        "cold convergence 1000x20",
        f"≤ {GOALS['cold_wall_s']:.0f} s, device requests = minimum",
        None
        if wall is None
        else f"{wall:.1f} s; requests {_get(cold, 'device_requests', 'total')} "
        f"vs minimum {_get(cold, 'device_requests', 'minimum_total')}",
        None if wall is None else bool(wall <= GOALS["cold_wall_s"] and minimum),
        label,
        "" if src is None or src.get("rules") == 20 else f"rule count differs ({label})",
    )
    noop = _get(src, "noop")
    nwall, nwrites = _get(noop, "wall_s"), _get(noop, "device_requests", "writes")
    row(
        "no-op resync of 1000",
        f"≤ {GOALS['noop_wall_s']:.0f} s, zero writes",
        None if nwall is None else f"{nwall:.1f} s; {nwrites} writes",
        None if nwall is None else bool(nwall <= GOALS["noop_wall_s"] and nwrites == 0),
        label,
    )
    change = _get(src, "change", "write_to_device_s")
    p50, p95 = _get(change, "p50"), _get(change, "p95")
    rows.append(
        {
            "goal": "change latency (write → device)",
            "target": f"p50 ≤ {GOALS['change_p50_s']} s, p95 ≤ {GOALS['change_p95_s']:.0f} s",
            "measured": None if p50 is None else f"p50 {p50:.3f} s, p95 {p95:.3f} s",
            "at": label,
            "met": None
            if p50 is None
            else bool(p50 <= GOALS["change_p50_s"] and p95 <= GOALS["change_p95_s"]),
            "note": "" if not scaled else f"fleet of {label} (goal does not name a fleet size)",
        }
    )
    rss = _get(src, "operator", "peak_rss_mib")
    row(
        "operator peak RSS at 1000 appliances",
        "≤ 200 MB",
        None if rss is None else f"{rss:.0f} MiB = {rss * 2**20 / 1e6:.0f} MB",
        None if rss is None else bool(rss <= GOALS["peak_rss_mib"]),
        label,
    )
    ans = results.get("ansible") or {}
    runs = [r for r in ans.get("ansible") or [] if r.get("ok")]
    op = _get(ans, "operator", "wall_s")
    if runs and op:
        best = min(runs, key=lambda r: r["wall_s"])
        speed = best["wall_s"] / op
        rows.append(
            {
                "goal": "faster than Ansible on 20x20",
                "target": f"≥ {GOALS['ansible_speedup']:.0f}x",
                "measured": f"{speed:.1f}x (fastest Ansible: forks {best['forks']}, {best['wall_s']:.1f} s; "
                f"operator {op:.1f} s)",
                "at": ans.get("size", "-"),
                "met": bool(speed >= GOALS["ansible_speedup"]) if ans.get("size") == "20x20" else None,
                "note": "" if ans.get("size") == "20x20" else f"run at {ans.get('size')}, not 20x20",
            }
        )
    else:
        rows.append(
            {
                "goal": "faster than Ansible on 20x20",
                "target": f"≥ {GOALS['ansible_speedup']:.0f}x",
                "measured": None,
                "at": "-",
                "met": None,
                "note": "not run" if not ans else "a run failed",
            }
        )
    return rows


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def render_markdown(results: Mapping[str, Any]) -> str:
    meta = results.get("meta") or {}
    lines: list[str] = [f"# vnf-operator benchmark — {meta.get('started', '')}", ""]
    lines += [
        f"- machine: {meta.get('cpu_count')} cores ({meta.get('cpu_model', '?')}), "
        f"{meta.get('memory_gib', '?')} GiB; load average at start {meta.get('loadavg_start', '?')}, "
        f"at end {meta.get('loadavg_end', '?')}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in (meta.get('versions') or {}).items())}",
        f"- settings: latency {meta.get('latency_ms')} ms per device request, operator workers "
        f"{meta.get('workers')}, provider limits {meta.get('provider_limits')}, sizes {meta.get('sizes')}"
        + (" (quick run)" if meta.get("quick") else ""),
        f"- wall time of the whole run: {_fmt(meta.get('duration_s'), 0)} s",
        "",
        "## Goals",
        "",
        "| goal | target | measured | at | result | note |",
        "|---|---|---|---|---|---|",
    ]
    for g in results.get("goals") or evaluate_goals(results):
        lines.append(
            f"| {g['goal']} | {g['target']} | {_fmt(g['measured'])} | {g['at']} | {_mark(g['met'])} | {g['note']} |"
        )
    sizes = results.get("sizes") or []
    if sizes:
        lines += [
            "",
            "## Cold convergence (empty devices → every appliance Ready)",
            "",
            "| size | wall s | lower bound s | ratio | device req | minimum | extra | apiserver req (operator) "
            "| per appliance | operator CPU s | peak RSS MiB | ok |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in sizes:
            c = s.get("cold") or {}
            d = c.get("device_requests") or {}
            lines.append(
                f"| {s['size']} | {_fmt(c.get('wall_s'))} | {_fmt(_get(c, 'lower_bound', 'minimum_requests', 'fleet_s'))} "
                f"| {_fmt(c.get('ratio_to_lower_bound'))} | {d.get('total', '-')} | {d.get('minimum_total', '-')} "
                f"| {d.get('extra_total', '-')} | {_get(c, 'apiserver', 'operator_total')} "
                f"| {_fmt(c.get('apiserver_per_appliance'), 1)} | {_fmt(c.get('operator_cpu_s'))} "
                f"| {_fmt(c.get('operator_peak_rss_mib'), 0)} | {c.get('ok')} |"
            )
        first = (sizes[0].get("cold") or {}).get("device_requests") or {}
        if first.get("extra_by_template"):
            lines += [
                "",
                f"Extra device requests beyond the minimum ({sizes[0]['size']}, by request): "
                + ", ".join(f"`{k}` {v:+d}" for k, v in first["extra_by_template"].items()),
            ]
        lines += [
            "",
            "Where an appliance's cold time goes (p50 / p95 s) and the operator's apiserver requests:",
            "",
        ]
        for s in sizes:
            c = s.get("cold") or {}
            if s.get("error"):
                lines.append(f"- {s['size']}: **error** {s['error']}")
                continue
            ph = c.get("phases") or {}
            parts = [
                f"{label} {_fmt(_get(ph, key, 'p50'))} / {_fmt(_get(ph, key, 'p95'))}"
                for label, key in (
                    ("create → first device request", "create_to_first_device_request_s"),
                    ("first → last device request", "first_to_last_device_request_s"),
                    ("last device request → Ready seen", "last_device_request_to_ready_seen_s"),
                )
            ]
            api = _get(c, "apiserver", "operator") or {}
            lines.append(
                f"- {s['size']}: "
                + "; ".join(parts)
                + "; apiserver: "
                + ", ".join(f"{k} {v}" for k, v in api.items())
            )
    if any(s.get("noop") for s in sizes):
        lines += [
            "",
            "## No-op resync (nothing changed; trigger: one annotation on the provider, or one per appliance)",
            "",
            "Steady state (every resync after the first re-check); `first`: the first re-check after the cold"
            " run, which writes each status once (its plan is empty now).",
            "",
            "| size | run | trigger | wall s | annotating s | device req / appliance | writes | apiserver req / appliance "
            "| operator CPU ms / appliance | waited for idle s | ok |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in sizes:
            steady = s.get("noop") or {}
            for run, n in (("steady", steady), ("first", steady.get("first") or {})):
                if not n:
                    continue
                lines.append(
                    f"| {s['size']} | {run} | {n.get('trigger', 'appliances')} | {_fmt(n.get('wall_s'))} "
                    f"| {_fmt(n.get('annotate_s'))} "
                    f"| {_fmt(_get(n, 'device_requests', 'per_appliance'), 1)} "
                    f"| {_get(n, 'device_requests', 'writes')} | {_fmt(n.get('apiserver_per_appliance'), 1)} "
                    f"| {_fmt(n.get('operator_cpu_ms_per_appliance'), 1)} | {_fmt(n.get('waited_for_idle_s'), 1)} "
                    f"| {n.get('ok')} |"
                )
    if any(s.get("change") for s in sizes):
        lines += [
            "",
            "## Change latency (one rule of one appliance, API write → device runs it)",
            "",
            "| size | edits | p50 s | p95 s | max s | write → Ready p50 s | p95 s | waited for idle s | ok |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in sizes:
            ch = s.get("change") or {}
            dev, rdy = ch.get("write_to_device_s") or {}, ch.get("write_to_ready_s") or {}
            lines.append(
                f"| {s['size']} | {ch.get('edits', '-')} | {_fmt(dev.get('p50'), 3)} | {_fmt(dev.get('p95'), 3)} "
                f"| {_fmt(dev.get('max'), 3)} | {_fmt(rdy.get('p50'), 3)} | {_fmt(rdy.get('p95'), 3)} "
                f"| {_fmt(ch.get('waited_for_idle_s'), 1)} | {ch.get('ok')} |"
            )
    ans = results.get("ansible")
    if ans:
        op = ans.get("operator") or {}
        lines += [
            "",
            f"## Side by side with Ansible ({ans.get('size')}, {ans.get('ansible_core')})",
            "",
            "| runner | wall s | CPU s | device requests | operator faster by | ok |",
            "|---|---|---|---|---|---|",
            f"| vnf-operator (workers {meta.get('workers')}) | {_fmt(op.get('wall_s'))} | {_fmt(op.get('operator_cpu_s'))} "
            f"| {_get(op, 'device_requests', 'total')} | 1x | {op.get('ok')} |",
        ]
        for r in ans.get("ansible") or []:
            lines.append(
                f"| ansible-playbook --forks {r['forks']} | {_fmt(r.get('wall_s'))} | {_fmt(r.get('ansible_cpu_s'))} "
                f"| {r.get('device_requests')} | {_fmt(r.get('operator_speedup'), 1)}x | {r.get('ok')} |"
            )
    shard = results.get("shard")
    if shard and shard.get("status") == "ran":
        one, two = shard.get("one_operator") or {}, shard.get("two_shards") or {}
        lines += [
            "",
            f"## Two shards ({shard.get('size')}, cold convergence, {shard.get('workers_per_shard')} workers per process)",
            "",
            "| operators | wall s | device requests | operator CPU s | reconciles | ok |",
            "|---|---|---|---|---|---|",
            f"| 1 | {_fmt(one.get('wall_s'))} | {one.get('device_requests')} | {_fmt(one.get('operator_cpu_s'))} | - "
            f"| {one.get('ok')} |",
            f"| 2 (VNF_SHARD=0/2, 1/2) | {_fmt(two.get('wall_s'))} | {_get(two, 'device_requests', 'total')} "
            f"| {' + '.join(_fmt(x) for x in two.get('operator_cpu_s_per_shard') or [])} "
            f"| {' + '.join(str(int(x)) for x in two.get('reconciles_per_shard') or [])} | {two.get('ok')} |",
            "",
            f"Speed-up of two shards over one operator: {_fmt(shard.get('speedup'))}x "
            f"(one operator's device-side lower bound: {_fmt(one.get('lower_bound_s'))} s).",
        ]
    elif shard:
        lines += ["", "## Two shards", "", f"{shard.get('status')}: {shard.get('reason', '')}"]
    for scenario, prof in (results.get("profile") or {}).items():
        if not isinstance(prof, Mapping) or not prof.get("top_own"):
            continue
        lines += [
            "",
            f"## Profile of the operator: {prof.get('size')} {scenario} (py-spy, {prof.get('samples')} samples)",
            "",
            "| top functions by own time | % | top vnf_operator functions, inclusive | % |",
            "|---|---|---|---|",
        ]
        own, inc = prof["top_own"][:12], prof.get("top_inclusive_vnf_operator", [])[:12]
        for i in range(max(len(own), len(inc))):
            a = own[i] if i < len(own) else {"function": "", "percent": ""}
            b = inc[i] if i < len(inc) else {"function": "", "percent": ""}
            fa = f"`{a['function']}`" if a["function"] else ""
            fb = f"`{b['function']}`" if b["function"] else ""
            lines.append(f"| {fa} | {a['percent']} | {fb} | {b['percent']} |")
        groups = prof.get("own_by_top_level") or []
        if groups:
            lines += [
                "",
                "Own time by package: " + ", ".join(f"{g['function']} {g['percent']}%" for g in groups[:10]),
            ]
    notes = results.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "What is counted: see bench/README.md.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.report RESULT.json...`: (re)write each result's markdown next to it."""
    import json
    import sys
    from pathlib import Path

    for name in argv if argv is not None else sys.argv[1:]:
        path = Path(name)
        results = json.loads(path.read_text())
        results["goals"] = evaluate_goals(results)
        path.with_suffix(".md").write_text(render_markdown(results))
        print(path.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
