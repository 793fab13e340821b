"""The report's command line as a user runs it: `python -m seqmodels.report`, in a subprocess."""

import json
import os
import subprocess
import sys

import pytest

from tests.report.workdirs import PNG, lm_run

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


def test_an_out_that_cannot_be_written_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
  (tmp_path / 'a_file').write_text('x')
  lm_run(tmp_path, 'run', 'lstm', 0, 10, 1.5, 1000.0)
  code, err = _report(str(tmp_path / 'run'), f'--out={tmp_path / "a_file"}')
  assert (code == 2 and err.strip() == f'error: --out={tmp_path / "a_file"} is a file: name a '
                                       'directory for the output')
  from seqmodels import cli
  # read-only storage, as access(2) says it
  monkeypatch.setattr(os, 'access', lambda path, mode: False)
  with pytest.raises(SystemExit) as e:
    cli.check_writable(str(tmp_path / 'new' / 'report'), '--out', directory=True)
  assert e.value.code == 2
  assert capsys.readouterr().err == (f'error: --out: {tmp_path} cannot be written (read-only '
                                     'storage, or no permission): name another place, or '
                                     'make it writable\n')
  with pytest.raises(SystemExit):
    with cli.writing('out.json'):
      raise OSError(28, 'No space left on device', 'out.json')
  assert capsys.readouterr().err == ('error: writing out.json failed (No space left on device): '
                                     'free space or make it writable, then rerun\n')
