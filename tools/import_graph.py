#!/usr/bin/env python3
"""Print or draw the import graph of the collection's Python plugins.

  python tools/import_graph.py            # text: one line per file, its size and its imports
  python tools/import_graph.py --svg OUT  # an SVG picture of the layers (needs graphviz `dot`)

The graph is read from the real sources with `ast`, so it cannot drift from the code.
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys

PREFIX = "ansible_collections.mo.fleet.plugins."
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
LAYERS = (
    ("plugins/module_utils/_common", "common layer", "#e8f4e8"),
    ("plugins/module_utils", "engines (module_utils)", "#e8eef8"),
    ("plugins/modules", "modules (target side)", "#fdf2e0"),
    ("plugins/action", "action plugins (controller)", "#f8e8f0"),
    ("plugins/filter", "filters and tests (pure)", "#f0f0f0"),
    ("plugins/lookup", "lookups (controller, read only)", "#eef6f6"),
)


def _sources(root: str) -> list[str]:
    found = []
    for top in ("plugins",):
        for base, _dirs, files in os.walk(os.path.join(root, top)):
            for name in files:
                if name.endswith(".py") and name != "__init__.py":
                    found.append(os.path.relpath(os.path.join(base, name), root))
    return sorted(found)


def _node(relpath: str) -> str:
    return relpath[len("plugins/"):-len(".py")]


def _imports(root: str, relpath: str) -> list[str]:
    with open(os.path.join(root, relpath), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), relpath)
    out: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.ImportFrom) and item.module and item.module.startswith(PREFIX):
            base = item.module[len(PREFIX):].replace(".", "/")
            for alias in item.names:
                candidate = f"{base}/{alias.name}"
                if os.path.exists(os.path.join(root, "plugins", candidate + ".py")):
                    out.add(candidate)
                else:
                    out.add(base)
        elif isinstance(item, ast.Import):
            for alias in item.names:
                if alias.name.startswith(PREFIX):
                    out.add(alias.name[len(PREFIX):].replace(".", "/"))
    return sorted(out)


def graph(root: str) -> dict[str, tuple[int, list[str]]]:
    result = {}
    for relpath in _sources(root):
        with open(os.path.join(root, relpath), encoding="utf-8") as handle:
            lines = sum(1 for _line in handle)
        result[_node(relpath)] = (lines, _imports(root, relpath))
    return result


def _layer(node: str) -> int:
    path = "plugins/" + node.replace("test/", "filter/", 1)  # Jinja tests sit with the filters
    for index, (prefix, _label, _colour) in enumerate(LAYERS):
        if path.startswith(prefix + "/"):
            return index
    return len(LAYERS) - 1


def to_text(nodes: dict[str, tuple[int, list[str]]]) -> str:
    rows = [f"{name:45} {lines:5}  -> {', '.join(deps) or '-'}" for name, (lines, deps) in nodes.items()]
    return "\n".join(rows) + "\n"


def to_dot(nodes: dict[str, tuple[int, list[str]]]) -> str:
    """Graphviz source: plugins on top, engines below, the common layer (one box) at the bottom."""
    common = "module_utils/_common"

    def box(name: str) -> str:
        return common if name.startswith(common + "/") else name

    out = ["digraph imports {", "  rankdir=TB; concentrate=true; newrank=true; nodesep=0.15; ranksep=0.6;",
           '  node [shape=box, fontname=Helvetica, fontsize=10]; edge [color="#7a7a7a", arrowsize=0.5];']
    shared = [f"{name.split('/')[-1]}: {lines} lines" for name, (lines, _deps) in nodes.items() if box(name) == common]
    for index, (_prefix, label, colour) in enumerate(LAYERS):
        members = [name for name in nodes if _layer(name) == index and box(name) != common
                   and not name.startswith("doc_fragments/")]
        if index == 0:
            out.append(f'  subgraph cluster_0 {{ label="{label}"; style=filled; color="{colour}";')
            joined = "\\n".join(["common layer (_common/)"] + shared)
            out.append(f'    "{common}" [label="{joined}"];')
            out.append("  }")
            continue
        if not members:
            continue
        out.append(f'  subgraph cluster_{index} {{ label="{label}"; style=filled; color="{colour}";')
        for name in members:
            out.append(f'    "{name}" [label="{name.split("/")[-1]}\\n{nodes[name][0]} lines"];')
        out.append("  }")
    edges = set()
    for name, (_lines, deps) in nodes.items():
        if name.startswith("doc_fragments/"):
            continue
        for dep in deps:
            if dep in nodes and box(name) != box(dep):
                edges.add((box(name), box(dep)))
    out.extend(f'  "{a}" -> "{b}";' for a, b in sorted(edges))
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", metavar="OUT", help="write an SVG picture (needs graphviz dot)")
    parser.add_argument("--dot", action="store_true", help="print the graphviz source")
    args = parser.parse_args(argv)
    nodes = graph(os.path.normpath(ROOT))
    if args.dot:
        sys.stdout.write(to_dot(nodes))
    elif args.svg:
        dot = shutil.which("dot")
        if dot is None:
            sys.stderr.write("graphviz 'dot' is not installed: run lab/install-host-deps.sh first.\n")
            return 1
        svg = subprocess.run([dot, "-Tsvg"], input=to_dot(nodes), capture_output=True, text=True, check=True).stdout
        tmp = args.svg + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(svg)
        os.replace(tmp, args.svg)
    else:
        sys.stdout.write(to_text(nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
