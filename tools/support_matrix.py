"""Generate docs/support-matrix.md: vendor x service x operation, and what proves each one.

Sources, all in the repository:

- `providers/*.yaml`: the dictionaries (services, operations, ordering, commit steps, bootstrap);
- `tests/integration/conformance/cases/*.yaml`: which provider x service the conformance suite runs
  against a simulator (`simulator:`) or against real software in network namespaces (`lab:`), with
  which checks, and the known gaps it records as strict xfails;
- `tests/e2e/*.py`: which providers run against real software (an e2e test that names
  `providers/<name>.yaml`), and which of their services it uses (their names quoted in that test).

    python tools/support_matrix.py          # (re)write docs/support-matrix.md
    python tools/support_matrix.py --check  # exit 1 when docs/support-matrix.md is stale

`tests/integration/conformance/test_support_matrix.py` runs the check in the test suite.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OUTPUT = Path("docs/support-matrix.md")
STANDARD = ("list", "create", "update", "delete")

# The per-service checks of tests/integration/conformance/test_conformance.py, in column order:
# (test function, column title, case key the test needs, only for ordered services).
CHECKS: tuple[tuple[str, str, str, bool], ...] = (
    ("test_create_update_delete", "create → update → delete, re-apply writes nothing", "create", False),
    ("test_adopts_preexisting_item", "adopts a pre-existing item", "preexisting", False),
    ("test_delete_and_update_in_one_sync", "delete + update in one sync", "trio", False),
    ("test_reorder_moves_items", "reorder by moves", "trio", True),
    ("test_insert_lands_in_place", "insert lands in place", "trio", True),
)
PROVIDER_CHECKS: tuple[tuple[str, str], ...] = (
    ("test_health_checks_pass", "health checks"),
    ("test_bootstrap_of_a_factory_fresh_device", "bootstrap of a factory-fresh device"),
)


@dataclass
class Service:
    name: str
    description: str
    operations: list[str]
    ordering: str
    commit: str
    custom: list[str]
    writable: bool


@dataclass
class Provider:
    name: str
    path: str
    product: str
    vendor: str
    version: str
    transports: list[str]
    commit_model: str
    bootstrap: bool
    phases: list[str]
    services: list[Service]
    case: Mapping[str, Any] | None = None
    case_path: str = ""
    e2e: list[str] = field(default_factory=list)
    e2e_services: set[str] = field(default_factory=set)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _call_text(op: Mapping[str, Any] | None) -> str:
    """`POST /firewall/apply` or `cli: write memory` for a commit step."""
    if not op:
        return ""
    if "http" in op:
        call = op["http"]
        return f"{call.get('method', 'GET')} {call.get('path', '')}"
    if "cli" in op:
        return "cli: " + "; ".join(str(c) for c in op["cli"].get("commands", []))
    return "yes"


def load_provider(path: Path) -> Provider | None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("kind") != "VnfProvider":
        return None
    spec = doc["spec"]
    info = spec.get("info") or {}
    services = []
    for name, svc in (spec.get("services") or {}).items():
        ops = dict(svc.get("operations") or {})
        ordering = svc.get("ordering") or {}
        move = ordering.get("move")
        order_parts = []
        if ordering.get("positionField"):
            order_parts.append(f"position `{ordering['positionField']}`")
        if move:
            order_parts.append(f"`{move}`")
        custom = [o for o in ops if o not in STANDARD and o != move]
        services.append(
            Service(
                name=name,
                description=_one_line(svc.get("description", "")),
                operations=[o for o in STANDARD if o in ops],
                ordering=" + ".join(order_parts),
                commit=_call_text(svc.get("commit")),
                custom=custom,
                writable="create" in ops,
            )
        )
    connections = spec.get("connections") or {}
    transports = sorted({str(c.get("type")) for c in connections.values()})
    phases = []
    for check in spec.get("healthChecks") or []:
        phase = check.get("phase", "api")
        if phase not in phases:
            phases.append(phase)
    return Provider(
        name=doc["metadata"]["name"],
        path=str(path.relative_to(REPO)),
        product=str(info.get("name", "")),
        vendor=str(info.get("vendor", "")),
        version=str(info.get("version", "")),
        transports=transports,
        commit_model=str((info.get("capabilities") or {}).get("commitModel", "live")),
        bootstrap=bool(spec.get("bootstrap")),
        phases=phases,
        services=services,
    )


def load(root: Path = REPO) -> list[Provider]:
    providers = [p for p in (load_provider(f) for f in sorted((root / "providers").glob("*.yaml"))) if p]
    by_name = {p.name: p for p in providers}
    for path in sorted((root / "tests/integration/conformance/cases").glob("*.yaml")):
        case = yaml.safe_load(path.read_text(encoding="utf-8"))
        provider = by_name.get(str(case.get("provider")))
        if provider is not None:
            provider.case = case
            provider.case_path = str(path.relative_to(root))
    for path in sorted((root / "tests/e2e").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        for provider in providers:
            file_name = Path(provider.path).name
            if re.search(rf"[\"'/]{re.escape(file_name)}[\"']", text):
                provider.e2e.append(str(path.relative_to(root)))
                for svc in provider.services:
                    if re.search(rf"[\"']{re.escape(svc.name)}[\"']", text):
                        provider.e2e_services.add(svc.name)
    return providers


# --------------------------------------------------------------------------- proofs


def _gaps(case: Mapping[str, Any], test: str, service: str | None) -> list[str]:
    return [
        _one_line(g["reason"])
        for g in case.get("gaps") or []
        if g.get("test", "*") in ("*", test) and (service is None or g.get("service", "*") in ("*", service))
    ]


def simulated(provider: Provider, service: str) -> bool:
    return provider.case is not None and service in (provider.case.get("services") or {})


def on_real_software(provider: Provider) -> bool:
    """The provider's conformance case runs against real software in network namespaces."""
    return provider.case is not None and "lab" in provider.case


def against(provider: Provider) -> str:
    assert provider.case is not None
    if on_real_software(provider):
        return "real software (netns)"
    return f"simulator `{provider.case['simulator']['vendor']}`"


def proof(provider: Provider, service: Service) -> str:
    """R: real software (e2e), C: conformance on real software, S: simulator conformance, D: declared."""
    marks = []
    if service.name in provider.e2e_services:
        marks.append("R")
    if simulated(provider, service.name):
        marks.append("C" if on_real_software(provider) else "S")
    return "+".join(marks) if marks else "D"


class Footnotes:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"gap [{self.texts.index(text) + 1}](#gap-{self.texts.index(text) + 1})"


def check_cell(
    provider: Provider, service: Service, check: tuple[str, str, str, bool], notes: Footnotes
) -> str:
    test, _, needs, ordered_only = check
    case = provider.case
    if case is None or not simulated(provider, service.name):
        return ""
    spec = case["services"][service.name]
    if ordered_only and not service.ordering:
        return "n/a"
    if needs not in spec:
        return "—"
    gaps = _gaps(case, test, service.name)
    if gaps:
        return ", ".join(notes.ref(g) for g in gaps)
    return "✓"


# --------------------------------------------------------------------------- rendering


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def render(providers: Sequence[Provider]) -> str:
    notes = Footnotes()
    out = [
        "# Support matrix",
        "",
        "<!-- Generated by `python tools/support_matrix.py` from providers/*.yaml, "
        "tests/integration/conformance/cases/*.yaml and tests/e2e/; do not edit by hand. "
        "tests/integration/conformance/test_support_matrix.py fails when this file is stale. -->",
        "",
        "What each provider dictionary offers, operation by operation, and what proves it works:",
        "",
        "- **R** (real software): an end-to-end test (`tests/e2e/`) drives the real network function with "
        "the running operator and uses the service.",
        "- **C** (conformance on real software): the conformance suite (`tests/e2e/test_conformance_netns.py`) "
        "runs the service through the engine against the real network function in network namespaces "
        "(`docs/linux-router.md`), checking the device's own tools.",
        "- **S** (simulator): the conformance suite (`tests/integration/conformance/`) runs the service "
        "through the engine against the vendor's simulator (`docs/simulators.md`), which follows the vendor "
        "API as documented in the reference; a real device may still differ where the reference is unsure "
        "(the providers' pages list those points).",
        "- **D** (declared): in the dictionary, not exercised by any test.",
        "",
        "Run the proofs: `.venv/bin/pytest tests/integration/conformance` (simulators, no Kubernetes) and "
        "`.venv/bin/pytest -m e2e tests/e2e` (real software, needs root; conformance on real software: "
        "`tests/e2e/test_conformance_netns.py`).",
        "",
        "## Providers",
        "",
    ]
    rows = []
    for p in providers:
        proven = []
        if p.e2e:
            proven.append("real software (" + ", ".join(f"`{Path(t).name}`" for t in p.e2e) + ")")
        if p.case is not None:
            proven.append(f"conformance on {against(p)} (`{Path(p.case_path).name}`)")
        rows.append(
            [
                f"[`{p.name}`]({'../' + p.path})",
                f"{p.product} ({p.vendor})",
                p.version,
                ", ".join(p.transports),
                p.commit_model,
                "yes" if p.bootstrap else "—",
                " → ".join(p.phases) or "—",
                "; ".join(proven) or "declared only",
            ]
        )
    out += _table(
        [
            "provider",
            "product (vendor)",
            "dictionary",
            "transports",
            "commit model",
            "bootstrap",
            "health phases",
            "proven against",
        ],
        rows,
    )

    service_names: list[str] = []
    for p in providers:
        for s in p.services:
            if s.writable and s.name not in service_names:
                service_names.append(s.name)
    out += ["", "## Services by provider", "", "Writable services; the cell is the proof (R, C, S or D)."]
    out.append("")
    rows = []
    for name in service_names:
        row = [f"`{name}`"]
        for p in providers:
            svc = next((s for s in p.services if s.name == name), None)
            row.append(proof(p, svc) if svc is not None and svc.writable else "")
        rows.append(row)
    out += _table(["service", *(f"`{p.name}`" for p in providers)], rows)

    out += ["", "## Operations", ""]
    out.append(
        "`list` `create` `update` `delete` are what the sync engine runs; *order* is how device order follows "
        "the spec (a position field the engine writes, a move operation); *commit* runs once after changes; "
        "*other* are custom operations (run on demand with a VnfOperation)."
    )
    for p in providers:
        out += ["", f"### {p.product} (`{p.name}`)", ""]
        rows = []
        for s in p.services:
            ops = ["✓" if op in s.operations else "—" for op in STANDARD]
            rows.append(
                [
                    f"`{s.name}`",
                    *ops,
                    s.ordering or "—",
                    f"`{s.commit}`" if s.commit else "—",
                    ", ".join(f"`{c}`" for c in s.custom) or "—",
                    proof(p, s) if s.writable else "—",
                ]
            )
        out += _table(["service", *STANDARD, "order", "commit", "other", "proof"], rows)

    out += ["", "## Conformance checks", ""]
    out.append(
        "Per provider x service, the checks of `tests/integration/conformance/test_conformance.py`: ✓ passes, "
        "*gap* is a known engine gap recorded as a strict xfail (the test fails once the gap is fixed, so the "
        "entry must then go), — the case gives no data for it, n/a not an ordered service. Every check also "
        "compares the device's own state (a simulator's `/_sim/state`; on real software what `nft`, `vtysh` "
        "and HAProxy's runtime API show), not only what the dictionary lists."
    )
    out.append("")
    rows = []
    for p in providers:
        if p.case is None:
            continue
        for s in p.services:
            if simulated(p, s.name):
                rows.append(
                    [f"`{p.name}`", f"`{s.name}`", against(p), *(check_cell(p, s, c, notes) for c in CHECKS)]
                )
    out += _table(["provider", "service", "against", *(c[1] for c in CHECKS)], rows)
    out.append("")
    rows = []
    for p in providers:
        if p.case is None:
            continue
        cells = []
        for test, _ in PROVIDER_CHECKS:
            if test == "test_bootstrap_of_a_factory_fresh_device" and "bootstrap" not in p.case:
                cells.append("—" if not p.bootstrap else "not in the case")
                continue
            gaps = _gaps(p.case, test, None)
            cells.append(", ".join(notes.ref(g) for g in gaps) if gaps else "✓")
        rows.append([f"`{p.name}`", against(p), *cells])
    out += _table(["provider", "against", *(c[1] for c in PROVIDER_CHECKS)], rows)

    uncovered = []
    for p in providers:
        if p.case is None:
            continue
        for name, reason in (p.case.get("notCovered") or {}).items():
            uncovered.append(f"- `{p.name}` `{name}`: {_one_line(reason)}")
    if uncovered:
        out += ["", "Writable services without a conformance case:", "", *uncovered]

    if notes.texts:
        out += ["", "## Known gaps", ""]
        for i, text in enumerate(notes.texts, 1):
            out.append(f'<a id="gap-{i}"></a>{i}. {text}')
    out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args(argv)
    text = render(load(REPO))
    target = REPO / OUTPUT
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run `python tools/support_matrix.py`", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is current")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
