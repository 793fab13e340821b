"""Config validation: every user error is caught here, before compilation, with one line naming field and fix."""

from __future__ import annotations

import math
import os

from seqmodels.data import registry as datasets
from seqmodels.layers.minrnn import MIN_GATES
from seqmodels.layers.recurrent import GATES, RECURRENCES
from seqmodels.models import registry
from seqmodels.train import optim
from seqmodels.train.optim import OPTIMIZERS
from seqmodels.errors import ConfigError

DTYPES = ('auto', 'float32', 'bfloat16')


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ConfigError(message)


def _positive(cfg, section: str, *fields: str) -> None:
  for f in fields:
    v = cfg[section][f]
    _check(isinstance(v, int) and v > 0, f'config.{section}.{f}={v!r} must be a positive integer')


def _fraction(value, field: str, upper_inclusive: bool = False) -> None:
  ok = 0 <= value <= 1 if upper_inclusive else 0 <= value < 1
  interval = '[0, 1]' if upper_inclusive else '[0, 1)'
  _check(ok, f'config.{field}={value!r} must be in {interval}')


def _check_seq2seq(config) -> None:
  """Encoder-decoder model (seqmodels/models/seq2seq.py); data/translation.py checks its data."""
  m, d = config.model, config.data
  if m.name.startswith('seq2seq_'):
    attention = ('none', 'additive', 'general', 'dot')
    _check(m.attention in attention, f'config.model.attention={m.attention!r} is not an attention: choose one of '
           f'{", ".join(attention)}')
    _check(m.attention_width >= 0, f'config.model.attention_width={m.attention_width!r} must be >= 0 (0 means width)')
    _fraction(m.teacher_forcing, 'model.teacher_forcing', upper_inclusive=True)
    _check(not (m.attention == 'dot' and m.encoder_bidirectional), "config.model.attention='dot' needs encoder "
           "states as wide as the decoder's: set config.model.encoder_bidirectional=False or use 'general'")
  if datasets.kind(d.name) != 'seq2seq':
    return
  # Byte tokens are one vocabulary on both sides whatever shared_vocab says; other tokenizers learn one per side.
  _check(m.name != 'transformer' or not m.share_embeddings or d.shared_vocab or d.tokenizer == 'byte',
         'config.model.share_embeddings=True ties the source and target embeddings, and config.data.shared_vocab='
         'False gives the two sides their own vocabularies (source id i and target id i are different pieces): set '
         'config.model.share_embeddings=False, or config.data.shared_vocab=True')


def _check_elmo(config) -> None:
  """The biLM and its classifier (seqmodels/models/elmo.py)."""
  m, d = config.model, config.data
  cells = (*GATES, *MIN_GATES)
  _check(m.cell in cells, f'config.model.cell={m.cell!r} is not a recurrent cell: choose one of {", ".join(cells)}')
  _check(m.embed in (0, m.width), f'config.model.embed={m.embed} differs from config.model.width={m.width}: ELMo '
         'mixes the embedding (layer 0) with the recurrent states, so it has their width: leave embed=0')
  if m.name == 'elmo':
    _check(datasets.DATASETS[d.name].text, f"config.model.name='elmo' cannot train on "
           f'config.data.name={d.name!r}: a biLM needs running text (text, tiny_shakespeare or lm1b), where every '
           'token is real; the synthetic tasks weight only their answers')


def _recurrent_cell(m) -> str:
  """The cell of the model's RecurrentLayers (rnn | lstm | gru), or '' where it has none."""
  cell = m.cell if m.name.startswith('elmo') else m.name.removeprefix('seq2seq_').removesuffix('_classifier')
  return cell if cell in GATES else ''


def _runs_cudnn(m) -> bool:
  """config.model.recurrence='cudnn' on a model it applies to (GPT, BERT, minGRU, ... have no RecurrentLayer)."""
  return m.get('recurrence') == 'cudnn' and bool(_recurrent_cell(m))


def validate(config) -> None:
  """Raises ConfigError for the first problem found in `config` (no JAX devices are touched)."""
  m, d, o, t = config.model, config.data, config.optim, config.train
  names = ', '.join(sorted(registry.MODELS))
  _check(m.name in registry.MODELS, f'config.model.name={m.name!r} is not a model: choose one of {names}')
  _positive(config, 'model', 'width', 'layers')
  _check(m.min_scan in ('auto', 'parallel', 'sequential'), f'config.model.min_scan={m.min_scan!r} is not a scan: '
         'choose auto, parallel or sequential')
  _check(m.recurrence in ('auto', *RECURRENCES), f'config.model.recurrence={m.recurrence!r} is not a way to run '
         f'a recurrence: choose auto, {", ".join(RECURRENCES)}')
  if _runs_cudnn(m):
    wrong = [] if _recurrent_cell(m) == 'lstm' else [f'model.name={m.name!r}' + (
        f' with cell={m.cell!r}' if m.name.startswith('elmo') else '')]
    wrong += [f'train.dtype={config.train.dtype!r}'] if config.train.dtype == 'bfloat16' else []
    _check(not wrong, "config.model.recurrence='cudnn' runs float32 LSTMs only (jax.experimental.rnn), not "
           f'{" and ".join(wrong)}: use recurrence=auto, or an LSTM in float32')
  _check(isinstance(m.unroll, int) and m.unroll >= 0,
         f'config.model.unroll={m.unroll!r} must be an integer >= 0 (0 chooses per platform: 8 on GPU/TPU, 1 on CPU)')
  _check(m.embed >= 0, f'config.model.embed={m.embed!r} must be >= 0 (0 means the same as width)')
  _check(m.ffn >= 0, f'config.model.ffn={m.ffn!r} must be >= 0 (0 means 4 * width)')
  _fraction(m.dropout, 'model.dropout')
  _check(m.recurrent_init_scale > 0, f'config.model.recurrent_init_scale={m.recurrent_init_scale!r} must be > 0 '
         '(1.0 is the plain orthogonal init)')
  recurrent_lms = ('rnn', 'lstm', 'gru', 'mingru', 'minlstm')
  _check(not m.get('tie_embeddings', False) or m.name in recurrent_lms, f'config.model.tie_embeddings=True applies '
         f'to the recurrent LMs ({", ".join(recurrent_lms)}), not model.name={m.name!r}'
         + (', which ties always' if m.name in ('gpt', 'bert', 'transformer') else '') + ': leave it False')
  if m.name == 'ngram':
    _positive(config, 'model', 'order')
    _check(0 <= m.discount <= 1, f'config.model.discount={m.discount!r} must be in [0, 1] (0 means modified '
           'Kneser-Ney discounts estimated from the counts)')
  if m.name == 'transformer_regressor':
    _positive(config, 'model', 'heads')
    _check(m.width % m.heads == 0, f'config.model.heads={m.heads} does not divide config.model.width={m.width}: '
           'choose heads that divide width')
  if m.name in ('gpt', 'bert', 'transformer'):
    _positive(config, 'model', 'heads')
    divisors = [h for h in range(1, m.width + 1) if m.width % h == 0][:8]
    _check(m.width % m.heads == 0, f'config.model.heads={m.heads} does not divide config.model.width={m.width}:'
           f' choose heads from {divisors} or change width')
  if m.name == 'bert':
    _check(m.pool in ('cls', 'mean'), f'config.model.pool={m.pool!r} is not a pooling: choose cls or mean')

  datasets.check_name(d.name)
  kind = datasets.kind(d.name)
  able = sorted(n for n, e in registry.MODELS.items() if kind in e.kinds)
  _check(kind in registry.MODELS[m.name].kinds, f'config.model.name={m.name!r} cannot train on config.data.name='
         f'{d.name!r} (a {kind} task): use a model among {able or "none yet"} or another dataset')
  if m.name in ('elmo', 'elmo_classifier'):
    _check_elmo(config)
  datasets.check(config)
  if m.name == 'transformer' and 'decode' in config:
    _check(config.decode.max_len <= 2 * d.seq_len, f'config.decode.max_len={config.decode.max_len} exceeds the '
           f'Transformer\'s 2 * config.data.seq_len={2 * d.seq_len} positions: lower it or raise seq_len')
  _check_seq2seq(config)
  _check(o.name in OPTIMIZERS, f'config.optim.name={o.name!r} is not an optimizer: choose one of '
         f'{", ".join(OPTIMIZERS)}')
  _check(o.lr > 0, f'config.optim.lr={o.lr!r} must be > 0')
  _check(o.warmup_steps >= 0, f'config.optim.warmup_steps={o.warmup_steps!r} must be >= 0')
  _fraction(o.min_lr_ratio, 'optim.min_lr_ratio', upper_inclusive=True)
  _fraction(o.get('plateau_decay', 0.0), 'optim.plateau_decay')
  _fraction(o.b1, 'optim.b1')
  _fraction(o.b2, 'optim.b2')
  _check(o.weight_decay >= 0, f'config.optim.weight_decay={o.weight_decay!r} must be >= 0')
  _check(o.clip_norm >= 0, f'config.optim.clip_norm={o.clip_norm!r} must be >= 0 (0 disables clipping)')

  _positive(config, 'train', 'num_steps', 'batch_size', 'grad_accum', 'log_every', 'keep_checkpoints')
  seeds = [('config.seed', config.seed)] + ([('config.data.seed', config.data.seed)] if 'seed' in config.data else [])
  for field, seed in seeds:  # numpy's generators (the data order, generated tasks) take none below 0
    _check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32,
           f'{field}={seed!r} must be an integer in [0, 2**32)')
  for field in ('eval_every', 'checkpoint_every'):
    _check(isinstance(t[field], int) and t[field] >= 0, f'config.train.{field}={t[field]!r} must be an integer '
           '>= 0 (0 means once an epoch)')
  epochs = t.get('num_epochs', 0)
  _check(isinstance(epochs, (int, float)) and epochs >= 0, f'config.train.num_epochs={epochs!r} must be >= 0 (0 '
         'trains config.train.num_steps steps)')
  _check(t.eval_batches >= 0, f'config.train.eval_batches={t.eval_batches!r} must be >= 0 (0 means all)')
  _check(t.get('eval_batch_size', 0) >= 0, f'config.train.eval_batch_size={t.eval_batch_size!r} must be >= 0 (0 '
         'means batch_size)')
  if t.init_from:
    ckpts = os.path.join(os.path.expanduser(t.init_from), 'checkpoints')
    _check(os.path.isdir(ckpts), f'config.train.init_from={t.init_from!r} has no checkpoints/: point it at the '
           'workdir of a finished run')
  _check(t.dtype in DTYPES, f'config.train.dtype={t.dtype!r} is not supported: choose one of {", ".join(DTYPES)}')
  if t.get('carry_state', False):
    carriers = (*recurrent_lms, 'ngram')
    _check(m.name in carriers, f"config.train.carry_state=True carries a recurrent LM's state (the n-gram's "
           f"context) from window to window, and model.name={m.name!r} has none ({', '.join(carriers)} do): leave "
           'it False (in a sweep, set it on those trials only)')
    _check(datasets.DATASETS[d.name].streams, f'config.train.carry_state=True reads running text as streams, '
           f'and config.data.name={d.name!r} is separate examples: use text or tiny_shakespeare, or leave it False')
    _check(d.stride in (0, d.seq_len), f'config.data.stride={d.stride} crops windows at random, and '
           'config.train.carry_state=True reads each stream\'s windows in order: leave stride 0')


def _parameter_shapes(config):
  """The model's parameter tree (shapes only, traced: nothing runs) for stand-in data of its kind: the names
  follow from config.model alone, not from the vocabulary or length of the data."""
  import jax  # tracing starts JAX: validate_devices runs after distributed initialisation
  import jax.numpy as jnp
  from seqmodels.data import core
  from seqmodels.train import steps
  kind = datasets.kind(config.data.name)
  model = registry.build(config.model, core.Data(kind, 16, 8), jnp.float32)
  objective = steps.OBJECTIVES[registry.MODELS[config.model.name].objective or kind]
  ints, floats = jax.ShapeDtypeStruct((1, 8), jnp.int32), jax.ShapeDtypeStruct((1, 8), jnp.float32)
  batch = {**dict.fromkeys(('inputs', 'targets', 'segments', 'src', 'tgt_in', 'tgt_out'), ints),
           **dict.fromkeys(('values', 'markers', 'mask', 'weights'), floats)}
  return jax.eval_shape(lambda b: model.init(jax.random.PRNGKey(0), *objective.inputs(b), train=False)['params'],
                        batch)


def _check_freeze(config) -> None:
  """config.optim.freeze names parameters of the model (a misspelt path would train everything), and under
  train.init_from, parameters its checkpoint has (the others would stay random: another model.layers, ...)."""
  prefixes = optim.frozen_prefixes(config.optim)
  if not prefixes or registry.MODELS[config.model.name].trained_by != 'gradient':
    return
  params = _parameter_shapes(config)
  _check(not (error := optim.freeze_error(params, prefixes)), error)
  init_from = config.train.init_from
  if init_from:
    from flax import traverse_util
    from seqmodels.train import checkpoint
    try:
      saved = checkpoint.saved_param_names(init_from)
    except Exception:  # no readable checkpoint (orbax raises many types): loading it reports that
      return
    unsaved = set(traverse_util.flatten_dict(params, sep='/')) - saved
    _check(not (error := checkpoint.unsaved_frozen_error(init_from, 'config.train.init_from', unsaved, prefixes)),
           error)


def validate_devices(config, device_count: int, process_count: int, platform: str) -> None:
  """The checks that need the devices (JAX): the global batch must split evenly over them; cuDNN needs CUDA GPUs;
  config.optim.freeze must name parameters of the model."""
  _check(not _runs_cudnn(config.model) or platform in ('gpu', 'cuda'),
         f"config.model.recurrence='cudnn' needs a CUDA GPU, and this run computes on {platform}: use "
         'recurrence=auto (or scan, hoisted)')
  _check(not _runs_cudnn(config.model) or config.train.dtype != 'auto',  # (reached on a GPU only)
         f"config.model.recurrence='cudnn' runs float32 LSTMs, and train.dtype='auto' computes in bfloat16 on "
         f'{platform}: set train.dtype=float32')
  b = config.train.batch_size
  devices = f'{device_count} device{"s" * (device_count != 1)}'
  _check(b % device_count == 0, f'config.train.batch_size={b} does not split over {devices}: '
         f'use a multiple of {device_count}')
  _check(b % process_count == 0, f'config.train.batch_size={b} does not split over {process_count} processes')
  e = config.train.get('eval_batch_size', 0)
  _check(e % device_count == 0 and e % process_count == 0, f'config.train.eval_batch_size={e} does not split '
         f'over {devices} and {process_count} process{"es" * (process_count != 1)}: use a multiple of '
         f'{math.lcm(device_count, process_count)}, or 0 (batch_size)')
  k = config.train.grad_accum
  _check(b % (device_count * k) == 0, f'config.train.batch_size={b} does not split into train.grad_accum={k} '
         f'micro-batches over {devices}: use a multiple of {device_count * k}, or another grad_accum')
  _check_freeze(config)
