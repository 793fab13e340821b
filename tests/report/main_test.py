"""The report's command line as a user runs it: `python -m seqmodels.report`, in a subprocess."""

import json
import os
import subprocess
import sys

from tests.report.workdirs import PNG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _report(*argv: str) -> tuple[int, str]:
  """(exit code, stderr) of `python -m seqmodels.report ARGV` run from the repository root."""
  p = subprocess.run([sys.executable, '-m', 'seqmodels.report', *argv], cwd=ROOT,
                     capture_output=True, text=True, timeout=120)
  return p.returncode, p.stderr


def test_cli_reports_an_analysis_directory_without_runs(tmp_path):
  (tmp_path / 'cost.json').write_text(
      json.dumps({'entries': [{'model': m, 'seq_len': t, 'batch_size': 2, 'step_ms': t * k,
                               'peak_memory_bytes': 2**20 * t * k}
                              for m, k in (('lstm', 1.0), ('gpt', 2.0)) for t in (128, 256)]}))
  code, err = _report(str(tmp_path), '--out', str(tmp_path / 'out'))
  assert code == 0, err
  assert open(tmp_path / 'out' / 'cost_vs_length.png', 'rb').read().startswith(PNG)
  for argv, message in (
      ([str(tmp_path / 'out')], 'error: no summary.json, failed.json or cost.json'),
      (['--bogus'], 'error: the following arguments are required: paths (see --help)')):
    code, err = _report(*argv)
    assert code == 2 and err.startswith(message) and err.count('\n') == 1, err
