"""Where the samples of a py-spy profile went: the top functions, inclusive and self.

    .venv/bin/python bench/profile_top.py bench/results/write_path_before-leader.txt [--top 30]

Reads py-spy's raw (collapsed) format, one ``frame;frame;...;frame count`` per
line, as ``bench/write_path.py --profile`` writes it. Line numbers are dropped,
so a function counts once however many lines of it were sampled; a function
that recurses counts once per stack (inclusive time never exceeds 100 %).
``--match`` sums the stacks that pass through any frame containing a substring
(e.g. ``--match flask --match werkzeug``), for "how much is the HTTP layer".
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """``post (bench.py:12)`` -> ``post (bench.py)``: one entry per function."""
    return _LINE.sub(")", frame.strip())


def read(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([frame_name(f) for f in stack.split(";")], int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", action="append", default=[])
    args = parser.parse_args()
    stacks = read(args.profile)
    total = sum(c for _, c in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks:
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    print(f"{args.profile}: {total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n-- top {args.top} {title} --")
        for name, count in counter.most_common(args.top):
            print(f"{100 * count / total:6.1f}%  {name}")
    if args.match:
        hit = sum(c for frames, c in stacks if any(m in f for f in frames for m in args.match))
        print(f"\nstacks through {' | '.join(args.match)}: {100 * hit / total:.1f}%")


if __name__ == "__main__":
    main()
