"""YAML read and written as kubectl reads it: the one loader and the one dumper of the project.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which decodes with (a fork of) go-yaml v2. Its
implicit typing is neither PyYAML's YAML 1.1 nor pure YAML 1.2:

- numbers as YAML 1.2's core schema writes them: ``1e-4`` is a float (YAML 1.1 and PyYAML say string), ints
  as Go's ``strconv.ParseInt(s, 0, 64)`` after dropping ``_`` (``0x1F``, ``0o17``, ``017``, ``0b101``);
- YAML 1.1's booleans (``yes``/``no``/``on``/``off``/``y``/``n`` in their three casings) and nulls;
- timestamps stay strings (go-yaml keeps them so for ``interface{}``), no base-60, no ``=``.

Katib's webhook decodes the resulting JSON into Go structs whose ``feasibleSpace.min`` (and every other
value Katib keeps as text) is a string, so an unquoted ``min: 1e-4`` reaches it as a number and is
rejected. Reading files with this resolver makes the parser report exactly that ("quote it").

Writing: :func:`dump_yaml` quotes every string that *any* of YAML 1.1 (PyYAML), YAML 1.2 core or kubectl
would read as something else (``"1e-4"``, ``"yes"``, ``"0o17"``, ``"2026-01-01"``), so what the project
prints reads back as the same object under all of them: ``kubectl apply`` creates what ``render`` shows.

Why PyYAML with a resolver and not ruamel.yaml's YAML 1.2 mode: kubectl is not YAML 1.2 (``yes`` is a bool
to it and a string to YAML 1.2), and the PyYAML resolver states go-yaml's rule in one function. ruamel
(YAML 1.2) is used by the tests as an independent reader of what we write.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

__all__ = ["YAMLError", "dump_yaml", "kubectl_tag", "load_yaml", "load_yaml_documents"]

YAMLError = yaml.YAMLError
_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL, _MERGE = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"

# go-yaml v2 resolve.go: resolveMapList and yamlStyleFloat, as sigs.k8s.io/yaml/goyaml.v2 ships them.
_WORDS: dict[str, tuple[str, Any]] = {}
for _words, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
):
    _WORDS.update({w: (_BOOL, _value) for w in _words})
_WORDS.update({w: (_NULL, None) for w in ("", "~", "null", "Null", "NULL")})
_WORDS.update({w: (_FLOAT, math.nan) for w in (".nan", ".NaN", ".NAN")})
_WORDS.update({w: (_FLOAT, math.inf) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")})
_WORDS.update({w: (_FLOAT, -math.inf) for w in ("-.inf", "-.Inf", "-.INF")})
_WORDS["<<"] = (_MERGE, None)
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_GO_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
_INT64 = 2**63


def _go_int(plain: str) -> int | None:
    """Go's ``ParseInt(plain, 0, 64)``, falling back to ``ParseUint`` as go-yaml does (None: not an int)."""
    if not _GO_INT.match(plain):
        return None
    sign = -1 if plain[0] == "-" else 1
    body = plain.lstrip("+-").lower()
    base = 16 if body.startswith("0x") else 8 if body.startswith("0o") else 2 if body.startswith("0b") else 10
    if base == 10 and len(body) > 1 and body[0] == "0":
        base, body = 8, "0o" + body[1:]
    value = sign * int(body, base)
    if -_INT64 <= value < _INT64 or (sign > 0 and value < 2**64):
        return value
    return None


def _go_value(value: str) -> tuple[str, Any]:
    """(tag, value) of a plain scalar as kubectl's go-yaml v2 resolves it."""
    if value in _WORDS:
        return _WORDS[value]
    if value[:1] in "+-0123456789.":
        plain = value.replace("_", "") if value[:1] != "." else value
        number = _go_int(plain)
        if number is not None:
            return _INT, number
        if _YAML_STYLE_FLOAT.match(plain):
            number = float(plain)
            if math.isfinite(number):  # Go's ParseFloat fails on overflow: then it stays a string
                return _FLOAT, number
    return _STR, value


def kubectl_tag(value: str) -> str:
    """The YAML tag kubectl gives ``value`` written as a plain (unquoted) scalar."""
    return _go_value(value)[0]


# The pure-Python parser: its error marks (line, column) are the ones users see; files here are small.
_Base = yaml.SafeLoader


class _KubectlLoader(_Base):  # type: ignore[misc, valid-type]
    """SafeLoader whose implicit typing is kubectl's (go-yaml v2), keys made strings as sigs.k8s.io/yaml does."""

    def resolve(self, kind, value, implicit):  # type: ignore[override]
        if kind is yaml.ScalarNode and implicit[0]:
            return _go_value(value)[0]
        return super().resolve(kind, value, implicit)


def _construct_int(loader, node):
    number = _go_int(loader.construct_scalar(node).replace("_", ""))
    return number if number is not None else yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_float(loader, node):
    text = loader.construct_scalar(node)
    tag, value = _go_value(text)
    return value if tag == _FLOAT else yaml.SafeLoader.construct_yaml_float(loader, node)


def _construct_bool(loader, node):
    tag, value = _go_value(loader.construct_scalar(node))
    return value if tag == _BOOL else yaml.SafeLoader.construct_yaml_bool(loader, node)


def _construct_mapping(loader, node):
    # Key by key (not via a dict first): the keys 1 and true are equal in Python, distinct strings to kubectl.
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, bool):
            key = "true" if key else "false"
        elif isinstance(key, (int, float)):
            key = str(key)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_KubectlLoader.add_constructor(_BOOL, _construct_bool)
_KubectlLoader.add_constructor(_INT, _construct_int)
_KubectlLoader.add_constructor(_FLOAT, _construct_float)
_KubectlLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
_KubectlLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml_documents(text: str) -> list[Any]:
    """Every document in ``text``, read as kubectl reads it; raises :data:`YAMLError` on bad syntax."""
    return list(yaml.load_all(text, Loader=_KubectlLoader))  # a SafeLoader subclass: no arbitrary objects


def load_yaml(text: str) -> Any:
    """The one document in ``text`` (None when empty), read as kubectl reads it."""
    return yaml.load(text, Loader=_KubectlLoader)  # a SafeLoader subclass: no arbitrary objects


class _SafeForAllDumper(yaml.SafeDumper):
    """SafeDumper that leaves a string plain only if YAML 1.1, YAML 1.2 core and kubectl all read it back as
    that string (kubectl's rule covers YAML 1.2 core's numbers, bools and nulls)."""

    def resolve(self, kind, value, implicit):  # type: ignore[override]
        tag = super().resolve(kind, value, implicit)  # YAML 1.1
        if kind is yaml.ScalarNode and implicit[0] and tag == _STR:
            if _YAML_STYLE_FLOAT.match(value):  # a number to YAML 1.2 even where Go's ParseFloat overflows
                return _FLOAT
            return kubectl_tag(value)
        return tag

    def ignore_aliases(self, data: Any) -> bool:
        return True  # manifests repeat small dicts; anchors would only confuse a reader


def dump_yaml(document: Any) -> str:
    """``document`` as block YAML, keys in their order, reading back as the same object under YAML 1.1, 1.2
    and kubectl (every ambiguous string quoted)."""
    return yaml.dump(
        document,
        Dumper=_SafeForAllDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=110,
    )
