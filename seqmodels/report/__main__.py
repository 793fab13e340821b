"""Comparison report: run or sweep workdirs -> a markdown and a CSV table, and PNG plots.

  python -m seqmodels.report RUN_OR_SWEEP_DIR [...] [--out DIR]

What it reads and writes: the docstring of seqmodels/report/__init__.py.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

from seqmodels import cli
from seqmodels.report.document import NO_PLOTS, write_report
from seqmodels.report.tables import find_runs, load_runs, markdown_table

# reportable without any run
ANALYSIS_FILES = ('cost.json', 'gradient_flow.json', 'attention_maps.npz', 'attention_layers.npz',
                  'samples.json')


def main(argv: list[str] | None = None) -> None:
  parser = cli.ArgumentParser(prog='python -m seqmodels.report',
                              description=__doc__.splitlines()[0])
  parser.add_argument('paths', nargs='+', help='run or sweep workdirs')
  parser.add_argument('--out', default='', help='directory for report.md, report.csv and the PNGs '
                      '(default: the one path given, else ./report)')
  args = parser.parse_args(argv)
  runs = find_runs(args.paths)
  analyses = [f for p in args.paths for name in ANALYSIS_FILES
              for f in glob.glob(os.path.join(p, '**', name), recursive=True)]
  if not runs and not analyses:
    cli.fail(f'no summary.json, failed.json or {", ".join(ANALYSIS_FILES)} under '
             f'{", ".join(args.paths)}: pass finished run or sweep workdirs, or analysis output '
             'directories')
  out = args.out or (args.paths[0] if len(args.paths) == 1 else 'report')
  cli.check_writable(out, '--out', directory=True)
  if runs:
    print(markdown_table(load_runs(runs)), end='')
  with cli.writing(out):
    written = write_report(args.paths, out)
  for kind, path in written.items():
    print(f'{kind}: {path}')
  if importlib.util.find_spec('matplotlib') is None:
    print(f'note: {NO_PLOTS}', file=sys.stderr)


if __name__ == '__main__':
  main()
