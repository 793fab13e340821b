"""Gradient flow through time: ||dL/dh_t|| for every step t (Hochreiter 1991; Bengio et al. 1994).

L is a loss read at one position (the last, usually) and h_t the hidden state at step t. A tanh RNN
multiplies the gradient by the recurrent Jacobian once per step, so ||dL/dh_t|| shrinks (or grows)
geometrically with T - t; attention reaches every position in one step, so it does not.

Everything reduces to one idea: dL/dh_t is the gradient with respect to a zero perturbation added to
h_t where h_t is computed, because L(h + eps) and L(h) have the same derivative at eps = 0. Two ways
in:
  * `step_gradient_norms(loss_of_h, h_BxTxH)`: when the model splits as loss = f(h) (the part above
    h), e.g. the Transformer blocks above a layer. Pass zeros and an f that adds its argument at the
    right place otherwise.
  * `perturbation_gradient_norms(model, variables, loss_fn, *inputs)`: any flax module with flax
    `perturb` sites. RecurrentLayer and MinRNNLayer add theirs, named 'h', *inside* the recurrence,
    so the gradient includes every path through later steps (an RNN's output sequence is the wrong
    place: the layer above reads h_T only at T). Modules without a site (e.g. a Transformer `Block`)
    get one on their output with `perturb_outputs_of=(Block,)`.
Both return the mean over the batch of per-example norms, float32 [T] (one array per site for the
second).

From the command line, for finished runs (config.json + the latest checkpoint in each workdir):
  python -m seqmodels.analysis.gradient_flow --workdir=RUN [--workdir=RUN2 ...] [--out=FILE] \
      [--batch_size=16]
writes gradient_flow.json (into each RUN, or all series into FILE) in the format seqmodels.report
plots. Runs of language models (ELMo's too), the adding problem, classifiers (their loss reads the
whole text) and translations (the loss at a target position; the encoder's series runs over source
positions, time='source', its distance counted from the source's last token: the context an RNN
decoder starts from) are read; BERT pre-training, with no one loss position, is refused in one line.
Each row's loss is read at its own end (its last target, its text's last token) and its norms
measured from there before the rows are averaged, so rows of different lengths line up by distance
(`aligned_mean`); --loss_position reads every row at one position instead.
"""

from __future__ import annotations

from typing import Any, Callable

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array


def _example_norms(g_BxTx: Array) -> Array:
  """||g[b, t, ...]||_2 -> [B, T]."""
  g_BxTxF = g_BxTx.reshape(g_BxTx.shape[0], g_BxTx.shape[1], -1).astype(jnp.float32)
  return jnp.linalg.norm(g_BxTxF, axis=-1)


def aligned_mean(norms_BxT: Array | np.ndarray, end_B: np.ndarray) -> tuple[np.ndarray, int]:
  """The mean over rows of per-row norms aligned at each row's own end (its loss position, or its
  source's last token): returns (norms [T], L) with L = the latest end, entry k holding distance L -
  k from every row's end.

  A row whose sequence does not reach back that far is left out of that entry's mean (so the far
  entries are the long rows' mean); the row with the latest end reaches every entry. Rows of one
  length: the plain mean.
  """
  n_BxT, end_B = np.asarray(norms_BxT, np.float64), np.asarray(end_B, np.int64)
  T, latest = n_BxT.shape[1], int(end_B.max())
  # the position of row b that entry k reads
  t_BxT = np.arange(T)[None, :] - latest + end_B[:, None]
  valid_BxT = (t_BxT >= 0) & (t_BxT < T)
  n_BxT = np.where(valid_BxT, np.take_along_axis(n_BxT, np.clip(t_BxT, 0, T - 1), axis=1), 0.0)
  return n_BxT.sum(0) / np.maximum(valid_BxT.sum(0), 1), latest


def step_gradient_norms(loss_of_h: Callable[[Array], Array], h_BxTxH: Array) -> Array:
  """Mean over the batch of ||dL_b/dh_{b,t}|| for every t, float32 [T].

  `loss_of_h` maps h_BxTxH to per-example losses [B] (or their sum); examples must not interact (no
  batch norm) for the norms to be per example.
  """
  g_BxTxH = jax.jit(jax.grad(lambda h: jnp.sum(loss_of_h(h))))(h_BxTxH)
  return _example_norms(g_BxTxH).mean(0)


def _perturbing_outputs_of(classes: tuple[type, ...]):
  """A flax method interceptor that adds a perturbation site 'output' to the output of every module
  of `classes`."""

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if classes and context.method_name == '__call__' and isinstance(context.module, classes):
      out = context.module.perturb('output', out)
    return out

  return nn.intercept_methods(interceptor)


def perturbation_gradient_norms(model: nn.Module, variables: dict, loss_fn: Callable[[Any], Array],
                                *inputs: Any, perturb_outputs_of: tuple[type, ...] = (),
                                per_example: bool = False, **apply_kwargs) -> dict[str, Array]:
  """{site path: mean over the batch of ||dL_b/dh_{b,t}||, float32 [T]} for every flax `perturb`
  site (`per_example=True`: each example's, [B, T]).

  `loss_fn` maps the model's output to per-example losses [B] (or their sum), e.g. the cross-entropy
  of the last position. Sites are the module's own `perturb` calls plus the outputs of modules of
  `perturb_outputs_of`. Paths name the module and site, e.g. 'layer0/h' (RecurrentLayer) or
  'block2/output'.
  """
  variables = {k: v for k, v in variables.items() if k != 'perturbations'}
  classes = tuple(perturb_outputs_of)

  def zero_perturbations(variables, inputs):
    with _perturbing_outputs_of(classes):
      return model.apply(variables, *inputs, mutable='perturbations', **apply_kwargs)[1]

  def loss(perturbations, variables, inputs):
    with _perturbing_outputs_of(classes):
      out = model.apply({**variables, 'perturbations': perturbations}, *inputs, **apply_kwargs)
    return jnp.sum(loss_fn(out))

  state = jax.eval_shape(zero_perturbations, variables, inputs)
  if 'perturbations' not in state:
    raise ValueError(f'{type(model).__name__} has no perturbation site: pass '
                     'perturb_outputs_of=(SomeLayer,) naming the layer class whose outputs are '
                     'the hidden states.')
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state['perturbations'])
  grads = jax.jit(jax.grad(loss))(zeros, variables, inputs)
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  reduce = (lambda n: n) if per_example else (lambda n: n.mean(0))
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): reduce(_example_norms(g))
          for path, g in flat}


def decay_rate(norms_T: Array | np.ndarray, skip_last: int = 1) -> float:
  """Least-squares slope of log ||dL/dh_t|| per step of distance from the end (< 0: gradients vanish
  backwards).

  The last `skip_last` steps are left out: there L reads h_t directly, not through the recurrence or
  attention.
  """
  n = np.asarray(norms_T, np.float64)[:len(norms_T) - skip_last]
  distance = np.arange(len(n))[::-1] + skip_last
  return float(np.polyfit(distance, np.log(np.maximum(n, 1e-300)), 1)[0])


def _at(x_BxT: Array, position: int | np.ndarray) -> Array:
  """x[:, position] for one position; x[b, position[b]] for one per row (int [B])."""
  if isinstance(position, (int, np.integer)):
    return x_BxT[:, position]
  index = jnp.asarray(position).reshape((-1, 1) + (1,) * (x_BxT.ndim - 2))
  return jnp.take_along_axis(jnp.asarray(x_BxT), index, axis=1)[:, 0]


def _cross_entropy_at(logits_BxTxV: Array, targets_BxT: Array, weights_BxT: Array,
                      position: int | np.ndarray | None) -> Array:
  """Per-example weighted cross-entropy at `position` (one, or one per row), or summed over every
  position (None)."""
  if position is None:
    ce_BxT = optax.softmax_cross_entropy_with_integer_labels(
        logits_BxTxV.astype(jnp.float32), targets_BxT)
    return (ce_BxT * weights_BxT).sum(-1)
  ce_B = optax.softmax_cross_entropy_with_integer_labels(
      _at(logits_BxTxV, position).astype(jnp.float32), _at(targets_BxT, position))
  return ce_B * _at(weights_BxT, position)


def _loss_at(kind: str, position: int | np.ndarray | None) -> Callable:
  """Per-example loss read at one position, or at one per row (int [B]), or over every target (None,
  for LMs and translations): the cross-entropy there, or the regressor's squared error (its
  prediction reads the final state)."""
  def lm_loss(batch):
    return lambda logits_BxTxV: _cross_entropy_at(
        logits_BxTxV, batch['targets'], batch['weights'], position)

  def regression_loss(batch):
    return lambda pred_B: batch['mask'][:, 0] * (pred_B - batch['target']) ** 2

  def bilm_loss(batch):
    """ELMo: the forward LM's cross-entropy at `position` plus the backward LM's where it reads
    farthest, predicting x_0 from x_1..x_T. The two stacks share only the embedding, so each
    direction's sites see only its own loss."""
    def loss(outputs):
      fwd_B = _cross_entropy_at(outputs.fwd_BxTxV, batch['targets'], batch['weights'], position)
      bwd_B = optax.softmax_cross_entropy_with_integer_labels(
          outputs.bwd_BxTxV[:, 1], batch['inputs'][:, 0])
      return fwd_B + bwd_B * batch['weights'][:, 0]
    return loss

  def seq2seq_loss(batch):
    """A translation's cross-entropy at target position `position` (teacher forcing); an RNN decoder
    returns (logits, attention weights)."""
    def loss(outputs):
      logits_BxTxV = outputs[0] if isinstance(outputs, tuple) else outputs
      return _cross_entropy_at(logits_BxTxV, batch['tgt_out'], batch['weights'], position)
    return loss

  def classify_loss(batch):
    return lambda logits_BxC: batch['weight'] * optax.softmax_cross_entropy_with_integer_labels(
        logits_BxC.astype(jnp.float32), batch['label'])

  losses = {'lm': lm_loss, 'regression': regression_loss, 'bilm': bilm_loss,
            'seq2seq': seq2seq_loss, 'classify': classify_loss}
  if kind not in losses:
    raise ValueError(f'gradient flow reads a loss at one position, which a {kind} run does not '
                     f'have: pass a run of one of {", ".join(losses)}')
  return losses[kind]


def _is_backward_site(site: str) -> bool:
  """ELMo's backward stacks (BiLM 'bwd{n}'): their scan, and so their site, runs in reversed
  time."""
  return any(part.startswith('bwd') and part[3:].isdigit() for part in site.split('/'))


def run_gradient_flow(workdir: str, batch_size: int = 16, loss_position: int | None = None,
                      checkpoint: str = 'latest', whole_sequence: bool = False) -> list[dict]:
  """Gradient-flow series of a finished run: one {model, site, step, loss_position, norms} per
  perturbation site.

  The loss is read, by default, at each row's own end: its last weighted target, for LMs and
  translations (rows of variable length end at different positions), its text's last token for
  classifiers, the last step for regression, whose prediction reads the final state. Each row's
  norms are measured from that end and averaged over the first validation batch's real rows
  (`aligned_mean`), so norms[loss_position - d] is the mean at distance d. For LMs and translations,
  `loss_position` reads every row at that one position instead, and `whole_sequence` sums the loss
  over every target of the row, the whole translation's loss (the distances stay measured from the
  row's end). The parameters are those of the run's latest checkpoint (`checkpoint='best'`: its best
  evaluation's). Attention models get their sites on the output of every Transformer block.
  An ELMo biLM reads its forward LM at one position (the batch's last weighted one) and adds its
  backward LM's loss at the far end (predicting x_0); its backward sites' series are in their
  reading order (reversed time, marked time='reversed'), so loss_position - t is the distance for
  both.
  A translation's encoder series run over source positions (time='source'), measured from each row's
  last real source token: the context an RNN decoder starts from.
  """
  from seqmodels.analysis import runs  # the CLI's dependencies stay out of the library import
  from seqmodels.layers.transformer import Block, DecoderBlock
  from seqmodels.models import lm

  run = runs.load(workdir)
  config, data, model, kind = run.config, run.data, run.model, run.kind
  if whole_sequence and kind not in ('lm', 'seq2seq'):
    raise ValueError('--whole_sequence sums the loss over every target of a language model or a '
                     f'translation; a {kind} run has one loss: leave it out')
  if loss_position is not None and kind in ('classify', 'regression'):
    raise ValueError('--loss_position picks the target a language model or a translation is read '
                     f'at; a {kind} run has one loss, read at its end: leave it out')
  if whole_sequence and loss_position is not None:
    raise ValueError(
        '--whole_sequence reads the loss at every target, --loss_position at one: pass one of them')
  batch = next(iter(data.eval_batches(batch_size=batch_size, max_batches=1)))
  inputs = run.objective.inputs(batch)
  params, step = runs.latest_params(run, inputs, checkpoint)
  last_of = (lambda x_BxT: np.asarray(x_BxT).shape[1] - 1 -
             np.argmax(np.asarray(x_BxT)[:, ::-1] != 0, axis=1))
  if data.kind == 'regression':
    positions_BxT = np.asarray(batch['mask'])
    rows_B, end_B = positions_BxT.sum(-1) > 0, positions_BxT.sum(-1).astype(np.int64) - 1
  elif kind == 'classify':  # the prediction reads the whole text: its last real token (PAD is 0)
    positions_BxT = np.asarray(batch['inputs'])
    rows_B, end_B = np.asarray(batch['weight']) > 0, last_of(positions_BxT)
  else:
    positions_BxT = np.asarray(batch['weights'])
    rows_B, end_B = positions_BxT.sum(-1) > 0, last_of(positions_BxT)
  if not rows_B.any():
    raise ValueError(
        f'the first validation batch of {workdir} has no real rows: pass a larger --batch_size')
  if loss_position is not None:
    T = positions_BxT.shape[1]
    if not -T <= loss_position < T:
      raise ValueError(f'--loss_position={loss_position} is outside its {T} positions: pass one in '
                       f'0..{T - 1} (or -1 for the last)')
    end_B = np.full_like(end_B, loss_position % T)
  elif kind == 'bilm':  # one forward position for every row (the docstring's ELMo reading)
    end_B = np.full_like(end_B, end_B[rows_B].max())
  loss_fn = _loss_at(kind, None if whole_sequence else end_B)(batch)
  apply = lambda **kw: perturbation_gradient_norms(model, {'params': params}, loss_fn, *inputs,
                                                   train=False, per_example=True, **kw)
  if isinstance(model, lm.LM):  # every mixer alike: perturbed at the output of each block
    norms = apply(perturb_outputs_of=(lm.Block,))
  else:
    try:
      norms = apply()
    except ValueError:
      # no recurrent perturbation site: an attention model, perturbed at each block's output
      norms = apply(perturb_outputs_of=(Block, DecoderBlock))
  src_end_B = last_of(batch['src']) if kind == 'seq2seq' else None
  series = []
  for site, n_BxT in sorted(norms.items()):
    source = kind == 'seq2seq' and site.startswith('encoder')
    mean_T, latest = aligned_mean(np.asarray(n_BxT)[rows_B],
                                  (src_end_B if source else end_B)[rows_B])
    s = {'model': config.model.name, 'run': os.path.basename(os.path.normpath(workdir)),
         'site': site, 'step': step, 'loss_position': latest, 'norms': [float(v) for v in mean_T]}
    if whole_sequence:
      s['loss'] = 'whole_sequence'
    # its loss reads original position 1, in its own time order
    if kind == 'bilm' and _is_backward_site(site):
      s.update(loss_position=len(s['norms']) - 2, time='reversed')
    if source:
      s['time'] = 'source'
    series.append(s)
  return series


def main(argv: list[str] | None = None) -> None:
  from seqmodels import cli
  from seqmodels.analysis import runs
  parser = cli.ArgumentParser(description='||dL/dh_t|| of finished runs -> gradient_flow.json')
  parser.add_argument('--workdir', action='append', required=True,
                      help='a finished run (repeat for several)')
  parser.add_argument('--out', default='',
                      help='one JSON for all runs (default: RUN/gradient_flow.json each)')
  parser.add_argument('--batch_size', type=int, default=16,
                      help='validation examples averaged over')
  parser.add_argument('--loss_position', type=int, default=None, help="the target position an LM's "
                      "or translation's loss is read at (default: each row's last)")
  parser.add_argument('--whole_sequence', action='store_true', help='sum the loss over every '
                      'target (LMs, translations) instead of reading it at one')
  runs.add_checkpoint_flag(parser)
  args = parser.parse_args(argv)
  from seqmodels.errors import CheckpointError
  runs.check_workdirs(args.workdir)
  for target in ([args.out] if args.out
                 else [os.path.join(w, 'gradient_flow.json') for w in args.workdir]):
    cli.check_writable(target, '--out' if args.out else '--workdir')  # before any computing
  everything = []
  for workdir in args.workdir:
    try:
      series = run_gradient_flow(workdir, args.batch_size, args.loss_position, args.checkpoint,
                                 args.whole_sequence)
    except (CheckpointError, ValueError) as e:
      cli.fail(f'--workdir={workdir}: {e}')
    everything += series
    if not args.out:
      with cli.writing(workdir), open(os.path.join(workdir, 'gradient_flow.json'), 'w') as f:
        json.dump({'series': series}, f)
    for s in series:
      print(f'{workdir}: {s["model"]} {s["site"]}: decay rate '
            f'{decay_rate(s["norms"][:s["loss_position"] + 1]):+.3f} log-norm per step')
  if args.out:
    with cli.writing(args.out):
      os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
      with open(args.out, 'w') as f:
        json.dump({'series': everything}, f)


if __name__ == '__main__':
  main()
