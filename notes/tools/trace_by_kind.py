#!/usr/bin/env python3
"""Two `stepfuse bench --trace B` outputs compared by kind of stage, summed over the blocks.

usage: trace_by_kind.py NEW.txt BASE.txt

A kind of stage is its xLSTM phase: xLSTM has a phase in every stage (its chain sets a block's
stages), each once a block, so it names the stage's slot whichever phases the other towers run
beside it; for each kind: the spans and the slowest CTAs' work, summed (us), NEW against BASE.
"""
import collections
import re
import sys

ROW = re.compile(r'\s+(\d+) (\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$')


def load(path):
    kinds = collections.OrderedDict()
    for m in filter(None, map(ROW.match, open(path))):
        name = ' '.join(g for g in m.group(2, 3, 4, 5) if g != '-')
        k = kinds.setdefault(m.group(2), [name, 0, 0.0, 0.0])
        k[1] += 1
        k[2] += float(m.group(11))  # span
        k[3] += float(m.group(6))   # slowest CTA's work
    return kinds


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    new, base = load(sys.argv[1]), load(sys.argv[2])
    tn = tb = 0.0
    for key, (name, count, span, work) in new.items():
        _, _, bspan, bwork = base.get(key, ['', 0, 0.0, 0.0])
        tn, tb = tn + span, tb + bspan
        print(f'{name[:44]:44s} x{count:2d} span {span:8.1f} vs {bspan:8.1f} ({100 * (span - bspan) / max(bspan, 1e-9):+6.1f}%)'
              f'  work {work:8.1f} vs {bwork:8.1f}')
    print(f'step {tn:.1f} vs {tb:.1f} us ({100 * (tn - tb) / tb:+.1f}%)')


main()
