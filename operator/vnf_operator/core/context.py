"""The template context: what a dictionary's templates can see.

The engine builds one `TemplateContext` per appliance and derives narrower ones per call with
`dataclasses.replace` (or the helpers below). `core/render.py` turns it into the mapping the
templates see, adding `connection` (of the call being rendered), `marker` and `templates`.

| name                                  | what                                                          |
|---------------------------------------|---------------------------------------------------------------|
| `appliance`                           | `{name, namespace, host, ports, vars}`                        |
| `vars`                                | provider `vars` overridden by the appliance's `spec.vars`     |
| `item`                                | the desired item, defaults applied (create/update)            |
| `actual`                              | the device's item (update/delete)                             |
| `id`                                  | the device id of the item (update/delete/move)                |
| `credentials`                         | secret values by credential name (masked in every output)     |
| `connection`                          | `{name, host, port, base_url}` of the call's connection       |
| `bootstrap`                           | outputs captured by bootstrap steps                           |
| `steps`                               | `{STEP: {ok, captured, items, data}}` of earlier bootstrap steps|
| `params`                              | parameters of a custom operation / bootstrap step             |
| `items`, `creates`, `updates`, `deletes` | the whole change set (batch operations)                    |
| `before_id`, `after_id`               | neighbours of a moved item (move operations)                  |
| `begin`                               | values the service's `begin` steps captured (in a transaction)|
| `marker`                              | the service's rendered ownership marker                       |
| `result`                              | the parsed answer of the operation (callbacks)                |
| `templates`                           | the dictionary's snippets, rendered on use                    |
| `omit`                                | drop this body leaf / query parameter / header                |

A name that has no value in the current call is undefined: using it is an error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core.model import ProviderDictionary
from vnf_operator.core.templating import SnippetText


@dataclass(frozen=True)
class ApplianceInfo:
    """What templates see as `appliance`."""

    name: str
    namespace: str = "default"
    host: str = ""
    ports: Mapping[str, int] = field(default_factory=dict)
    """Port overrides per connection name (`spec.management.ports`)."""
    vars: Mapping[str, Any] = field(default_factory=dict)
    """The appliance's `spec.vars` (merged over the provider's `vars`)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "host": self.host,
            "ports": dict(self.ports),
            "vars": dict(self.vars),
        }


@dataclass(frozen=True)
class TemplateContext:
    """Everything a render may use; fields left None are undefined in templates."""

    appliance: ApplianceInfo
    credentials: Mapping[str, str] = field(default_factory=dict)
    item: Mapping[str, Any] | None = None
    actual: Mapping[str, Any] | None = None
    id: str | None = None
    params: Mapping[str, Any] | None = None
    bootstrap: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Any] = field(default_factory=dict)
    items: Sequence[Mapping[str, Any]] | None = None
    creates: Sequence[Mapping[str, Any]] | None = None
    updates: Sequence[Mapping[str, Any]] | None = None
    deletes: Sequence[Mapping[str, Any]] | None = None
    before_id: str | None = None
    after_id: str | None = None
    result: Mapping[str, Any] | None = None
    begin: Mapping[str, Any] | None = None

    def replace(self, **changes: Any) -> TemplateContext:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def for_item(
        self,
        item: Mapping[str, Any] | None,
        *,
        actual: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> TemplateContext:
        """A context for one item operation (create: item; update: item, actual, id; delete: actual, id)."""
        return dataclasses.replace(self, item=item, actual=actual, id=id)

    def mapping(self, provider: ProviderDictionary) -> dict[str, Any]:
        """The names templates see (without `connection`, `marker`, `templates`: the renderer adds them)."""
        merged_vars = {**provider.vars, **dict(self.appliance.vars)}
        out: dict[str, Any] = {
            "appliance": {**self.appliance.as_dict(), "vars": merged_vars},
            "vars": merged_vars,
            "credentials": self._credentials(provider),
            "bootstrap": dict(self.bootstrap),
            "steps": dict(self.steps),
        }
        optional = {
            "item": self.item,
            "actual": self.actual,
            "id": self.id,
            "params": self.params,
            "items": self.items,
            "creates": self.creates,
            "updates": self.updates,
            "deletes": self.deletes,
            "before_id": self.before_id,
            "after_id": self.after_id,
            "result": self.result,
            "begin": dict(self.begin) if self.begin is not None else None,
        }
        for k, v in optional.items():
            if v is not None:
                out[k] = v
        return out

    def _credentials(self, provider: ProviderDictionary) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.credentials)
        # Declared optional credentials the Secret does not carry render as empty text.
        for name, spec in provider.credentials.items():
            if name not in values and not spec.required:
                values[name] = ""
        return values


class Placeholder(SnippetText):
    """A stand-in for a secret value when rendering for display without credentials."""

    __slots__ = ()


def credential_placeholders(provider: ProviderDictionary) -> dict[str, str]:
    """`<credentials.NAME>` for every declared credential (vnfctl render without --credentials)."""
    return {name: Placeholder(f"<credentials.{name}>") for name in provider.credentials}


def missing_credentials(
    provider: ProviderDictionary, values: Mapping[str, str], *, bootstrap: bool = False
) -> list[str]:
    """Required credentials (of the normal or the bootstrap Secret) that `values` lacks."""
    return sorted(
        name
        for name, spec in provider.credentials.items()
        if spec.required and spec.bootstrap == bootstrap and not values.get(name)
    )
