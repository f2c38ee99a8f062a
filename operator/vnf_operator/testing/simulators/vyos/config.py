"""VyOS configuration trees: set/delete by path, the showConfig shape, ``set`` command listings.

A tree is the showConfig JSON shape: containers and tag nodes are dicts (tag values are keys),
single leaves are strings, multi-value leaves are lists, valueless leaves are ``{}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from .schema import SCHEMA, Container, Flag, Leaf, Node, Tag

Tree = dict[str, Any]


class ConfigError(Exception):
    """A set/delete/commit failure; the text is what VyOS prints."""


def _path_text(path: Sequence[str]) -> str:
    return " ".join(path)


def _invalid_path(path: Sequence[str]) -> ConfigError:
    return ConfigError(f"Configuration path: [{_path_text(path)}] is not valid\nSet failed")


def _invalid_value(path: Sequence[str], value: str) -> ConfigError:
    return ConfigError(
        f'Invalid value "{value}" for [{_path_text(path)}]\nValue validation failed\nSet failed'
    )


def set_path(tree: Tree, path: Sequence[str]) -> None:
    """``set a b c [value]``: create nodes along ``path``, validating every word."""
    node: Node = SCHEMA
    target: Tree = tree
    index = 0
    while index < len(path):
        word = path[index]
        if isinstance(node, Container):
            child = node.children.get(word)
            if child is None:
                raise _invalid_path(path[: index + 1])
            if isinstance(child, Leaf):
                _set_leaf(target, word, child, path, index + 1)
                return
            if isinstance(child, Flag):
                if index + 1 != len(path):
                    raise _invalid_path(path)
                target[word] = {}
                return
            target = target.setdefault(word, {})
            node = child
            index += 1
        elif isinstance(node, Tag):
            if not node.check(word):
                raise _invalid_value(path[:index], word)
            target = target.setdefault(word, {})
            node = node.child
            index += 1
        else:  # pragma: no cover - leaves return above
            raise _invalid_path(path)
    if isinstance(node, Tag):
        raise ConfigError(f"Configuration path: [{_path_text(path)}] requires a value\nSet failed")


def _set_leaf(target: Tree, name: str, leaf: Leaf, path: Sequence[str], value_index: int) -> None:
    if value_index >= len(path):
        raise ConfigError(f"Configuration path: [{_path_text(path)}] requires a value\nSet failed")
    if value_index != len(path) - 1:
        raise _invalid_path(path)
    value = path[value_index]
    if not leaf.check(value):
        raise _invalid_value(path[:value_index], value)
    if leaf.multi:
        values = target.setdefault(name, [])
        if value not in values:
            values.append(value)
    else:
        target[name] = value


def delete_path(tree: Tree, path: Sequence[str]) -> bool:
    """``delete ...``; returns False when nothing matched. Emptied containers are pruned."""
    if not path:
        existed = bool(tree)
        tree.clear()
        return existed
    stack: list[tuple[Tree, str, bool]] = []  # (parent, key, key is a tag value)
    node: Node | None = SCHEMA
    target: Any = tree
    for index, word in enumerate(path):
        last = index == len(path) - 1
        if isinstance(target, list):  # one value of a multi-value leaf
            if not last or word not in target:
                return False
            target.remove(word)
            if not target:
                parent, key, _ = stack.pop()
                del parent[key]
                _prune(stack)
            return True
        if isinstance(target, str):  # ``delete leaf value`` matches the current value only
            if not last or target != word:
                return False
            parent, key, _ = stack.pop()
            del parent[key]
            _prune(stack)
            return True
        if not isinstance(target, dict) or word not in target:
            return False
        stack.append((target, word, isinstance(node, Tag)))
        if isinstance(node, Container):
            node = node.children.get(word)
        elif isinstance(node, Tag):
            node = node.child
        else:
            node = None
        target = target[word]
    parent, key, _ = stack.pop()
    del parent[key]
    _prune(stack)
    return True


def _prune(stack: list[tuple[Tree, str, bool]]) -> None:
    """Drop containers left empty, but keep tag entries such as ``ethernet eth1``."""
    for parent, key, is_tag_value in reversed(stack):
        child = parent[key]
        if isinstance(child, dict) and not child and not is_tag_value:
            del parent[key]
        else:
            break


def get_node(tree: Tree, path: Sequence[str]) -> Any:
    """The subtree (or leaf value) at ``path``; raises KeyError when absent."""
    target: Any = tree
    for word in path:
        if isinstance(target, dict) and word in target:
            target = target[word]
        else:
            raise KeyError(word)
    return target


def schema_at(path: Sequence[str]) -> Node | None:
    node: Node = SCHEMA
    for word in path:
        if isinstance(node, Container):
            child = node.children.get(word)
            if child is None:
                return None
            node = child
        elif isinstance(node, Tag):
            node = node.child
        else:
            return None
    return node


def _sort_key(node: Node | None, key: str) -> tuple[int, Any]:
    if isinstance(node, Tag) and node.numeric and key.isdigit():
        return (0, int(key))
    return (1, key)


def sorted_tree(tree: Any, path: tuple[str, ...] = ()) -> Any:
    """Children in VyOS order: alphabetical, numeric tags by number."""
    if not isinstance(tree, dict):
        return copy.deepcopy(tree)
    node = schema_at(path)
    keys = sorted(tree, key=lambda key: _sort_key(node, key))
    return {key: sorted_tree(tree[key], (*path, key)) for key in keys}


def quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def set_commands(tree: Tree, path: tuple[str, ...] = ()) -> Iterator[str]:
    """``show configuration commands``: one ``set`` line per leaf."""
    ordered = sorted_tree(tree, path)
    for key, value in ordered.items():
        here = (*path, key)
        node = schema_at(here)
        if isinstance(value, list):
            for item in value:
                yield f"set {_path_text(here)} {quote(item)}"
        elif isinstance(value, str):
            yield f"set {_path_text(here)} {quote(value)}"
        elif not value:
            yield f"set {_path_text(here)}"
        else:
            if isinstance(node, Tag):
                for tag_key, child in value.items():
                    tagged = (*here, tag_key)
                    if child:
                        yield from set_commands(child, tagged)
                    else:
                        yield f"set {_path_text(tagged)}"
            else:
                yield from set_commands(value, here)


def curly(tree: Any, path: tuple[str, ...] = (), indent: int = 0) -> list[str]:
    """The brace format of ``show configuration`` / config.boot."""
    lines: list[str] = []
    pad = "    " * indent
    for key, value in sorted_tree(tree, path).items():
        here = (*path, key)
        node = schema_at(here)
        if isinstance(value, list):
            lines.extend(f"{pad}{key} {item}" for item in value)
        elif isinstance(value, str):
            shown = f'"{value}"' if (" " in value or not value) else value
            lines.append(f"{pad}{key} {shown}")
        elif isinstance(node, Tag):
            for tag_key, child in value.items():
                if child:
                    lines.append(f"{pad}{key} {tag_key} {{")
                    lines.extend(curly(child, (*here, tag_key), indent + 1))
                    lines.append(f"{pad}}}")
                else:
                    lines.append(f"{pad}{key} {tag_key}")
        elif value:
            lines.append(f"{pad}{key} {{")
            lines.extend(curly(value, here, indent + 1))
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{key}")
    return lines


def compare(old: Tree, new: Tree) -> list[str]:
    """``compare`` as command lines: ``+ set ...`` / ``- set ...``."""
    before = set(set_commands(old))
    after = set(set_commands(new))
    removed = [f"- {line}" for line in set_commands(old) if line not in after]
    added = [f"+ {line}" for line in set_commands(new) if line not in before]
    return removed + added
