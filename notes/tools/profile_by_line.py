#!/usr/bin/env python3
"""Warp samples of an ncu source profile of the step kernel, by source line and by function.

usage: profile_by_line.py SASS_CSV_GZ NVDISASM_GZ KERNEL_CU [LINES]

SASS_CSV_GZ: `ncu -i R --page source --csv --print-source sass | gzip` of a profile taken with
--section SourceCounters (notes/gpu.md, "How the runs were made"); NVDISASM_GZ: `nvdisasm -g -c`
of the same cubin (`STEPFUSE_LINEINFO=1 stepfuse compile --spec S --cubin k.cubin` on the GPU
machine), which names the source line of every SASS address; KERNEL_CU: the generated source
(out/NAME.cu). A line's function is the nearest function opening above it, so inlined code
counts under the function it is written in.
"""
import collections
import csv
import gzip
import re
import sys

REASONS = ['long_sb', 'barrier', 'wait', 'selected', 'not_selected', 'short_sb', 'math', 'mio', 'lg', 'no_inst',
           'branch_resolving', 'membar', 'dispatch', 'drain', 'misc', 'imc', 'tex', 'sleep']


def address_lines(path):
    lines, cur = {}, None
    for text in gzip.open(path, 'rt'):
        m = re.search(r'//## File ".*", line (\d+)', text)
        if m:
            cur = int(m.group(1))
            continue
        m = re.match(r'\s+/\*([0-9a-f]{4,})\*/', text)
        if m and cur is not None:
            lines[int(m.group(1), 16)] = cur
    return lines


def line_functions(src):
    fn, out = '?', {}
    for i, text in enumerate(src, 1):
        m = re.match(r'\s*(?:template <[^>]*>\s*)?(?:__device__|extern "C" __global__)[^(]*?(\w+)\s*\(', text)
        if m and not text.rstrip().endswith(';'):
            fn = m.group(1)
        m = re.match(r'\s*(?:__device__ )?static (?:void|int|long|bool) (\w+)\(', text)
        if m:
            fn = m.group(1)
        m = re.match(r'^struct (\w+)', text)
        if m:
            fn = m.group(1)
        out[i] = fn
    return out


def top(c, n):
    return ' '.join(f'{k} {100 * v / max(1, c["samples"]):.0f}%' for v, k in sorted(((c[k], k) for k in REASONS),
                                                                                   reverse=True)[:n])


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src = open(sys.argv[3]).read().split('\n')
    addr_line, fn_of = address_lines(sys.argv[2]), line_functions(src)
    rows = list(csv.reader(gzip.open(sys.argv[1], 'rt')))
    hdr, data = rows[1], rows[2:]
    ia, isamp, iex = hdr.index('Address'), hdr.index('Warp Stall Sampling (All Samples)'), hdr.index('Instructions Executed')
    stalls = [i for i, h in enumerate(hdr) if h.startswith('stall_') and 'Not Issued' not in h]
    base = int(data[0][ia], 16)
    per_line, per_fn, total = (collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter),
                               collections.Counter())
    for r in data:
        ln = addr_line.get(int(r[ia], 16) - base, 0)
        c = collections.Counter(samples=int(r[isamp] or 0), inst=int(r[iex] or 0))
        for i in stalls:
            c[hdr[i][6:]] = int(r[i] or 0)
        per_line[ln].update(c)
        per_fn[fn_of.get(ln, '?')].update(c)
        total.update(c)
    t = total['samples']
    print(f'{t} samples; by reason: ' + ' '.join(f'{k} {100 * total[k] / t:.1f}%' for k in REASONS if total[k]))
    print('\nby function (share of the samples, instructions executed, top reasons):')
    for f, c in sorted(per_fn.items(), key=lambda x: -x[1]['samples'])[:25]:
        print(f"{100 * c['samples'] / t:6.2f}% {f:28s} {c['inst'] / 1e6:8.2f}M  {top(c, 4)}")
    print('\nby line:')
    for ln, c in sorted(per_line.items(), key=lambda x: -x[1]['samples'])[:int(sys.argv[4]) if len(sys.argv) > 4 else 40]:
        text = src[ln - 1].strip()[:70] if ln else '?'
        print(f"{100 * c['samples'] / t:6.2f}% L{ln:5d} {fn_of.get(ln, '?')[:18]:18s} {text:70s} {top(c, 3)}")


main()
