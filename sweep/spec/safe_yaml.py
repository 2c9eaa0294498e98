"""YAML for specs, safe against documents built to exhaust the parser.

PyYAML's SafeLoader builds only plain types, but still expands aliases (a few lines of `&a` and
`*a` make billions of list entries: "billion laughs"), recurses once per level of nesting (a line
of `[` ends in a RecursionError), parses a megabyte of values for seconds, and keeps the last of
a key given twice without a word. The loader here refuses all of these while it composes the
node tree, before any object is built, and turns every error of the YAML into a
`SpecYAMLError` with its line (and column for syntax).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent

from .limits import MAX_DEPTH, MAX_NODES

MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<:` merges a mapping into another; not a key of its own


class SpecYAMLError(Exception):
    """What is wrong with a YAML text and where: `line` and `column` count from 1 (None: unknown)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message, self.line, self.column = message, line, column
        super().__init__(message)

    def where(self, source: str) -> str:
        """`source:LINE:COLUMN`, with what is known of the position."""
        return ":".join(str(part) for part in (source, self.line, self.column) if part is not None)


def _at(mark: yaml.Mark | None, message: str, column: bool = False) -> SpecYAMLError:
    if mark is None:
        return SpecYAMLError(message)
    return SpecYAMLError(message, mark.line + 1, mark.column + 1 if column else None)


class SpecLoader(yaml.SafeLoader):
    """SafeLoader without aliases, deeper nesting than MAX_DEPTH, more nodes than MAX_NODES, or
    a key given twice."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0  # collections open around the node being composed
        self._nodes = 0  # nodes composed so far

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        # refusing the anchor as well as the alias says so where the user starts the repeat
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise _at(event.start_mark, "anchors and aliases (&name, *name) are not accepted in a spec; write the value out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _at(event.start_mark, f"more than {MAX_NODES} keys and values; a spec needs a few hundred")
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _at(event.start_mark, f"mappings and lists nested more than {MAX_DEPTH} deep; a spec needs a few levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as err:  # e.g. 2024-13-45 as a date, or a 5,000-digit integer
            value = str(node.value) if len(str(node.value)) <= 40 else f"{node.value!s:.37}..."
            raise _at(node.start_mark, f"{value}: {str(err).split(';')[0]}") from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key, line = self.construct_object(key_node), key_node.start_mark.line + 1
            try:
                if key in first_line:
                    raise SpecYAMLError(f"key `{key}` given twice (first on line {first_line[key]})", line)
                first_line[key] = line
            except TypeError:  # an unhashable key: the constructor below names it
                pass
        return super().construct_mapping(node, deep)


def parse(text: str) -> Any:
    """The value of one YAML document. Raises SpecYAMLError."""
    loader = SpecLoader(text)
    try:
        return loader.get_single_data()
    except SpecYAMLError:
        raise
    except yaml.MarkedYAMLError as err:
        context = f" ({err.context}, from line {err.context_mark.line + 1})" if err.context and err.context_mark else ""
        raise _at(err.problem_mark, f"not valid YAML: {err.problem}{context}", column=True) from None
    except yaml.YAMLError as err:  # the reader's: a character YAML does not allow
        raise SpecYAMLError(f"not valid YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()
