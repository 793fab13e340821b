"""Finished runs read back for analysis: a workdir's config, data, model and latest parameters; the
CLIs' checks.

Shared by the gradient-flow and attention-map command lines, which read a run the same way: its
config.json, its dataset (prepared again if this host lacks it), the model built from both, and the
parameters of the latest checkpoint, checked to be the whole model's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from seqmodels import cli


@dataclasses.dataclass
class Run:
  workdir: str
  config: Any  # ml_collections.ConfigDict
  data: Any  # seqmodels.data.core.Data
  model: Any  # flax module, computing in float32; None for a model fitted by counting (the n-gram)
  kind: str  # the objective's task kind: 'lm', 'bilm', 'seq2seq', 'regression', ...
  objective: Any  # seqmodels.train.steps.Objective


def load(workdir: str) -> Run:
  """The run in `workdir`: config, data, float32 model and objective (no parameters yet:
  `latest_params`)."""
  import ml_collections  # the CLIs' dependencies stay out of the library import
  from seqmodels.data import core
  from seqmodels.data import registry as datasets
  from seqmodels.models import registry
  from seqmodels.errors import DataError
  from seqmodels.train import steps
  from seqmodels.train.workdir import data_change

  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  # a config.json of an older version: from here
  config['data'] = core.with_absolute_paths(config['data'])
  config = ml_collections.ConfigDict(config)
  # resolved, and read as it was meant in a config.json of an older version
  if 'tokenizer' in config.data:
    config.data.tokenizer = datasets.tokenizer_name(config.data) or config.data.tokenizer
  why = data_change(workdir, datasets.file_digests(config.data))
  if why:
    raise DataError(f'the run was trained on other data than its config names now: {why}: restore '
                    'its data to analyse it')
  try:
    datasets.prepare(config.data)
    data = datasets.load(config.data)
  except FileNotFoundError as e:
    raise DataError(
        f'its data file {e.filename or e} is not there: restore it to analyse the run') from e
  # no module: refit it (train/count.py)
  counted = registry.MODELS[config.model.name].trained_by == 'counting'
  model_cfg = config.model
  if model_cfg.get('recurrence') == 'cudnn' and jax.devices()[0].platform != 'gpu':
    # a run trained on a GPU, read elsewhere: the platform's recurrence computes the same function
    model_cfg = model_cfg.copy_and_resolve_references()
    model_cfg.recurrence = 'auto'
  registry.check_vocab(model_cfg, data)
  model = None if counted else registry.build(model_cfg, data, jnp.float32)
  kind = registry.objective(config.model.name, data.kind)  # e.g. 'bilm' for ELMo on lm data
  return Run(workdir, config, data, model, kind, steps.OBJECTIVES[kind])


def latest_params(run: Run, inputs: Sequence[Any], which: str = 'latest') -> tuple[Any, int]:
  """(parameters of the latest checkpoint, replicated on this process's devices, and its step);
  `which='best'`: those of the best evaluation (a run trained with train.keep_best). `inputs` are
  the model's positional inputs, for the shapes; a checkpoint that lacks any of the model's arrays
  is a ValueError."""
  from seqmodels.train import checkpoint

  params = jax.jit(lambda r: run.model.init({'params': r}, *inputs, train=False)['params'])(
      jax.random.PRNGKey(0))
  replicated = jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ('data',)),
                                          jax.sharding.PartitionSpec())
  params, _, fresh = checkpoint.load_matching_params(run.workdir, params,
                                                     jax.tree.map(lambda _: replicated, params),
                                                     flag='--workdir', which=which)
  if fresh:
    raise ValueError(f'{run.workdir}: the {which} checkpoint lacks parameters {fresh}: is '
                     'config.json from this run?')
  return params, checkpoint.saved_steps(run.workdir, which)[0]


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
  """--checkpoint=latest|best, which checkpoint of each run a CLI reads."""
  parser.add_argument('--checkpoint', choices=('latest', 'best'), default='latest',
                      help="the run's latest checkpoint, or its best evaluation's "
                      "(runs trained with "
                      'train.keep_best=True)')


def check_workdirs(workdirs: Sequence[str], counted: bool = False) -> None:
  """Fails with one line unless every workdir holds a launch.py run with a checkpoint (all checked
  before any is analysed). A model fitted by counting (the n-gram) has no checkpoint: it is ready
  once its summary.json is written, where `counted` says the CLI reads such models, and is refused
  otherwise."""
  from seqmodels.models import registry
  from seqmodels.train.checkpoint import saved_steps
  for workdir in workdirs:
    try:
      with open(os.path.join(workdir, 'config.json')) as f:
        name = json.load(f).get('model', {}).get('name')
    except FileNotFoundError:
      trials = sorted(d for d in (os.listdir(workdir) if os.path.isdir(workdir) else [])
                      if os.path.isfile(os.path.join(workdir, d, 'config.json')))
      if trials and os.path.isfile(os.path.join(workdir, 'sweep.json')):
        cli.fail(f'--workdir={workdir} is a sweep of {len(trials)} trial{"s" * (len(trials) != 1)}'
                 f': pass each trial\'s own directory, e.g. '
                 f'--workdir={os.path.join(workdir, trials[0])}')
      cli.fail(f'--workdir={workdir} holds no run (no config.json): pass the --workdir of a '
               'launch.py run')
    except (OSError, ValueError, AttributeError):
      name = None  # the loader names what is wrong with it
    if name in registry.MODELS and registry.MODELS[name].trained_by == 'counting':
      if not counted:
        cli.fail(f'--workdir={workdir}: config.model.name={name} is fitted by counting and has no '
                 'hidden states or attention to analyse: pass a neural run')
      if not os.path.isfile(os.path.join(workdir, 'summary.json')):
        cli.fail(f'--workdir={workdir} has not finished (no summary.json): rerun its launch.py '
                 'command')
    elif not saved_steps(workdir):
      cli.fail(f'--workdir={workdir} has no checkpoint yet: train it first (rerunning its '
               'launch.py command resumes)')
