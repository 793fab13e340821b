"""seqmodels entry point: train and compare sequence models.

  python launch.py                                   # the default job: LSTM vs GPT on the copy task
  python launch.py --config=experiments/configs/copy.py --config.model.name=gru --workdir=runs/gru
  python launch.py --config=experiments/configs/copy.py --sweep=experiments/sweeps/lstm_vs_gpt.py
"""

from __future__ import annotations

import json
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, 'experiments/configs/copy.py')
DEFAULT_SWEEP = os.path.join(HERE, 'experiments/sweeps/lstm_vs_gpt.py')

def _fail(message: str, code: int = 2) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def _unknown_field(argv: list[str], e: Exception) -> None:
  bad = next((a for a in argv[1:] if a.startswith('--config.')), '--config.*')
  hint = re.search(r'Did you mean "[^"]+"', str(e))
  hint = f' ({hint.group(0)}?)' if hint else ''
  _fail(f'{bad.split("=")[0]} names no config field{hint}: see the fields in experiments/configs/base.py')


try:  # config_flags applies --config.* overrides to the default config here, at definition
  config_flags.DEFINE_config_file('config', DEFAULT_CONFIG, 'experiment config file (get_config() -> ConfigDict)',
                                  lock_config=True)
except (AttributeError, KeyError) as e:
  _unknown_field(sys.argv, e)
flags.DEFINE_string('workdir', '', 'where checkpoints, metrics and summaries go; rerunning resumes '
                    "(default: runs/<config name>, or runs/default with no flags)")
flags.DEFINE_string('sweep', '', 'sweep file (get_sweep() -> list of override dicts): one run per trial; '
                    'with no --config and no --sweep, the default sweep experiments/sweeps/lstm_vs_gpt.py')
FLAGS = flags.FLAGS


class _QuietLibraries(logging.logging.Filter):
  """Drops the INFO chatter of orbax and friends; their warnings and errors still show."""

  def filter(self, record) -> bool:
    noisy = any(f'{os.sep}{lib}{os.sep}' in record.pathname for lib in ('orbax', 'grain', 'tensorflow_datasets'))
    return record.levelno >= logging.logging.WARNING or not noisy


def main(argv) -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}: flags take the form --name=value')
  sys.path.insert(0, HERE)
  # Imported here so `--help` and flag errors are instant.
  import jax
  from experiments import report
  from seqmodels import sweep, validation
  from seqmodels.train import loop, sharding
  from seqmodels.train.checkpoint import CheckpointError

  defaults = not FLAGS['config'].present and not FLAGS.sweep
  sweep_path = DEFAULT_SWEEP if defaults else FLAGS.sweep
  config_name = os.path.splitext(os.path.basename(FLAGS['config'].config_filename.split(':')[0]))[0]
  workdir = os.path.abspath(FLAGS.workdir or os.path.join('runs', 'default' if defaults else config_name))
  try:
    if sweep_path and not os.path.isfile(sweep_path):
      raise validation.ConfigError(f'--sweep={sweep_path} does not exist: pass a file from experiments/sweeps/')
    trials = sweep.load(sweep_path) if sweep_path else [{}]
    runs = [(sweep.trial_name(o), sweep.apply(FLAGS.config, o)) for o in trials]
    for _, c in runs:
      validation.validate(c)
    sharding.initialize_distributed(FLAGS.config.distributed)
    for _, c in runs:
      validation.validate_devices(c, jax.device_count(), jax.process_count())
  except (validation.ConfigError, KeyError, TypeError) as e:
    _fail(str(e).strip('"\''))

  os.makedirs(workdir, exist_ok=True)
  if sweep_path:
    with open(os.path.join(workdir, 'sweep.json'), 'w') as f:
      json.dump({'sweep': sweep_path, 'trials': trials}, f, indent=2, default=str)
  dirs = []
  for name, c in runs:
    run_dir = os.path.join(workdir, name) if sweep_path else workdir
    dirs.append(run_dir)
    if os.path.exists(os.path.join(run_dir, 'summary.json')):
      logging.info('%s is finished (summary.json exists): skipped', run_dir)
      continue
    logging.info('run %s: model %s on %s -> %s', name, c.model.name, c.data.name, run_dir)
    try:
      summary = loop.train_and_evaluate(c, run_dir)
    except (loop.NonFiniteLossError, loop.WorkdirError, CheckpointError) as e:
      _fail(str(e), 1)
    if summary['status'] == 'preempted':
      _fail(f'stopped early at step {summary["step"]}; checkpoint saved in {run_dir}: rerun the same command '
            'to resume', 143)

  if jax.process_index() == 0:
    table = report.markdown_table(report.load_summaries(dirs))
    with open(os.path.join(workdir, 'comparison.md'), 'w') as f:
      f.write(table)
    print(f'\n{table}\nwritten to {os.path.join(workdir, "comparison.md")}')


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with one-line errors for a missing config file or an unknown config field."""
  try:
    rest = FLAGS(argv)
    path = FLAGS['config'].config_filename.split(':')[0]
    if not os.path.isfile(path):
      _fail(f'--config={path} does not exist: pass a file from experiments/configs/')
    FLAGS.config.keys()  # config files load lazily: surface their errors here
    return rest
  except flags.Error as e:
    _fail(str(e).splitlines()[0])
  except (AttributeError, KeyError) as e:  # ml_collections: --config.x.y names no field
    _unknown_field(argv, e)
  except OSError as e:
    _fail(f'--config={FLAGS["config"].config_filename} could not be loaded ({str(e).splitlines()[-1].strip()}):'
          ' pass a file from experiments/configs/')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
