"""seqmodels entry point: train and compare sequence models.

  python launch.py                                   # the default job: LSTM vs GPT on the copy task
  python launch.py --config=experiments/configs/copy.py --config.model.name=gru --workdir=runs/gru
  python launch.py --config=experiments/configs/copy.py --sweep=experiments/sweeps/lstm_vs_gpt.py
  python launch.py --config=experiments/configs/copy_memory.py:small \
      --sweep=experiments/sweeps/copy_vs_length.py:small \
      --parallel=2   # two trials at a time, each a process
  python launch.py --config=... --sweep=... --launcher=slurm   # each trial a SLURM job
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import sys
import threading
import traceback

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, 'experiments/configs/copy.py')
DEFAULT_SWEEP = os.path.join(HERE, 'experiments/sweeps/lstm_vs_gpt.py')

def _fail(message: str, code: int = 2, at_once: bool = False) -> None:
  """The one line, and exit. `at_once` skips the interpreter's shutdown, which waits for threads:
  after a failed checkpoint write, orbax's could hang it or print their own tracebacks (issue
  29)."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  if at_once:
    logging.flush()
    os._exit(code)
  sys.exit(code)


def _unknown_field(argv: list[str], e: Exception) -> None:
  overrides = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.')]
  through = _through_a_value(argv, overrides)
  if through:  # ml_collections names only a type ("Attribute <class 'int'>.x"), or raises TypeError
    flag, field, value = through
    _fail(f'{flag} names no config field: config.{field} is a field ({type(value).__name__}), '
          f'not a section: set --config.{field}=<value>, or see the fields in '
          'experiments/configs/base.py')
  if isinstance(e, TypeError):
    raise e
  # ml_collections names the missing key, quoted and escaped a level or two: "'nonexistent'",
  # "'\\'modl\\'..."
  key = re.search(r"'(\w+)'", str(e).replace('\\', '').replace('"', "'"))
  named = [a for a in overrides if key and key.group(1) in a.split('.')[1:]]
  bad = (named or overrides or ['--config.*'])[0]
  hint = re.search(r'Did you mean "[^"]+"', str(e))
  hint = f' ({hint.group(0)}?)' if hint else ''
  _fail(f'{bad} names no config field{hint}: see the fields in experiments/configs/base.py')


def _through_a_value(argv: list[str], overrides: list[str]) -> tuple[str, str, object] | None:
  """(flag, field, value) where the first bad override goes on past a field that holds a value, as
  --config.model.width.x does (the field's value in the config file); else None."""
  given = [a.split('=', 1)[1] for a in argv[1:] if a.startswith('--config=')]
  file, colon, arg = (given or [DEFAULT_CONFIG])[-1].partition(':')
  try:  # as config_flags loads it
    spec = importlib.util.spec_from_file_location('seqmodels_config_file', file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg) if colon else module.get_config()
  except Exception:  # the file's own error, said where config_flags raises it
    return None
  for flag in overrides:  # the first bad one, as ml_collections raises for it
    node, path = config, flag[len('--config.'):].split('.')
    for i, key in enumerate(path):
      if not isinstance(node, ml_collections.ConfigDict):
        return flag, '.'.join(path[:i]), node
      if key not in node:
        return None  # a field that does not exist
      node = node[key]
  return None


try:  # config_flags applies --config.* overrides to the default config here, at definition
  config_flags.DEFINE_config_file('config', DEFAULT_CONFIG,
                                  'experiment config file (get_config() -> ConfigDict)',
                                  lock_config=True)
except (AttributeError, KeyError, TypeError) as e:
  _unknown_field(sys.argv, e)
flags.DEFINE_string('workdir', '', 'where checkpoints, metrics and summaries go; rerunning resumes '
                    "(default: runs/<config name>, or runs/default with no flags)")
flags.DEFINE_string('sweep', '', 'sweep file (get_sweep() -> list of override dicts; FILE:arg '
                    'calls get_sweep(arg)): one run per trial; with no --config and no --sweep, '
                    'the default sweep experiments/sweeps/lstm_vs_gpt.py')
flags.DEFINE_integer('parallel', 0, 'run a sweep N trials at a time, each a separate `python '
                     'launch.py` process logging to <trial dir>/log.txt (on GPU hosts each gets '
                     'CUDA_VISIBLE_DEVICES = 1/N of the GPUs); 0 runs the trials one after another '
                     'in this process, over all its devices')
flags.DEFINE_enum('launcher', 'local', ['local', 'slurm'], 'where trials run: local (this host, '
                  'see --parallel) or slurm (each unfinished trial a SLURM job submitted through '
                  'submitit, resources from config.slurm; a rerun submits none twice and reports '
                  'their state)')
flags.DEFINE_bool('wait', False, '--launcher=slurm: wait for the jobs, then write comparison.md '
                  '(without it the launcher returns once they are submitted)')
FLAGS = flags.FLAGS
_THREAD_HOOK = threading.excepthook
_STORAGE_REASONS = re.compile('No space left on device|Read-only file system|Disk quota exceeded|'
                              'Input/output error')


class _QuietLibraries(logging.logging.Filter):
  """Drops the INFO chatter of orbax, jax and friends (jax's TPU probe); their warnings and errors
  still show."""

  def filter(self, record) -> bool:
    libraries = ('orbax', 'grain', 'tensorflow_datasets', 'jax')
    noisy = any(f'{os.sep}{lib}{os.sep}' in record.pathname for lib in libraries)
    if (noisy and
        _STORAGE_REASONS.search(record.getMessage() + str(record.exc_info and record.exc_info[1]))):
      # a failed write: the launcher says it in one line, with the fix (errors.StorageError)
      return False
    return record.levelno >= logging.logging.WARNING or not noisy


def _quiet_closed_loops(args) -> None:
  """threading.excepthook: orbax's threads, left running after a failed checkpoint write, report the
  event loop they post to as closed; that is the failure the launcher already said, not one of its
  own."""
  if isinstance(args.exc_value, RuntimeError) and str(args.exc_value) == 'Event loop is closed':
    return
  _THREAD_HOOK(args)


def main(argv) -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
  threading.excepthook = _quiet_closed_loops
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}: flags take the form --name=value')
  # Imported here so `--help` and flag errors are instant.
  import jax
  from seqmodels.train import host_memory
  # before JAX's first computation (see there: a faster CPU step)
  host_memory.run_cpu_steps_inline()
  from seqmodels import report
  from seqmodels import errors, sweep, validation
  if FLAGS.launcher == 'slurm':
    try:
      from seqmodels import slurm
    except ImportError as e:
      _fail(f"--launcher=slurm submits jobs through submitit ({e}): pip install -e '.[slurm]'")
  from seqmodels.train import loop, sharding, workdir as records
  from seqmodels.train.lock import WorkdirLock

  defaults = not FLAGS['config'].present and not FLAGS.sweep
  sweep_path = DEFAULT_SWEEP if defaults else FLAGS.sweep
  config_name = os.path.splitext(os.path.basename(FLAGS['config'].config_filename.split(':')[0]))[0]
  workdir = os.path.abspath(FLAGS.workdir or
                            os.path.join('runs', 'default' if defaults else config_name))
  parallel = FLAGS.parallel > 0 and bool(sweep_path)
  on_slurm = FLAGS.launcher == 'slurm'
  try:
    if sweep_path and not os.path.isfile(sweep.split_arg(sweep_path)[0]):
      raise errors.ConfigError(
          f'--sweep={sweep_path} does not exist: pass a file from experiments/sweeps/')
    if FLAGS.parallel < 0 or (FLAGS.parallel and not sweep_path):
      raise errors.ConfigError(f'--parallel={FLAGS.parallel} needs a --sweep and a count >= 1 (0 '
                               'runs trials in this process)')
    if parallel and FLAGS.config.distributed.num_processes > 1:
      raise errors.ConfigError(
          '--parallel starts its own processes: leave config.distributed unset')
    if on_slurm and FLAGS.parallel:
      raise errors.ConfigError('--parallel runs trials as processes on this host and '
                               '--launcher=slurm as SLURM jobs: drop one of them')
    if on_slurm and (FLAGS.config.distributed.num_processes > 1 or
                     FLAGS.config.distributed.coordinator_address):
      raise errors.ConfigError('--launcher=slurm starts its own processes: leave '
                               'config.distributed unset (config.slurm.nodes > 1 starts one per '
                               'node, joined through SLURM)')
    if FLAGS.wait and not on_slurm:
      raise errors.ConfigError('--wait waits for the jobs of --launcher=slurm: add it, or drop '
                               '--wait')
    plan = sweep.load(sweep_path) if sweep_path else [{}]
    # a tuning.Tuning: the search first, then each arm's best setting with more seeds
    tuned = None if isinstance(plan, list) else plan
    overrides = tuned.search_trials() if tuned else plan
    trials = sweep.make_trials(FLAGS.config, overrides, workdir)
    if not sweep_path:  # one run: its directory is the workdir (a SLURM job's, on --launcher=slurm)
      trials[0].name, trials[0].workdir = os.path.basename(workdir), workdir
    for t in trials:
      validation.validate(t.config)
    cli = _command_line_overrides(sys.argv, FLAGS.config)  # what --config.<field> flags set
    if sweep_path:
      swept = {k for o in overrides for k in o}
      both = sorted(k for k in cli if k in swept)
      if both:  # the trial's value would win, silently
        values = sorted({str(o[both[0]]) for o in overrides if both[0] in o})
        raise errors.ConfigError(f'--config.{both[0]} is set by the sweep too ({sweep_path} gives '
                                 f'it {", ".join(values)}), whose values win: drop the flag, '
                                 'or sweep without it')
      # Before any trial runs: a sweep rerun with other flags would skip its finished trials.
      for t in trials:
        records.check_resumable(t.workdir, records.absolute_paths(t.config))
    elif on_slurm:  # as the run would, before it is submitted
      records.check_resumable(workdir, records.absolute_paths(trials[0].config))
    if on_slurm:  # before anything is submitted; each job checks its devices itself
      slurm.check(trials)
    elif parallel:  # each trial process initializes its own share of devices and checks them itself
      sweep.device_shares(FLAGS.parallel, sweep.gpu_ids(dict(os.environ)))
    else:
      sharding.initialize_distributed(FLAGS.config.distributed)
      for t in trials:
        validation.validate_devices(t.config, jax.device_count(), jax.process_count(),
                                    jax.default_backend())
  except (errors.SeqmodelsError, KeyError, TypeError, ValueError) as e:
    # a KeyError's str() is quoted
    _fail(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))

  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:  # a file of that name, no permission, a read-only disk
    _fail(f'--workdir={workdir} cannot be made a directory ({e.strerror}): pass another --workdir')
  # one run: its errors end the launcher, as one line, and stay in failed.json for the report
  if not sweep_path and not on_slurm:
    primary = jax.process_index() == 0
    try:
      summary = loop.train_and_evaluate(trials[0].config, workdir)
      if primary:
        records.clear_failure(workdir)  # an earlier attempt's
    except errors.SeqmodelsError as e:
      # a refusal leaves the run in the workdir as it was
      if primary and not isinstance(e, errors.WorkdirError):
        records.record_failure(workdir, e)
      _fail(str(e), 1, at_once=isinstance(e, errors.StorageError))
    except Exception as e:
      if primary:
        records.record_failure(workdir, e, traceback.format_exc())
      raise
    if summary['status'] == 'preempted':
      _fail(f'stopped early at step {summary["step"]}; checkpoint saved in {workdir}: rerun the '
            'same command to resume', 143)
    dirs = [workdir]
  else:  # one sweep over its root at a time; each trial's run holds its own directory
    primary = parallel or on_slurm or jax.process_index() == 0
    try:
      # a single run's job holds its workdir itself
      with WorkdirLock(workdir, 'sweep') if primary and sweep_path else contextlib.nullcontext():
        if primary and sweep_path:
          records.write_json(os.path.join(workdir, 'sweep.json'), {
              'sweep': sweep_path, 'config': FLAGS['config'].config_filename, 'trials': overrides,
              'models': [t.config.model.name for t in trials]})
        command = lambda t: sweep.trial_command(FLAGS['config'].config_filename,
                                                {**cli, **t.overrides}, t.workdir,
                                                os.path.join(HERE, 'launch.py'))
        if on_slurm:  # submits; a rerun of the command once they are done starts tuned reruns
          run = lambda ts: slurm.submit_unfinished(ts, command)
        elif parallel:
          run = lambda ts: sweep.run_parallel(ts, FLAGS.parallel, command)
        else:
          run = lambda ts: sweep.run_in_process(ts, loop.train_and_evaluate)
        run(trials)
        if tuned is not None and all(t.status in ('done', 'skipped', 'failed') for t in trials):
          reruns = _tuned_reruns(tuned, trials, workdir, primary)
          run(reruns)
          trials += reruns
      if on_slurm and FLAGS.wait:  # without the sweep's lock: a rerun meanwhile reports the jobs
        slurm.wait(trials)
    except (errors.WorkdirBusyError, errors.SchedulerError) as e:
      _fail(str(e), 1)
    except errors.SeqmodelsError as e:  # a rerun's config (it validates as the search's did)
      _fail(str(e))
    dirs = [t.workdir for t in trials]

  if any(t.status == 'queued' for t in trials):  # SLURM jobs still to finish: their progress
    print(f'\n{report.markdown_table(report.load_runs(dirs))}')
    print(slurm.queued_line(trials, shlex.join(['python', *sys.argv])))
    return
  # a sweep stopped early too: its unfinished and pending trials' rows
  if parallel or on_slurm or jax.process_index() == 0:
    table = report.markdown_table(report.load_runs(dirs))
    with open(os.path.join(workdir, 'comparison.md'), 'w') as f:
      f.write(table)
    print(f'\n{table}\nwritten to {os.path.join(workdir, "comparison.md")}')
  stopped = ([t for t in trials if t.status in ('preempted', 'pending')]
             if sweep_path or on_slurm else [])
  if stopped:
    _fail(f'stopped early with {len(stopped)} of {len(trials)} trials unfinished ({workdir} keeps '
          'the checkpoints they saved): rerun the same command to resume', 143)
  if any(t.status == 'failed' for t in trials):
    _fail(sweep.failed_line(trials), 1)


def _tuned_reruns(tuned, trials, workdir: str, primary: bool):
  """The second stage of a tuning sweep: each arm's setting with the lowest validation loss, rerun
  with the other seeds (tuning.json records the plan and the choice)."""
  from seqmodels import sweep, tuning, validation
  from seqmodels.train import workdir as records
  chosen = tuning.choose(tuned, {t.name: records.finished_summary(t.workdir) for t in trials})
  if primary:
    records.write_json(os.path.join(workdir, tuning.TUNING_FILE), {
        **tuned.to_json(), 'chosen': {arm: None if i is None else tuned.search[i]
                                      for arm, i in chosen.items()}})
  reruns = sweep.make_trials(FLAGS.config, tuned.reruns(chosen), workdir)
  for t in reruns:
    validation.validate(t.config)
    records.check_resumable(t.workdir, records.absolute_paths(t.config))
  for arm, i in chosen.items():
    logging.info('%s: %s chosen on validation', arm,
                 'no finished trial' if i is None else sweep.trial_name(tuned.search[i]))
  return reruns


def _command_line_overrides(argv: list[str], config) -> dict:
  """The --config.<field> overrides given on this command line, with their parsed values, to pass to
  trials."""
  out = {}
  for a in argv[1:]:
    if a.startswith('--config.'):
      key = a[len('--config.'):].split('=')[0]
      node = config
      for k in key.split('.'):
        node = node[k]
      out[key] = node
  return out


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
    lines = [line for line in str(e).splitlines() if line.strip()]
    # get_config raised: keep its reason
    if 'Error whilst parsing config file' in lines[0] and len(lines) > 1:
      _fail(f'{lines[0].split(": Error whilst")[0]}: {lines[-1]}')
    _fail(lines[0])
  except (AttributeError, KeyError, TypeError) as e:  # ml_collections: --config.x.y names no field
    if "attribute 'get_config'" in str(e):
      given = [a for a in argv[1:] if a.startswith('--config=')][-1:] or ['--config']
      _fail(f'{given[0]} defines no get_config(): pass a file from experiments/configs/ (base.py '
            'holds the defaults the others start from)')
    _unknown_field(argv, e)
  except OSError as e:
    _fail(f'--config={FLAGS["config"].config_filename} could not be loaded '
          f'({str(e).splitlines()[-1].strip()}): pass a file from experiments/configs/')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
