"""How long our linearizability checker takes on histories the size of long chaos runs.

    .venv/bin/python bench/lincheck_speed.py [--ops 10000 50000 200000] [--keys 5] [--clients 5]

A synthetic history like the cluster's (tests/integration/lincheck_kit.py): clients
each run one operation at a time (4-40 ms), 40 % writes of fresh values, 2 % of
writes with an unknown outcome (half of them applied), reads answered by a
replica that lags the register by 0-3 ms (``--lag``), so some reads are stale:
a violation to find and shrink. ``--lag 0`` gives a linearizable history, which
the search must cover end to end. Prints, per size, the
time to check (search + witness + staleness) and the verdicts; the result is
written to bench/results/lincheck_speed.json.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from linearizability import ABSENT, READ, WRITE, Op, Status  # noqa: E402
from linearizability_report import check  # noqa: E402


def history(n: int, keys: int, clients: int, seed: int, lag: float) -> list[Op]:
    """``n`` operations, each taking effect at an instant inside its call and answer; a read
    returns the last value in place ``0..lag`` seconds before its instant (a lagging replica)."""
    rng = random.Random(seed)
    free = [0.0] * clients
    planned = []  # (instant, client, key, write?, applied?, unknown?, call, ret, i)
    for i in range(n):
        c = min(range(clients), key=free.__getitem__)
        call = free[c] + rng.uniform(0.0, 0.01)
        ret = call + rng.uniform(0.004, 0.04)
        free[c] = ret
        write, unknown = rng.random() < 0.4, rng.random() < 0.02
        applied = write and (not unknown or rng.random() < 0.5)
        planned.append((rng.uniform(call, ret), c, f"k{rng.randrange(keys)}", write, applied, unknown, call, ret, i))
    register: dict[str, tuple[list[float], list[str]]] = {}
    for at, _, key, _, applied, _, _, _, i in sorted(planned):
        if applied:
            times, values = register.setdefault(key, ([], []))
            times.append(at)
            values.append(f"v{i}")
    ops = []
    for at, c, key, write, _, unknown, call, ret, i in planned:
        if write:
            ops.append(Op(f"c{c}", key, WRITE, f"v{i}", call, math.inf if unknown else ret,
                          Status.UNKNOWN if unknown else Status.OK))
            continue
        times, values = register.get(key, ([], []))
        j = bisect.bisect_right(times, at - rng.uniform(0.0, lag))
        ops.append(Op(f"c{c}", key, READ, values[j - 1] if j else ABSENT, call, ret))
    return ops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lag", type=float, default=0.003, help="replica lag in s; 0: linearizable, a full search")
    args = parser.parse_args()
    rows = []
    for n in args.ops:
        ops = history(n, args.keys, args.clients, args.seed, args.lag)
        began = time.perf_counter()
        report = check(ops)
        took = time.perf_counter() - began
        verdicts = {k.key: k.verdict.value for k in report.keys.values()}
        rows.append({"ops": n, "seconds": round(took, 3), "stale_reads": len(report.stale),
                     "steps": sum(k.steps for k in report.keys.values()), "verdicts": verdicts})
        print(f"{n:>8} ops: {took:7.2f} s, {len(report.stale)} stale reads, "
              f"{sum(v == 'not linearizable' for v in verdicts.values())}/{len(verdicts)} keys not linearizable")
    out = Path(__file__).resolve().parent / "results" / f"lincheck_speed{'' if args.lag else '_linearizable'}.json"
    out.write_text(json.dumps({"keys": args.keys, "clients": args.clients, "lag": args.lag, "runs": rows},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
