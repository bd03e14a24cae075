"""Reading the documents users write (plans, routing files): YAML that refuses duplicate keys,
and validation error locations written the way users read them (``phases[1].tier_id``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


def format_loc(loc: Sequence[int | str], root: str = "(document)") -> str:
    """``("phases", 0, "tier_id")`` -> ``"phases[0].tier_id"``; ``root`` for an empty path."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or root


class StrictYamlLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one,
    which would drop half of a plan or a routing file without a word)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """Parse YAML safely, refusing duplicate keys (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
