"""What validating a ``POST /tasks`` body and serializing the answer cost, before and after pydantic.

    .venv/bin/python bench/api_validation.py [--rounds 20000] [--before-commit 687174e]

"Before" is the hand-written validator of commit 687174e (``orion/api/validation.py``),
extracted with ``git archive`` into a temporary directory and imported from there in a
child process; "after" is this tree (``orion/api/schema/tasks.py``, pydantic v2). Each
child times, per request, in one process and on one core:

- ``validate``: the JSON text parsed as the app does (``json.loads``) and turned into a
  ``TaskSpec`` (``parse_task_request``), for a minimal body (the seed's), a full one
  (every field, two volumes) and a refused one (a typo in a nested field); and the
  minimal one naming an image never seen before (``validate_minimal_new_image``: the
  after side caches checked image references, this is its cost on a miss; the string
  replace is in both sides' figure);
- ``serialize``: the created task's answer, ``task_view(task, detail=True)`` and
  ``json.dumps`` of it, as ``POST /tasks`` answers.

Bodies are interleaved round-robin and each round is timed alone (perf_counter_ns), so
p50/p99 are per request. The two children alternate ``--repeat`` times and each job keeps
its best run (lowest p50): the machine is shared, and other load only ever adds time.
Written to ``bench/results/api_validation.json`` with the ratio
after/before (below 1: faster). Goal: no slower.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "api_validation.json"

BODIES = {
    "minimal": {"image": "nginx", "memory": 100000000, "portBindings": {"80/tcp": "8080"}},
    "full": {"image": "registry.local:5000/team/web:1.25", "memory": "512M", "cpu": "500m", "name": "web-1",
             "command": ["sh", "-c", "exec httpd -f -p 80"], "env": {"A": "1", "B": "two", "PATH": "/bin"},
             "portBindings": {"80/tcp": "", "53/udp": 5353}, "nodeSelectors": {"zone": "a"},
             "restartPolicy": "on-failure", "pullPolicy": "always", "count": 3,
             "volumes": [{"source": "data", "target": "/data"}, {"name": "cache", "target": "/c", "readOnly": True}]},
    "refused": {"image": "nginx", "memory": "64M", "volumes": [{"source": "data", "target": "/d", "readonly": True}]},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(rounds: int) -> dict[str, dict[str, float]]:
    """Run in the child: time this interpreter's ``orion`` (whichever tree is first on sys.path)."""
    try:
        from orion.api.schema.problems import ValidationError
        from orion.api.schema.tasks import parse_task_request
    except ImportError:  # the tree before the schema package
        from orion.api.validation import ValidationError, parse_task_request  # type: ignore[no-redef]
    from orion.api.views import task_view
    from orion.domain.model import Task

    texts = {name: json.dumps(body) for name, body in BODIES.items()}

    def validate(text: str) -> object:
        try:
            return parse_task_request(json.loads(text))
        except ValidationError as exc:
            return exc.to_dict()

    spec = parse_task_request(BODIES["full"])
    task = Task(id="0123456789ab", spec=spec, node_id="node1", created_index=7, updated_index=9,
                host_ports=(("80/tcp", 32768),))
    jobs = {f"validate_{name}": (lambda t=text: validate(t)) for name, text in texts.items()}
    fresh = iter(range(10**9))  # an image never seen before each time: no cache can help
    jobs["validate_minimal_new_image"] = lambda: validate(texts["minimal"].replace("nginx", f"app{next(fresh)}"))
    jobs["serialize_task"] = lambda: json.dumps(task_view(task, detail=True))
    for job in jobs.values():  # warm up: imports, caches, pydantic's first call
        for _ in range(200):
            job()
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, job in jobs.items():
            start = clock()
            job()
            samples[name].append((clock() - start) / 1000)
    return {name: {"p50_us": round(percentile(v, 0.5), 2), "p99_us": round(percentile(v, 0.99), 2),
                   "mean_us": round(sum(v) / len(v), 2)} for name, v in samples.items()}


def run_child(source: Path, rounds: int) -> dict[str, dict[str, float]]:
    code = (f"import sys, json; sys.path.insert(0, {str(source)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r}); "
            f"import api_validation; print(json.dumps(api_validation.measure({rounds})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/")
    return json.loads(out.stdout)


def best(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per job, the run with the lowest p50: the machine is shared, and noise only ever adds time."""
    return {job: min((run[job] for run in runs), key=lambda figures: figures["p50_us"]) for job in runs[0]}


def extract(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "orion"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--before-commit", default="687174e")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = extract(args.before_commit, Path(tmp))
        for _ in range(args.repeat):  # alternated, so a busy moment on a shared machine hits both
            runs["before"].append(run_child(old, args.rounds))
            runs["after"].append(run_child(ROOT, args.rounds))
    before, after = best(runs["before"]), best(runs["after"])
    ratio = {name: {k: round(after[name][k] / before[name][k], 2) for k in ("p50_us", "p99_us")} for name in before}
    result = {"what": "per POST /tasks body: json.loads + parse_task_request; per answer: task_view + json.dumps",
              "rounds": args.rounds, "repeat": args.repeat, "pick": "per job, the run with the lowest p50",
              "python": sys.version.split()[0], "before_commit": args.before_commit,
              "before": before, "after": after, "ratio_after_over_before": ratio}
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
