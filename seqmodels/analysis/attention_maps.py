"""Attention maps: the weights softmax(Q K^T / sqrt(d)) of every multi-head attention, on one
example of a run.

Every `MultiHeadAttention` sows its weights when applied with the 'attention' collection mutable
(and computes them only then), so any Transformer-family model gives its maps without a line of its
own:
  * `sown_weights(model, variables, *inputs)`: (outputs, {module path: p_BxHxTxS}) for one forward
    pass.
  * `run_attention_maps(workdir)`: one validation example of a finished run through its latest
    checkpoint, as the arrays of attention_layers.npz: `layer<l>` float32 [heads, T_query, T_key]
    and the tokens on each axis. GPT, BERT and the Transformer regressor give each block's
    self-attention (`tokens`); the encoder-decoder Transformer gives each decoder block's
    encoder-decoder attention (`query_tokens`: the target fed in, `key_tokens`: the source), the
    alignment a translation learns. Padding is cut off first.

From the command line, for finished runs (config.json + the latest checkpoint in each workdir):
  python -m seqmodels.analysis.attention_maps --workdir=RUN [--workdir=RUN2 ...] [--example=0] \
      [--length=64]
writes RUN/attention_layers.npz, which `python -m seqmodels.report RUN` draws as
attention_layers_<run>.png (a row per layer, a column per head). Translation runs also write
attention_maps.npz in their final evaluation (seqmodels.models.seq2seq.final_eval): for several
decoded sentences, an RNN decoder's additive or multiplicative attention, or the Transformer's top
encoder-decoder attention averaged over its heads.
"""

from __future__ import annotations

import os

import numpy as np

from seqmodels.layers.attention import layer_order, sown_weights


def _real_length(tokens_T: np.ndarray) -> int:
  """Positions up to the last non-padding token (at least 1)."""
  from seqmodels.data.core import PAD  # sown_weights, used in training, stays light
  real = np.nonzero(np.asarray(tokens_T) != PAD)[0]
  return int(real[-1]) + 1 if real.size else 1


def _label(text: str) -> str:
  """A token's tick label: '[CLS]' for the '[CLS] ' BERT renders, a lone space or newline as it
  is."""
  return text.strip() or text or ' '


def run_attention_maps(workdir: str, example: int = 0, length: int = 64,
                       checkpoint: str = 'latest') -> dict[str, np.ndarray]:
  """The attention_layers.npz arrays of validation example `example` of the run in `workdir` (module
  docstring).

  The example is cut to its real tokens and then to its first `length` positions (for a causal model
  the first rows of the whole example's maps; for a bidirectional one, the maps of that shorter
  input).
  """
  from seqmodels.analysis import runs  # the CLI's dependencies stay out of the library import

  run = runs.load(workdir)
  data, kind = run.data, run.kind
  batch = next(iter(data.eval_batches(batch_size=example + 1, max_batches=1)))
  rows = [np.asarray(x)[example:example + 1] for x in run.objective.inputs(batch)]
  if len(rows[0]) == 0:
    raise ValueError(f'--example={example} is past the first validation batch: pick a smaller one')
  if kind == 'seq2seq':  # source and target fed in, each cut to its own real tokens
    rows = [r[:, :min(_real_length(r[0]), length)] for r in rows]
  elif kind == 'regression':  # values, markers, mask: the mask says how long the sequence is
    n = min(max(int(rows[-1][0].sum()), 1), length)
    rows = [r[:, :n] for r in rows]
  elif kind == 'lm':
    # up to the last weighted target (token id 0 is a character of a text, PAD in other tasks)
    weighted = np.flatnonzero(np.asarray(batch['weights'])[example])
    n = min(int(weighted[-1]) + 1 if weighted.size else 1, length)
    rows = [r[:, :n] for r in rows]
  else:  # tokens first, then (BERT) the segments of the same positions
    n = min(_real_length(rows[0][0]), length)
    rows = [r[:, :n] for r in rows]

  params, step = runs.latest_params(run, rows, checkpoint)
  _, weights = sown_weights(run.model, {'params': params}, *rows, train=False)
  if kind == 'seq2seq':
    weights = {p: w for p, w in weights.items() if p.endswith('cross_attn')}
  if not weights:
    raise ValueError(f'config.model.name={run.config.model.name} has no multi-head attention '
                     '(seq2seq models with additive or multiplicative attention write '
                     'attention_maps.npz in their final evaluation)')
  out = {f'layer{i}': weights[p][0] for i, p in enumerate(sorted(weights, key=layer_order))}
  if kind == 'seq2seq':
    src_tok, tgt_tok = data.meta['src_tokenizer'], data.meta['tgt_tokenizer']
    out['key_tokens'] = np.array(src_tok.pieces(rows[0][0].tolist()))
    out['query_tokens'] = np.array(['<s>'] + tgt_tok.pieces(rows[1][0, 1:].tolist()))
  elif kind != 'regression':
    out['tokens'] = np.array([_label(data.decode([t])) for t in rows[0][0].tolist()])
  out['step'], out['example'] = np.asarray(step), np.asarray(example)
  return out


def main(argv: list[str] | None = None) -> None:
  from seqmodels import cli
  from seqmodels.analysis import runs
  parser = cli.ArgumentParser(
      description='attention weights of finished runs -> RUN/attention_layers.npz')
  parser.add_argument('--workdir', action='append', required=True,
                      help='a finished run (repeat for several)')
  parser.add_argument('--example', type=int, default=0,
                      help='which example of the first validation batch')
  parser.add_argument('--length', type=int, default=64,
                      help='positions kept (the heatmaps label up to 40)')
  runs.add_checkpoint_flag(parser)
  args = parser.parse_args(argv)
  from seqmodels.errors import CheckpointError
  if args.example < 0 or args.length < 1:
    cli.fail(f'--example={args.example} --length={args.length}: the example is >= 0 and the '
             'length >= 1')
  runs.check_workdirs(args.workdir)
  for workdir in args.workdir:  # before any computing
    cli.check_writable(os.path.join(workdir, 'attention_layers.npz'), '--workdir')
  for workdir in args.workdir:
    try:
      maps = run_attention_maps(workdir, args.example, args.length, args.checkpoint)
    except (CheckpointError, ValueError) as e:
      cli.fail(f'--workdir={workdir}: {e}')
    path = os.path.join(workdir, 'attention_layers.npz')
    with cli.writing(path):
      np.savez(path, **maps)
    n, (heads, queries, keys) = sum(k.startswith('layer') for k in maps), maps['layer0'].shape
    print(f'{workdir}: {n} layer{"s" * (n > 1)} x {heads} heads, {queries} x {keys} '
          f'positions -> {path}')


if __name__ == '__main__':
  main()
