"""The architecture read from the imports (docs/architecture.md, the layers below).

Every module of ``orion/`` is parsed (ast, so imports inside functions count too)
and each import between two rooms — a folder (``orion/state/``) or a top-level
module (``orion/loop.py``) — is checked: no cycle, no edge upwards or sideways
(imports inside one folder are free), ``orion.config`` only in the agent and the
CLI (parts get values, not the whole config), only the agent builds the Raft
backend (``orion/raft/``) and only the backend imports pysyncobj, at most six
loose modules at the top of ``orion/``, and no module over 400 lines. A failure
prints the offending edges, file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orion"

# Low -> high. A room may import rooms of lower layers only. The bottom layer is values
# and settings: its modules may use each other (config reads defaults) without a cycle.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("domain", "defaults", "config", "version"),
    ("state", "gossip", "runtime", "peer_http", "network"),
    ("store",),
    ("raft", "membership", "loop"),
    ("control", "node"),
    ("metrics", "api"),
    ("stack",),  # compose files as services: reads the API's schema, used by the CLI
    ("agent",),
    ("cli",),
)
RANK = {room: i for i, layer in enumerate(LAYERS) for room in layer}
CONFIG_USERS = {"agent", "cli"}
# The pysyncobj backend is composed by the agent only; everything else sees the Store port.
RAFT_USERS = {"agent"}
MAX_LINES = 400
MAX_LOOSE_MODULES = 6

# Known exceptions, each to be deleted by the lead once the branch that removes it is merged.
ALLOWED_EDGES: set[tuple[str, str]] = set()
ALLOWED_SIZE: set[str] = set()


@dataclass(frozen=True)
class Edge:
    source: str  # file, relative to the repository
    line: int
    target: str  # the imported module, dotted
    src_room: str
    dst_room: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target} ({self.src_room} -> {self.dst_room})"


def room_of_module(dotted: str) -> str | None:
    """``orion.raft.store`` -> ``raft``; ``orion.loop`` -> ``loop``; outside orion -> None."""
    parts = dotted.split(".")
    if parts[0] != "orion":
        return None
    return parts[1] if len(parts) > 1 else "orion"


def room_of_file(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import in ``source``, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from orion.state import store`` names a module; ``from x import name`` its module.
                yield node.lineno, f"{base}.{alias.name}" if room_of_module(base) == "orion" else base


def edges_of(path: Path, source: str) -> list[Edge]:
    src_room = room_of_file(path)
    out: dict[Edge, None] = {}  # one edge per import line and module, in order
    for line, target in imports_of(source, module_name(path), path.name == "__init__.py"):
        dst_room = room_of_module(target)
        if dst_room is None or dst_room == src_room:
            continue
        out[Edge(str(path.relative_to(ROOT)), line, target, src_room, dst_room)] = None
    return list(out)


def all_edges() -> list[Edge]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        edges.extend(edges_of(path, path.read_text()))
    return edges


def allowed(edge: Edge) -> bool:
    return any(edge.source == src and (edge.target == dst or edge.target.startswith(dst + "."))
               for src, dst in ALLOWED_EDGES)


def layering_violations(edges: list[Edge]) -> list[str]:
    out = []
    for edge in edges:
        if allowed(edge) or "orion" in (edge.src_room, edge.dst_room):
            continue
        if edge.src_room not in RANK or edge.dst_room not in RANK:
            out.append(f"{edge}: room not in the layer table (tests/unit/test_layering.py LAYERS)")
            continue
        src, dst = RANK[edge.src_room], RANK[edge.dst_room]
        if dst > src:
            out.append(f"{edge}: upward (layer {src} -> {dst})")
        elif dst == src and src != 0:
            out.append(f"{edge}: sideways (siblings on layer {src})")
    return out


def cycles(edges: list[Edge]) -> list[str]:
    """Each strongly connected set of rooms with more than one member, with the edges inside it."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if not allowed(edge):
            graph.setdefault(edge.src_room, set()).add(edge.dst_room)

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            cur = todo.pop()
            if cur == b:
                return True
            if cur not in seen:
                seen.add(cur)
                todo.extend(graph.get(cur, ()))
        return False

    out = []
    for edge in edges:
        if not allowed(edge) and reaches(edge.dst_room, edge.src_room):
            out.append(f"{edge}: part of a cycle ({edge.dst_room} reaches {edge.src_room} back)")
    return out


def test_the_checker_sees_function_level_imports_and_reports_the_edge():
    path = PACKAGE / "state" / "example.py"
    source = "def f():\n    from orion.control.placement import plan\n    import orion.api.app\n"
    edges = edges_of(path, source)
    assert [str(e) for e in edges] == [
        "orion/state/example.py:2 imports orion.control.placement (state -> control)",
        "orion/state/example.py:3 imports orion.api.app (state -> api)",
    ]
    assert len(layering_violations(edges)) == 2
    assert cycles(edges + edges_of(PACKAGE / "control" / "x.py", "from orion.state import store\n"))


def test_no_import_goes_up_or_sideways():
    bad = layering_violations(all_edges())
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_import_cycle_between_rooms():
    bad = cycles(all_edges())
    assert not bad, "import cycles:\n" + "\n".join(bad)


def test_only_the_agent_and_the_cli_read_the_config():
    bad = [str(e) for e in all_edges()
           if (e.target == "orion.config" or e.target.startswith("orion.config.")) and e.src_room not in CONFIG_USERS]
    assert not bad, "parts get values, not AgentConfig:\n" + "\n".join(bad)


def external_imports(prefix: str) -> list[str]:
    """``file:line imports X`` for every import of the top-level package ``prefix`` in orion/."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, target in imports_of(path.read_text(), module_name(path), path.name == "__init__.py"):
            if target == prefix or target.startswith(prefix + "."):
                out.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return out


def test_only_the_agent_imports_the_raft_backend():
    bad = [str(e) for e in all_edges() if e.dst_room == "raft" and e.src_room not in RAFT_USERS]
    assert not bad, "only orion/agent/ composes the Raft backend; parts use the Store port:\n" + "\n".join(bad)


def test_only_the_raft_backend_imports_pysyncobj():
    bad = [hit for hit in external_imports("pysyncobj") if not hit.startswith("orion/raft/")]
    assert not bad, "pysyncobj is imported only in orion/raft/:\n" + "\n".join(bad)
    assert external_imports("pysyncobj"), "the checker found no pysyncobj import at all: is it still looking?"


def test_the_raft_backend_owns_no_state_machine():
    """The backend is handed its machine (orion/raft/application.py): it imports nothing of
    orion/state/, so a toy machine runs on it as Orion's does."""
    bad = [str(e) for e in all_edges() if e.src_room == "raft" and e.dst_room == "state"]
    assert not bad, "orion/raft/ imports the state machine:\n" + "\n".join(bad)


def test_the_top_of_the_package_holds_at_most_six_modules():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, f"{len(loose)} loose modules at the top of orion/: {loose}"


def test_every_layer_room_exists():
    rooms = {room_of_file(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert rooms == set(RANK), f"rooms on disk {sorted(rooms)} vs the layer table {sorted(RANK)}"


def test_no_module_is_over_400_lines():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and rel not in ALLOWED_SIZE:
            bad.append(f"{rel}: {lines} lines")
    assert not bad, f"modules over {MAX_LINES} lines:\n" + "\n".join(bad)


def test_no_two_test_modules_share_a_name():
    """pytest imports test modules by basename (no packages under tests/): two files of one
    name in different folders break the collection of the whole suite, not just one folder."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert not shared, f"test modules sharing a name: {shared}"
