"""Perplexity where counting has little to go on: on rare words, and after contexts never seen in
training. The number behind the step from n-grams to neural LMs: a word's vector lets a model
score a word or a context it saw seldom or never by the words that resemble it.

  python -m seqmodels.analysis.rare_words --workdir=RUN [--workdir=RUN ...] [--rare=10]

For each LM run (n-gram, RNN/LSTM/GRU, GPT, the lm backbone) on running text: every token of the
validation split (--split) is scored once, in the windows its evaluation reads (each from a fresh
state, data.seq_len tokens), and the perplexity is reported over
  all        every target token;
  rare       targets seen 1 to --rare times in the training split;
  frequent   targets seen more often ('<unk>' is neither: it stands for many words);
  unseen_bigram   targets whose bigram (previous token, target) never occurs in training: what an
                  n-gram must back off for;
  unseen_trigram  likewise for (two previous tokens, target);
with the tokens each counts. Writes rare_words.json into each run (or all in one --out file).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from seqmodels import cli
from seqmodels.errors import SeqmodelsError

RESULT = 'rare_words.json'


def _seen(train_N: np.ndarray, order: int, vocab: int) -> np.ndarray:
  """The sorted codes of the n-grams of the training stream."""
  codes = np.zeros(len(train_N) - order + 1, np.int64)
  for k in range(order):
    codes = codes * vocab + train_N[k:len(train_N) - order + 1 + k]
  return np.unique(codes)


def _is_seen(codes: np.ndarray, seen: np.ndarray) -> np.ndarray:
  at = np.minimum(np.searchsorted(seen, codes), len(seen) - 1)
  return seen[at] == codes


def token_nll(workdir: str, split: str = 'validation', batch_size: int = 32):
  """(nll [n] nats, target ids [n], the two previous ids [n, 2] or -1, the run) over the split."""
  import jax
  import jax.numpy as jnp
  from seqmodels.analysis import runs
  from seqmodels.models import ngram, registry
  from seqmodels.train import count

  run = runs.load(workdir)
  if run.kind != 'lm' or 'words' not in run.data.meta:
    raise ValueError(f'{workdir}: config.model.name={run.config.model.name} on '
                     f'config.data.name={run.config.data.name} is not a word-level LM: rare_words '
                     "reads LMs on word tokens (data.name='text', data.tokenizer='word')")
  m = run.config.model
  if registry.MODELS[m.name].trained_by == 'counting':
    model = ngram.fit(count.training_tokens(run.data, run.config.data), m.order,
                      run.data.vocab_size, discount=m.discount or None)
    score = lambda batch: model.nll(batch)
  else:
    params, _ = runs.latest_params(run, [jnp.zeros((1, 2), jnp.int32)])
    logits = jax.jit(lambda p, x: jax.nn.log_softmax(
        run.model.apply({'params': p}, x, train=False).astype(jnp.float32)))
    score = lambda batch: -np.take_along_axis(
        np.asarray(logits(params, batch['inputs'])), batch['targets'][..., None], -1)[..., 0]
  nll, targets, previous = [], [], []
  for batch in run.data.eval_batches(batch_size=batch_size, split=split):
    real = batch['weights'] > 0
    window = np.concatenate([batch['inputs'], batch['targets'][:, -1:]], axis=1)
    prev = np.stack([np.pad(window, ((0, 0), (1, 0)), constant_values=-1)[:, :-2],
                     window[:, :-1]], -1)
    nll.append(np.asarray(score(batch))[real])
    targets.append(batch['targets'][real])
    previous.append(prev[real])
  return np.concatenate(nll), np.concatenate(targets), np.concatenate(previous), run


def analyse(workdir: str, split: str = 'validation', rare: int = 10) -> dict[str, Any]:
  """The rare_words.json record of one run (module docstring)."""
  from seqmodels.data import tokenizers
  from seqmodels.train import count
  nll, target, previous, run = token_nll(workdir, split)
  train_N = count.training_tokens(run.data, run.config.data)
  V = run.data.vocab_size
  counts_V = np.bincount(train_N, minlength=V)
  unk = list(run.data.meta['words']).index(tokenizers.UNK_WORD)
  groups = {'all': np.ones(len(target), bool),
            'rare': (counts_V[target] >= 1) & (counts_V[target] <= rare) & (target != unk),
            'frequent': (counts_V[target] > rare) & (target != unk)}
  has_prev = previous[:, 1] >= 0
  groups['unseen_bigram'] = has_prev & ~_is_seen(previous[:, 1] * V + target, _seen(train_N, 2, V))
  has_two = previous[:, 0] >= 0
  trigrams = (previous[:, 0] * V + previous[:, 1]) * V + target
  groups['unseen_trigram'] = has_two & ~_is_seen(np.where(has_two, trigrams, 0),
                                                 _seen(train_N, 3, V))
  result = {'model': run.config.model.name, 'split': split, 'rare': rare,
            'pretrained_vectors': run.config.model.get('pretrained_vectors', ''),
            'freeze': run.config.optim.get('freeze', '')}
  for name, mask in groups.items():
    mean = float(nll[mask].mean()) if mask.any() else float('nan')
    result[name] = {'perplexity': math.exp(mean) if mask.any() else float('nan'),
                    'tokens': int(mask.sum())}
  return result


def main(argv: list[str] | None = None) -> None:
  from seqmodels.analysis import runs
  parser = cli.ArgumentParser(prog='python -m seqmodels.analysis.rare_words',
                              description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', action='append', required=True, help='an LM run; repeats')
  parser.add_argument('--split', default='validation')
  parser.add_argument('--rare', type=int, default=10, help='a rare word is seen at most this often')
  parser.add_argument('--out', default='', help='one JSON file for all (default: each run\'s)')
  args = parser.parse_args(argv)
  runs.check_workdirs(args.workdir, counted=True)
  outs = [args.out] if args.out else [os.path.join(w, RESULT) for w in args.workdir]
  for out in outs:  # before any computing
    cli.check_writable(out, '--out' if args.out else '--workdir')
  results = []
  for workdir in args.workdir:
    try:
      results.append(analyse(workdir, args.split, args.rare))
    except (SeqmodelsError, ValueError) as e:
      cli.fail(str(e))
    r = results[-1]
    print(f'{workdir}: ' + ', '.join(f'{k} {r[k]["perplexity"]:.1f} ({r[k]["tokens"]})'
                                      for k in ('all', 'rare', 'frequent', 'unseen_bigram',
                                                'unseen_trigram')))
  for out, result in zip(outs, [results] if args.out else results):
    cli.write_json(out, result)


if __name__ == '__main__':
  main()
