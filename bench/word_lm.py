"""A word-level LSTM LM against PyTorch's word_language_model example, in one run, on the same
corpus and hardware.

  python bench/word_lm.py --data=../shared/data/tinyshakespeare.txt \
      --peer=third_party/pytorch_examples/word_language_model [--epochs=6]
  python bench/word_lm.py --data='wikitext-2/wiki.{split}.tokens' --peer=...    # one file per split

The corpus is one text file, whose lines are split 80/10/10 in order into train, valid and test, or
one file per split (`{split}`: train; valid/validation/val/dev; test). Words that train never has
become `<unk>` in every split, written to a temporary directory as train.txt / valid.txt / test.txt:
PTB's and WikiText's convention, which the peer's data.py assumes (it builds its vocabulary from all
three files), so both sides have one vocabulary, and no word is scored that no model could have
learnt.

The recipe is the example's defaults: a 2-layer LSTM, 200-wide embedding and states, dropout 0.2,
untied, 35-token windows, batch 20, plain SGD at lr 20 with gradients clipped to norm 0.25, the
hidden state carried from each batch to the next (seqmodels: `train.carry_state`), evaluated as 10
streams with the state carried across each (`train.eval_batch_size=10`), the learning rate divided
by 4 after each epoch whose validation loss is not below the best so far (seqmodels: a constant
schedule with `optim.plateau_decay=0.25`, evaluated once an epoch), and the best epoch's model kept
(`train.keep_best`). Both report the test perplexity of their best-validation model. Both sides are
timed as whole processes (start-up, compilation, per-epoch evaluation included). `--epochs` is the
peer's upper epoch limit and seqmodels' length (`train.num_epochs`, epochs of the same windows),
`--model` GRU or LSTM, `--size` the embedding and state width (200, the example's default; 650 and
1500 are its README's medium and large, with `--dropout` 0.5 and 0.65), `--tied` ties the output
layer to the embedding on both sides (the example's `--tied`, seqmodels' `model.tie_embeddings`).

Prints one JSON line per implementation: case, implementation, device, wall_s, epochs, steps,
ms_per_step, tokens_per_s, val_ppl (best), test_ppl, vocab, train_tokens, host, command, commit,
date. ms_per_step is the training loop's time a step: seqmodels' train_seconds (evaluation out), the
peer's epoch times (its per-epoch validation pass in: a forward pass over a split an eighth the size
of train, a few percent of an epoch).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout without installing
COMMAND = ' '.join(['python', *sys.argv])
BATCH, EVAL_BATCH, BPTT, LR, CLIP = 20, 10, 35, 20.0, 0.25


def _commit() -> str:
  """The commit of the seqmodels that ran, '+dirty' with uncommitted changes (summary.json's
  `commit`)."""
  from seqmodels.train.workdir import code_version  # late: it imports jax
  return code_version()


def split_corpus(data: str, out: str) -> dict[str, int]:
  """Writes out/{train,valid,test}.txt with words outside train's vocabulary as <unk>; returns token
  counts."""
  from seqmodels.data import builders
  if '{split}' in data:
    files = builders.split_files(data)
    if 'test' not in files:
      sys.exit(f'error: --data={data!r} has no test file: this benchmark scores the test split')
    parts = {split: open(files[name], encoding='utf-8').read().splitlines()
             for split, name in (('train', 'train'), ('valid', 'validation'), ('test', 'test'))}
  else:
    if not os.path.isfile(data):
      sys.exit(f'error: --data={data!r} does not exist: point it at a local text file, or '
               'one file per split')
    lines = open(data, encoding='utf-8').read().splitlines()
    a, b = int(len(lines) * 0.8), int(len(lines) * 0.9)
    parts = {'train': lines[:a], 'valid': lines[a:b], 'test': lines[b:]}
  vocab = {w for line in parts['train'] for w in line.split()}
  counts = {}
  for split, lines in parts.items():
    with open(os.path.join(out, f'{split}.txt'), 'w', encoding='utf-8') as f:
      f.writelines(' '.join(w if w in vocab else '<unk>' for w in line.split()) + '\n'
                   for line in lines)
    counts[split] = sum(len(line.split()) + 1 for line in lines)  # each line's words and its <eos>
  counts['vocab'] = len(vocab | {'<unk>', '<eos>'})
  return counts


def _host() -> str:
  """The CPU's model name and core count (the device runs next to it)."""
  try:
    with open('/proc/cpuinfo') as f:
      name = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), '')
  except OSError:
    name = ''
  return f'{name or "cpu"}, {os.cpu_count()} cores'


def _line(impl: str, wall_s: float, steps: int, train_s: float, val_ppl: float, test_ppl: float,
          **extra) -> dict:
  return {'case': 'word_lm', 'implementation': impl, 'device': extra.pop('device'),
          'wall_s': round(wall_s, 1), 'steps': steps,
          'ms_per_step': round(1000 * train_s / steps, 2),
          'tokens_per_s': round(BATCH * BPTT * steps / train_s), 'val_ppl': round(val_ppl, 2),
          'test_ppl': round(test_ppl, 2), **extra, 'host': _host(), 'command': COMMAND,
          'commit': _commit(), 'date': datetime.date.today().isoformat()}


def run_peer(peer: str, corpus: str, args) -> dict:
  """The example's main.py on the corpus, its stdout parsed: per-epoch time and validation loss,
  test loss."""
  main = os.path.join(os.path.abspath(peer), 'main.py')
  if not os.path.isfile(main):
    sys.exit(f'error: --peer={peer!r} has no main.py: point it at a checkout of '
             'pytorch/examples/word_language_model')
  cmd = [sys.executable, main, '--data', corpus, '--model', args.model, '--emsize', str(args.size),
         '--nhid', str(args.size), '--dropout', str(args.dropout), '--epochs', str(args.epochs),
         '--save',
         # --accel: a GPU if any
         os.path.join(corpus, 'model.pt'), '--accel', *(['--tied'] if args.tied else [])]
  t0 = time.time()
  result = subprocess.run(cmd, cwd=corpus, capture_output=True, text=True)
  wall = time.time() - t0
  if result.returncode:
    sys.exit(f'error: the peer failed: {result.stderr.strip().splitlines()[-1:]}')
  out = result.stdout
  epochs = [(float(t), float(v)) for t, v in re.findall(r'end of epoch +\d+ \| time: +([\d.]+)s \| '
                                                        r'valid loss +([\d.]+)', out)]
  # its batches an epoch, the last one shorter
  per_epoch = len(range(0, args.train_tokens // BATCH - 1, BPTT))
  test_loss = float(re.findall(r'test loss +([\d.]+)', out)[-1])
  # Its losses are printed to 2 decimals: the perplexities it prints are exact.
  test_ppl = float(re.findall(r'test ppl +([\d.]+)', out)[-1])
  val_ppls = [float(p) for p in re.findall(r'valid ppl +([\d.]+)', out)]
  device = re.findall(r'Using device: *(\S+)', out)
  return _line('pytorch word_language_model', wall, per_epoch * len(epochs),
               sum(t for t, _ in epochs), min(val_ppls), test_ppl,
               device=device[0] if device else 'unknown', epochs=len(epochs), test_loss=test_loss,
               peer_command=' '.join(cmd[1:]))


def run_seqmodels(corpus: str, args, workdir: str) -> dict:
  """launch.py with experiments/configs/word_lm.py set to the example's recipe, as its own
  process."""
  flags = {'data.path': os.path.join(corpus, '{split}.txt'), 'data.min_count': 1,
           'data.seq_len': BPTT, 'model.name': args.model.lower(), 'model.width': args.size,
           'model.embed': args.size, 'model.layers': 2, 'model.dropout': args.dropout,
           'optim.name': 'sgd', 'optim.lr': LR, 'optim.clip_norm': CLIP, 'optim.warmup_steps': 0,
           'optim.min_lr_ratio': 1.0, 'optim.plateau_decay': 0.25, 'optim.weight_decay': 0.0,
           'train.batch_size': BATCH, 'train.num_epochs': args.epochs,
           'train.eval_batch_size': EVAL_BATCH, 'train.carry_state': True, 'train.keep_best': True,
           'train.test_eval': True,
           # 0: once an epoch
           'train.eval_every': 0, 'train.checkpoint_every': 0, 'train.log_every': 100,
           'model.tie_embeddings': args.tied}
  cmd = [sys.executable, os.path.join(ROOT, 'launch.py'),
         f'--config={ROOT}/experiments/configs/word_lm.py', f'--workdir={workdir}',
         *(f'--config.{k}={v}' for k, v in flags.items())]
  t0 = time.time()
  result = subprocess.run(cmd, capture_output=True, text=True)
  wall = time.time() - t0
  if result.returncode:
    sys.exit(f'error: seqmodels failed: {result.stderr.strip().splitlines()[-1:]}')
  with open(os.path.join(workdir, 'summary.json')) as f:
    s = json.load(f)
  return _line('seqmodels', wall, s['num_steps'], s['train_seconds'], math.exp(s['best_eval_loss']),
               s['test']['perplexity'], device=s['platform'], epochs=args.epochs,
               test_loss=round(s['test']['loss'], 4),
               seqmodels_command=' '.join(cmd[1:]).replace(workdir, 'WORKDIR'))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--data', required=True,
                 help="a text file, or one per split with '{split}' in the path")
  p.add_argument('--peer', default='', help='pytorch/examples word_language_model directory '
                 '(main.py, model.py, data.py); without it, seqmodels runs alone')
  p.add_argument('--epochs', type=int, default=6)
  p.add_argument('--model', default='LSTM', choices=['LSTM', 'GRU'])
  p.add_argument('--size', type=int, default=200)
  p.add_argument('--dropout', type=float, default=0.2)
  p.add_argument('--tied', action='store_true',
                 help='tie the output layer to the embedding (both sides)')
  p.add_argument('--only', default='', choices=['', 'peer', 'seqmodels'])
  args = p.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, 'corpus')
    os.makedirs(corpus)
    counts = split_corpus(os.path.expanduser(args.data), corpus)
    args.train_tokens = counts['train']
    common = {'vocab': counts['vocab'], 'train_tokens': counts['train']}
    if args.peer and args.only != 'seqmodels':
      print(json.dumps({**run_peer(args.peer, corpus, args), **common}), flush=True)
    if args.only != 'peer':
      print(json.dumps({**run_seqmodels(corpus, args, os.path.join(tmp, 'run')), **common}),
            flush=True)


if __name__ == '__main__':
  main()
