#!/usr/bin/env python3
"""Two `stepfuse bench --trace B` outputs compared by kind of stage: a tower's phase, summed over
the blocks.

usage: trace_by_kind.py NEW.txt BASE.txt

Each tower runs its phases at its own pace (its own CTAs and barrier), so a kind is a (tower,
phase) pair of the report's "by phase" table: for each, the spans and the slowest CTAs' work
(us), NEW against BASE; then each tower's time. Traces written before the towers had their own
barriers (runs up to 161) have no such table.
"""
import re
import sys

PHASE = re.compile(r'(xLSTM|Mamba2|RetNet|Hawk)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)\s*$')
TOWER = re.compile(r'(xLSTM|Mamba2|RetNet|Hawk): (\d+) CTAs, done at ([\d.]+) us')


def load(path):
    phases, towers = {}, {}
    for line in open(path):
        m = PHASE.match(line)
        if m:
            phases[m.group(1, 2)] = (int(m.group(3)), float(m.group(4)), float(m.group(6)))
        m = TOWER.match(line)
        if m:
            towers[m.group(1)] = (int(m.group(2)), float(m.group(3)))
    if not phases:
        sys.exit(f'{path}: no per-tower "by phase" table')
    return phases, towers


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    (new, new_towers), (base, base_towers) = load(sys.argv[1]), load(sys.argv[2])
    for (tower, phase), (count, span, work) in new.items():
        _, bspan, bwork = base.get((tower, phase), (0, 0.0, 0.0))
        print(f'{tower:7s} {phase:16s} x{count:3d} span {span:8.1f} vs {bspan:8.1f} '
              f'({100 * (span - bspan) / max(bspan, 1e-9):+6.1f}%)  work {work:8.1f} vs {bwork:8.1f}')
    for tower, (ctas, done) in new_towers.items():
        bctas, bdone = base_towers.get(tower, (0, 0.0))
        print(f'{tower:7s} {ctas:3d} CTAs done at {done:8.1f} us vs {bctas:3d} at {bdone:8.1f} '
              f'({100 * (done - bdone) / max(bdone, 1e-9):+6.1f}%)')


main()
