"""Config validation: every user error is caught here, before compilation, with one line naming
field and fix."""

from __future__ import annotations

import logging
import math
import os

from seqmodels.data import recall, registry as datasets
from seqmodels.layers.recurrent import RECURRENCES
from seqmodels.models import registry, size
from seqmodels.train import evaluate, optim, pretrained
from seqmodels.train.metrics import profile_steps
from seqmodels.train.optim import OPTIMIZERS
from seqmodels.errors import check

DTYPES = ('auto', 'float32', 'bfloat16')


def _positive(cfg, section: str, *fields: str) -> None:
  for f in fields:
    v = cfg[section][f]
    check(isinstance(v, int) and v > 0, f'config.{section}.{f}={v!r} must be a positive integer')


def _fraction(value, field: str, upper_inclusive: bool = False) -> None:
  ok = 0 <= value <= 1 if upper_inclusive else 0 <= value < 1
  interval = '[0, 1]' if upper_inclusive else '[0, 1)'
  check(ok, f'config.{field}={value!r} must be in {interval}')


def _finite(fields: dict, prefix: str = 'config') -> None:
  """No float field is inf or NaN: no field means anything by them (0 turns clip_norm and the like
  off), and a range check such as lr > 0 lets inf through, to a NaN loss or an endless run."""
  for key, value in fields.items():
    if isinstance(value, dict):
      _finite(value, f'{prefix}.{key}')
    else:
      check(not isinstance(value, float) or math.isfinite(value),
             f'{prefix}.{key}={value!r} must be a finite number')


def _runs_cudnn(m) -> bool:
  """config.model.recurrence='cudnn' on a model it applies to (GPT, BERT, minGRU, ... have no
  RecurrentLayer)."""
  return m.get('recurrence') == 'cudnn' and bool(registry.MODELS[m.name].recurrent_cell(m))


def _size_target(m, entry) -> None:
  """model.params / model.flops_per_token: at most one, >= 0, on a model trained by gradient steps
  (whether a width reaches it is known once the data is: seqmodels.models.size.solve)."""
  asked = [f for f in size.TARGETS if m.get(f, 0)]
  for f in size.TARGETS:
    v = m.get(f, 0)
    check(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
          f'config.model.{f}={v!r} must be a number >= 0 (0: the width is config.model.width)')
  check(len(asked) <= 1, 'config.model.params and config.model.flops_per_token both ask for a '
        'size: set one of them to 0')
  check(not asked or entry.trained_by == 'gradient', f'config.model.{asked[0] if asked else ""} '
        f'sizes a model by its width, and {m.name} is counted, not trained: set it to 0')


def validate(config) -> None:
  """Raises ConfigError for the first problem found in `config` (no JAX devices are touched)."""
  _finite(config.to_dict())
  if config.model.name in registry.MODELS and size.target(config.model):
    # the width is the solver's, a multiple of this step: the checks see one such width
    config = config.copy_and_resolve_references()
    config.model.width = 4 * registry.MODELS[config.model.name].width_multiple(config.model)
  m, d, o, t = config.model, config.data, config.optim, config.train
  names = ', '.join(sorted(registry.MODELS))
  check(m.name in registry.MODELS,
         f'config.model.name={m.name!r} is not a model: choose one of {names}')
  _positive(config, 'model', 'width', 'layers')
  check(m.min_scan in ('auto', 'parallel', 'sequential'),
         f'config.model.min_scan={m.min_scan!r} is not a scan: choose auto, parallel or sequential')
  check(m.recurrence in ('auto', *RECURRENCES), f'config.model.recurrence={m.recurrence!r} is not '
         f'a way to run a recurrence: choose auto, {", ".join(RECURRENCES)}')
  if _runs_cudnn(m):
    cell = registry.MODELS[m.name].recurrent_cell(m)
    wrong = ([] if cell == 'lstm'
             else [f'model.name={m.name!r}' + (f' with cell={cell!r}' if cell == m.cell else '')])
    wrong += [f'train.dtype={config.train.dtype!r}'] if config.train.dtype == 'bfloat16' else []
    check(not wrong,
           "config.model.recurrence='cudnn' runs float32 LSTMs only (jax.experimental.rnn), not "
           f'{" and ".join(wrong)}: use recurrence=auto, or an LSTM in float32')
  check(isinstance(m.unroll, int) and m.unroll >= 0, f'config.model.unroll={m.unroll!r} must be '
         'an integer >= 0 (0 chooses per platform: 8 on GPU/TPU, 1 on CPU)')
  check(m.embed >= 0, f'config.model.embed={m.embed!r} must be >= 0 (0 means the same as width)')
  check(m.ffn >= 0, f'config.model.ffn={m.ffn!r} must be >= 0 (0 means 4 * width)')
  _fraction(m.dropout, 'model.dropout')
  check(m.recurrent_init_scale > 0, 'config.model.recurrent_init_scale='
         f'{m.recurrent_init_scale!r} must be > 0 (1.0 is the plain orthogonal init)')
  entry = registry.MODELS[m.name]
  tying = [n for n, e in registry.MODELS.items() if e.tie_embeddings == 'option']
  check(not m.get('tie_embeddings', False) or entry.tie_embeddings == 'option',
         f'config.model.tie_embeddings=True '
         f'applies to the recurrent LMs ({", ".join(tying)}), not model.name={m.name!r}' +
         (', which ties always' if entry.tie_embeddings == 'always' else '') + ': leave it False')

  datasets.check_name(d.name)
  kind = datasets.kind(d.name)
  able = sorted(n for n, e in registry.MODELS.items() if kind in e.kinds)
  check(kind in entry.kinds,
         f'config.model.name={m.name!r} cannot train on config.data.name={d.name!r} '
         f'(a {kind} task): use a model among {able or "none yet"} or another dataset')
  _size_target(m, entry)
  entry.check(config)  # the model's own checks (its registry entry)
  texts = [n for n, e in datasets.DATASETS.items() if e.text]
  check(not entry.needs_text or datasets.DATASETS[d.name].text,
         f'config.model.name={m.name!r} cannot train on config.data.name={d.name!r}: a biLM needs '
         f'running text ({", ".join(texts[:-1])} or {texts[-1]}), where every token is real; the '
         'synthetic tasks weight only their answers')
  datasets.check(config)  # the dataset's own checks (its registry entry)
  pretrained.check_config(config)  # model.pretrained_vectors
  longer = [n for n in recall.eval_lengths(d) if n > d.seq_len] if d.get('eval_lens') else []
  check(not longer or not entry.learned_positions(m),
         f'config.data.eval_lens={d.eval_lens!r} tests at {longer[0] if longer else 0} tokens, '
         f'and model.name={m.name!r} learns positions for data.seq_len={d.seq_len} only, so '
         f'cannot embed them: test at <= {d.seq_len}, or use '
         'model.name=lm with model.position=rope or none')
  check(o.name in OPTIMIZERS, f'config.optim.name={o.name!r} is not an optimizer: choose one of '
         f'{", ".join(OPTIMIZERS)}')
  check(o.lr > 0, f'config.optim.lr={o.lr!r} must be > 0')
  check(o.warmup_steps >= 0, f'config.optim.warmup_steps={o.warmup_steps!r} must be >= 0')
  _fraction(o.min_lr_ratio, 'optim.min_lr_ratio', upper_inclusive=True)
  _fraction(o.get('plateau_decay', 0.0), 'optim.plateau_decay')
  _fraction(o.b1, 'optim.b1')
  _fraction(o.b2, 'optim.b2')
  check(o.weight_decay >= 0, f'config.optim.weight_decay={o.weight_decay!r} must be >= 0')
  check(o.clip_norm >= 0,
         f'config.optim.clip_norm={o.clip_norm!r} must be >= 0 (0 disables clipping)')

  _positive(config, 'train', 'num_steps', 'batch_size', 'grad_accum', 'log_every',
            'keep_checkpoints')
  seeds = ([('config.seed', config.seed)] +
           ([('config.data.seed', config.data.seed)] if 'seed' in config.data else []))
  # numpy's generators (the data order, generated tasks) take none below 0
  for field, seed in seeds:
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32,
           f'{field}={seed!r} must be an integer in [0, 2**32)')
  for field in ('eval_every', 'checkpoint_every'):
    check(isinstance(t[field], int) and t[field] >= 0,
           f'config.train.{field}={t[field]!r} must be an integer >= 0 (0 means once an epoch)')
  epochs = t.get('num_epochs', 0)
  check(isinstance(epochs, (int, float)) and epochs >= 0,
         f'config.train.num_epochs={epochs!r} must be >= 0 (0 trains config.train.num_steps steps)')
  check(t.eval_batches >= 0,
         f'config.train.eval_batches={t.eval_batches!r} must be >= 0 (0 means all)')
  check(t.get('eval_batch_size', 0) >= 0,
         f'config.train.eval_batch_size={t.eval_batch_size!r} must be >= 0 (0 means batch_size)')
  check(t.get('peak_flops', 0.0) >= 0, f'config.train.peak_flops={t.get("peak_flops")!r} must be '
        '>= 0 (0: looked up for a known GPU/TPU, else measured)')
  try:
    profile_steps(t.get('profile_steps', ''))
  except ValueError as e:
    check(False, str(e))
  if t.init_from:
    ckpts = os.path.join(os.path.expanduser(t.init_from), 'checkpoints')
    check(os.path.isdir(ckpts), f'config.train.init_from={t.init_from!r} has no checkpoints/: '
           'point it at the workdir of a finished run')
  check(t.dtype in DTYPES,
         f'config.train.dtype={t.dtype!r} is not supported: choose one of {", ".join(DTYPES)}')
  _check_evaluation(config, entry)
  _check_schedule(config)
  if t.get('carry_state', False):
    carriers = [n for n, e in registry.MODELS.items() if e.carries_state]
    check(entry.carries_state, "config.train.carry_state=True carries a recurrent LM's state (the "
           f"n-gram's context) from window to window, and model.name={m.name!r} has none "
           f"({', '.join(carriers)} do): leave "
           'it False (in a sweep, set it on those trials only)')
    check(datasets.DATASETS[d.name].streams, 'config.train.carry_state=True reads running text as '
           f'streams, and config.data.name={d.name!r} is separate examples: use text or '
           'tiny_shakespeare, or leave it False')
    check(d.stride in (0, d.seq_len),
           f'config.data.stride={d.stride} crops windows at random, and '
           'config.train.carry_state=True reads each stream\'s windows in order: leave stride 0')


def _check_evaluation(config, entry) -> None:
  """train.eval_mode, eval_stride and eval_lengths: modes of running text, on models that have
  them."""
  t, d, m = config.train, config.data, config.model
  mode, stride, lengths = (t.get('eval_mode', 'auto'), t.get('eval_stride', 0),
                           str(t.get('eval_lengths', '')))
  check(mode in evaluate.MODES, f'config.train.eval_mode={mode!r} is not an evaluation mode: '
        f'choose one of {", ".join(evaluate.MODES)}')
  check(isinstance(stride, int) and 0 <= stride <= d.get('seq_len', 0),
        f'config.train.eval_stride={stride!r} must be an integer in [0, data.seq_len='
        f'{d.get("seq_len")}] (0: a quarter window)')
  words = [v.strip() for v in lengths.split(',') if v.strip()]
  check(all(v.isdigit() and int(v) >= 2 for v in words),
        f'config.train.eval_lengths={lengths!r} must list multiples of data.seq_len, each >= 2, '
        "e.g. '2,4,8' (empty: the training length only)")
  streams = datasets.DATASETS[d.name].streams
  if mode in ('strided', 'carried') or words:
    what = (f'config.train.eval_mode={mode}' if mode in ('strided', 'carried')
            else f'config.train.eval_lengths={lengths}')
    check(streams, f'{what} reads running text, and config.data.name={d.name!r} is separate '
          'examples: use text or tiny_shakespeare, or leave it at its default')
    check(entry.trained_by != 'counting', f'{what} applies to trained models; the n-gram\'s '
          'context is its model.order (with train.carry_state it reaches across windows): leave '
          'it at its default')
    check(not entry.objective, f'{what} scores next-token predictions, and model.name={m.name!r} '
          f'trains with the {entry.objective} objective: leave it at its default')
  check(mode != 'carried' or t.get('carry_state', False),
        'config.train.eval_mode=carried reads a split as streams with the state carried, which '
        'a run trained with config.train.carry_state=True has: set it, or use strided')
  if words:
    why = entry.longer_windows(m)
    check(not why, f'config.train.eval_lengths={lengths} evaluates windows longer than training, '
          f'and model.name={m.name!r} cannot read them: {why}: leave eval_lengths empty for it')


def _check_schedule(config) -> None:
  """optim.schedule, decay_fraction and train.branch_from."""
  o, t = config.optim, config.train
  schedule = o.get('schedule', 'cosine')
  check(schedule in optim.SCHEDULES, f'config.optim.schedule={schedule!r} is not a schedule: '
        f'choose one of {", ".join(optim.SCHEDULES)}')
  check(0 < o.get('decay_fraction', 0.2) <= 1, f'config.optim.decay_fraction='
        f'{o.get("decay_fraction")!r} must be in (0, 1]')
  if t.get('branch_from', ''):
    check(schedule == 'wsd', f'config.train.branch_from={t.branch_from!r} continues the stable '
          "phase of a wsd run: set config.optim.schedule='wsd' (or leave branch_from empty)")
    ckpts = os.path.join(os.path.expanduser(t.branch_from), 'checkpoints')
    check(os.path.isdir(ckpts), f'config.train.branch_from={t.branch_from!r} has no '
          'checkpoints/: point it at the workdir of a longer wsd run')
    check(not t.init_from, 'config.train.branch_from and config.train.init_from both start this '
          'run from another: set one of them')


def _parameter_shapes(config):
  """The model's parameter tree (shapes only, traced: nothing runs) for stand-in data of its kind:
  the names follow from config.model alone, not from the vocabulary or length of the data."""
  import jax  # tracing starts JAX: validate_devices runs after distributed initialisation
  import jax.numpy as jnp
  from seqmodels.data import core
  from seqmodels.train import steps
  kind = datasets.kind(config.data.name)
  model = registry.build(config.model, core.Data(kind, 16, 8), jnp.float32)
  objective = steps.objective_for(config.model.name, kind)
  ints, floats = jax.ShapeDtypeStruct((1, 8), jnp.int32), jax.ShapeDtypeStruct((1, 8), jnp.float32)
  batch = {**dict.fromkeys(('inputs', 'targets', 'segments', 'src', 'tgt_in', 'tgt_out'), ints),
           **dict.fromkeys(('values', 'markers', 'mask', 'weights'), floats),
           'center': jax.ShapeDtypeStruct((1,), jnp.int32), 'context': ints, 'negatives': ints}
  return jax.eval_shape(
      lambda b: model.init(jax.random.PRNGKey(0), *objective.inputs(b), train=False)['params'],
      batch)


def _check_freeze(config) -> None:
  """config.optim.freeze names parameters of the model (a misspelt path would train everything), and
  under train.init_from, parameters its checkpoint has (the others would stay random: another
  model.layers, ...)."""
  prefixes = optim.frozen_prefixes(config.optim)
  if not prefixes or registry.MODELS[config.model.name].trained_by != 'gradient':
    return
  params = _parameter_shapes(config)
  check(not (error := optim.freeze_error(params, prefixes)), error)
  init_from = config.train.init_from
  if init_from:
    from flax import traverse_util
    from seqmodels.train import checkpoint
    try:
      saved = checkpoint.saved_param_names(init_from)
    except Exception:  # no readable checkpoint (orbax raises many types): loading it reports that
      return
    unsaved = set(traverse_util.flatten_dict(params, sep='/')) - saved
    check(not (error := checkpoint.unsaved_frozen_error(init_from, 'config.train.init_from',
                                                         unsaved, prefixes)),
           error)


def validate_devices(config, device_count: int, process_count: int, platform: str) -> None:
  """The checks that need the devices (JAX): the global batch must split evenly over them; cuDNN
  needs CUDA GPUs; config.optim.freeze must name parameters of the model; pre-trained vectors must
  be as wide as its embedding."""
  check(not _runs_cudnn(config.model) or platform in ('gpu', 'cuda'),
         "config.model.recurrence='cudnn' needs a CUDA GPU, and this run computes "
         f"on {platform}: use "
         'recurrence=auto (or scan, hoisted)')
  check(not _runs_cudnn(config.model) or config.train.dtype != 'auto',  # (reached on a GPU only)
         "config.model.recurrence='cudnn' runs float32 LSTMs, and train.dtype='auto' "
         "computes in bfloat16 on "
         f'{platform}: set train.dtype=float32')
  if config.train.fsdp and device_count == 1:
    logging.warning('config.train.fsdp=True shards parameters and optimizer state over devices, '
                    'and this run has one: they stay whole (fsdp saves memory on several devices)')
  b = config.train.batch_size
  devices = f'{device_count} device{"s" * (device_count != 1)}'
  check(b % device_count == 0, f'config.train.batch_size={b} does not split over {devices}: '
         f'use a multiple of {device_count}')
  check(b % process_count == 0,
         f'config.train.batch_size={b} does not split over {process_count} processes')
  e = config.train.get('eval_batch_size', 0)
  check(e % device_count == 0 and e % process_count == 0, f'config.train.eval_batch_size={e} does '
         f'not split over {devices} and {process_count} process{"es" * (process_count != 1)}: use '
         f'a multiple of {math.lcm(device_count, process_count)}, or 0 (batch_size)')
  k = config.train.grad_accum
  check(b % (device_count * k) == 0,
         f'config.train.batch_size={b} does not split into train.grad_accum={k} micro-batches over '
         f'{devices}: use a multiple of {device_count * k}, or another grad_accum')
  _check_freeze(config)
  if config.model.get('pretrained_vectors', ''):
    pretrained.check_width(config, _parameter_shapes(config))
