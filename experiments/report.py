"""Comparison report: reads run workdirs (each with summary.json) and writes a markdown table.

  python experiments/report.py RUN_OR_SWEEP_DIR [...] [--out report.md]
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
from typing import Any

COLUMNS = [
    ('run', 'run'), ('model', 'model'), ('params', 'params'), ('eval loss', 'eval.loss'),
    ('eval bits/token', 'eval.bits_per_token'), ('eval accuracy', 'eval.accuracy'),
    ('eval seq. accuracy', 'eval.sequence_accuracy'), ('best eval loss', 'best_eval_loss'),
    ('tokens/s', 'tokens_per_sec'), ('train time (s)', 'train_seconds'),
]


def find_runs(paths: list[str]) -> list[str]:
  """Run directories under `paths`: any directory holding a summary.json (a run, or a sweep of runs)."""
  runs = []
  for p in paths:
    if os.path.exists(os.path.join(p, 'summary.json')):
      runs.append(p)
    else:
      runs += sorted(os.path.dirname(f) for f in glob.glob(os.path.join(p, '**', 'summary.json'), recursive=True))
  return runs


def load_summaries(runs: list[str]) -> list[dict[str, Any]]:
  summaries = []
  for r in runs:
    with open(os.path.join(r, 'summary.json')) as f:
      s = json.load(f)
    s['run'] = os.path.basename(os.path.normpath(r))
    summaries.append(s)
  return summaries


def _get(summary: dict[str, Any], dotted: str):
  v: Any = summary
  for k in dotted.split('.'):
    v = v.get(k) if isinstance(v, dict) else None
  return v


def _fmt(v) -> str:
  if v is None:
    return '-'
  if isinstance(v, bool) or isinstance(v, str):
    return str(v)
  if isinstance(v, int):
    return f'{v:,}'
  if isinstance(v, float):
    if not math.isfinite(v):
      return str(v)
    return f'{v:,.0f}' if abs(v) >= 1000 else f'{v:.4g}'
  return str(v)


def markdown_table(summaries: list[dict[str, Any]]) -> str:
  """One row per run; the columns of COLUMNS."""
  head = '| ' + ' | '.join(c for c, _ in COLUMNS) + ' |'
  rule = '|' + '|'.join('---' for _ in COLUMNS) + '|'
  rows = ['| ' + ' | '.join(_fmt(_get(s, key)) for _, key in COLUMNS) + ' |' for s in summaries]
  return '\n'.join([head, rule, *rows]) + '\n'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('paths', nargs='+', help='run or sweep workdirs')
  parser.add_argument('--out', default='', help='also write the table to this file')
  args = parser.parse_args()
  runs = find_runs(args.paths)
  if not runs:
    raise SystemExit(f'error: no summary.json under {", ".join(args.paths)}: pass finished run or sweep workdirs')
  table = markdown_table(load_summaries(runs))
  print(table, end='')
  if args.out:
    with open(args.out, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  main()
