#!/usr/bin/env python3
"""Checks that every YAML file of the repository reads the same in YAML 1.1 and 1.2.

YAML 1.1 tools (PyYAML, SnakeYAML in openapi-generator, many Kubernetes and CI
tools) read the plain scalars yes/no/on/off/y/n (any case) as booleans, 010 as
octal 8, 1:30 as sexagesimal 90 and 1_000 as 1000; YAML 1.2 (the JSON-compatible
core schema) reads them as strings or as other numbers. An unquoted `no` in an
OpenAPI enum thus became `false`, and a real sitting's `"no"` failed validation.

For every plain (unquoted) scalar, keys included, this compares PyYAML's YAML 1.1
reading with the YAML 1.2 core schema's, and fails on any difference. It also
fails on a boolean inside an `enum` of a schema whose type is not boolean.

    python3 scripts/yaml11-check.py [FILE...]   (default: every *.yaml, *.yml
                                                 that git tracks)

Exit status 1 with one line per problem (file:line: what, and how to quote it).
Needs PyYAML; scripts/deploy-check.sh installs it with pip when it is missing.
"""

import math
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
NULL_12 = re.compile(r"^(?:null|Null|NULL|~|)$")
BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
INT10_12 = re.compile(r"^[-+]?[0-9]+$")
INT8_12 = re.compile(r"^0o[0-7]+$")
INT16_12 = re.compile(r"^0x[0-9a-fA-F]+$")
FLOAT_12 = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
INF_12 = re.compile(r"^[-+]?(?:\.inf|\.Inf|\.INF)$")
NAN_12 = re.compile(r"^(?:\.nan|\.NaN|\.NAN)$")


def read_12(text):
    """A plain scalar's value under the YAML 1.2 core schema."""
    if NULL_12.match(text):
        return None
    if BOOL_12.match(text):
        return text.lower() == "true"
    if INT10_12.match(text):
        return int(text, 10)
    if INT8_12.match(text):
        return int(text[2:], 8)
    if INT16_12.match(text):
        return int(text[2:], 16)
    if FLOAT_12.match(text):
        return float(text)
    if INF_12.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if NAN_12.match(text):
        return math.nan
    return text


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def walk(node, parent_key=None):
    """Yields (node, the key of the mapping entry it is the value of)."""
    if isinstance(node, yaml.ScalarNode):
        yield node, parent_key
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from walk(item, parent_key)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from walk(key, None)
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            yield from walk(value, name)


def schema_type(mapping):
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "type" and isinstance(value, yaml.ScalarNode):
            return value.value
    return None


def bool_enums(node, where):
    """Booleans in the `enum` of a schema that is not of type boolean."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value == "enum"
                and isinstance(value, yaml.SequenceNode)
                and schema_type(node) != "boolean"
            ):
                for item in value.value:
                    if isinstance(item, yaml.ScalarNode) and item.tag == "tag:yaml.org,2002:bool":
                        yield item
            yield from bool_enums(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from bool_enums(item, where)


def check(path):
    problems = []
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    text = path.read_text(encoding="utf-8")
    try:
        loader = yaml.SafeLoader(text)
        try:
            documents = []
            while loader.check_node():
                documents.append(loader.get_node())
            for doc in documents:
                for node, _ in walk(doc):
                    if node.style is not None or node.tag != loader.resolve(yaml.ScalarNode, node.value, (True, False)):
                        continue  # quoted, or tagged explicitly: read alike
                    if node.tag == "tag:yaml.org,2002:merge":
                        continue  # `<<`: merge keys, which 1.2 tools (compose) support too
                    v11 = loader.construct_object(node, deep=True)
                    v12 = read_12(node.value)
                    if not same(v11, v12):
                        line = node.start_mark.line + 1
                        problems.append(
                            f"{rel}:{line}: {node.value!r} reads {v11!r} in YAML 1.1 but {v12!r} "
                            f"in YAML 1.2: quote it (\"{node.value}\")"
                        )
                for node in bool_enums(doc, rel):
                    line = node.start_mark.line + 1
                    problems.append(f"{rel}:{line}: the enum value {node.value!r} is a boolean: quote it")
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        problems.append(f"{rel}: not YAML: {e}")
    return problems


def tracked_yaml():
    out = subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / line for line in out.splitlines() if line]


def main(argv):
    files = [pathlib.Path(a).resolve() for a in argv] or tracked_yaml()
    problems = [p for f in files for p in check(f)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"yaml11-check: {len(problems)} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"yaml11-check: ok ({len(files)} files read alike in YAML 1.1 and 1.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
