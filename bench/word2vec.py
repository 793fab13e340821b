"""seqmodels' word2vec against gensim's Word2Vec: same corpus, same hyperparameters, several seeds.

  pip install gensim        # the peer; its package ships the corpus and the test sets used here
  python bench/word2vec.py [--corpus=FILE] [--seeds=3] [--epochs=5] [--arch=skipgram|cbow]

The corpus defaults to gensim's test corpus lee_background.cor, lower-cased and cut into words by
gensim.utils.simple_preprocess, one document a line, written to a temporary file that both sides
read (gensim through LineSentence, seqmodels as data.name='word2vec'): so both see the same words
and the same sentences. Hyperparameters are gensim's defaults unless flagged: 100 dimensions, window
5, 5 negatives, sample 1e-3, min_count 5, alpha 0.025 -> 1e-4 linearly, and --epochs. gensim trains
with its default 3 worker threads; seqmodels with experiments/configs/word2vec.py (SGD on batches of
--batch centers, lr = 0.025 * batch * --pairs_per_center).

Both sides' vectors are scored by seqmodels.evals.word_vectors on gensim's questions-words.txt
(3CosAdd accuracy over the questions of known words, restrict 300k) and wordsim353.tsv (Spearman).
words/s is training words (raw, before subsampling) per second of training: gensim's
epochs * corpus words / its train() time; seqmodels' steady-state tokens_per_sec (centers per
second, compilation out). Prints one JSON line per (implementation, seed) and one summary line per
implementation (mean and standard deviation over seeds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _gensim_data(name: str) -> str:
  import gensim
  return os.path.join(os.path.dirname(gensim.__file__), 'test', 'test_data', name)


def _corpus(path: str, tmp: str) -> tuple[str, str, int]:
  """(the corpus file, seqmodels' '{split}' path, its words): seqmodels trains on the same file
  (train) and reports a loss on its last tenth of lines (validation), unused by gensim."""
  from gensim.utils import simple_preprocess
  with open(path, encoding='utf-8') as f:
    lines = [' '.join(t) for t in map(simple_preprocess, f) if t]
  out = os.path.join(tmp, 'corpus.train.txt')
  for name, part in (('train', lines), ('valid', lines[-max(1, len(lines) // 10):])):
    with open(os.path.join(tmp, f'corpus.{name}.txt'), 'w', encoding='utf-8') as g:
      g.write('\n'.join(part) + '\n')
  return out, os.path.join(tmp, 'corpus.{split}.txt'), sum(len(x.split()) for x in lines)


def _scores(vectors_path: str) -> dict:
  from seqmodels.evals import word_vectors
  vecs = word_vectors.Vectors.load(vectors_path)
  a = word_vectors.analogies(vecs, _gensim_data('questions-words.txt'))
  s = word_vectors.similarity(vecs, _gensim_data('wordsim353.tsv'))
  return {'analogy_accuracy': a['accuracy'], 'analogy_questions': a['questions'],
          'wordsim_spearman': s['spearman'], 'wordsim_pairs': s['pairs'], 'words': len(vecs.words)}


def run_gensim(corpus: str, words: int, seed: int, args, tmp: str) -> dict:
  from gensim.models import Word2Vec
  from gensim.models.word2vec import LineSentence
  model = Word2Vec(vector_size=args.dim, window=args.window, min_count=args.min_count,
                   negative=args.negatives, sample=args.sample, sg=int(args.arch == 'skipgram'),
                   alpha=0.025, min_alpha=1e-4, seed=seed, epochs=args.epochs)
  model.build_vocab(LineSentence(corpus))
  start = time.perf_counter()
  model.train(LineSentence(corpus), total_examples=model.corpus_count, epochs=args.epochs)
  seconds = time.perf_counter() - start
  path = os.path.join(tmp, f'gensim_{seed}.txt')
  model.wv.save_word2vec_format(path)
  return {'words_per_s': words * args.epochs / seconds, 'train_s': seconds,
          'workers': model.workers, **_scores(path)}


def run_seqmodels(corpus: str, seed: int, args, tmp: str) -> dict:
  from experiments.configs import word2vec as config_file
  from seqmodels import validation
  from seqmodels.train import loop
  c = config_file.get_config('full')
  c.seed = seed
  c.model.name, c.model.width = args.arch, args.dim
  c.data.path, c.data.min_count, c.data.window = corpus, args.min_count, args.window
  c.data.negatives, c.data.subsample = args.negatives, args.sample
  c.train.num_epochs, c.train.batch_size = float(args.epochs), args.batch
  c.optim.lr = 0.025 * args.batch * args.pairs_per_center
  c.train.checkpoint_every, c.train.eval_every = 1_000_000, 1_000_000
  validation.validate(c)
  workdir = os.path.join(tmp, f'seqmodels_{seed}')
  summary = loop.train_and_evaluate(c, workdir)
  return {'words_per_s': summary['tokens_per_sec'], 'train_s': summary['train_seconds'],
          'steps': summary['step'], 'eval_loss': summary['eval']['loss'],
          **_scores(workdir)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--corpus', default='')
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--epochs', type=int, default=5)
  parser.add_argument('--arch', default='skipgram', choices=['skipgram', 'cbow'])
  parser.add_argument('--dim', type=int, default=100)
  parser.add_argument('--window', type=int, default=5)
  parser.add_argument('--negatives', type=int, default=5)
  parser.add_argument('--sample', type=float, default=1e-3)
  parser.add_argument('--min_count', type=int, default=5)
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--pairs_per_center', type=float, default=5.0)
  parser.add_argument('--impls', default='gensim,seqmodels')
  args = parser.parse_args()
  import jax
  commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
  common = {'arch': args.arch, 'epochs': args.epochs, 'device': str(jax.devices()[0].device_kind),
            'host': platform.processor() or platform.machine(), 'cpus': os.cpu_count(),
            'commit': commit, 'command': ' '.join(['python', *sys.argv]),
            'date': datetime.date.today().isoformat()}
  with tempfile.TemporaryDirectory() as tmp:
    corpus, split_path, words = _corpus(args.corpus or _gensim_data('lee_background.cor'), tmp)
    results: dict[str, list[dict]] = {}
    for impl in args.impls.split(','):
      for seed in range(args.seeds):
        r = (run_gensim(corpus, words, seed, args, tmp) if impl == 'gensim'
             else run_seqmodels(split_path, seed, args, tmp))
        results.setdefault(impl, []).append(r)
        print(json.dumps({'impl': impl, 'seed': seed, 'corpus_words': words, **r, **common}),
              flush=True)
    for impl, runs in results.items():
      stats = {}
      for key in ('analogy_accuracy', 'wordsim_spearman', 'words_per_s'):
        values = [r[key] for r in runs]
        stats[key] = statistics.mean(values)
        stats[key + '_std'] = statistics.stdev(values) if len(values) > 1 else 0.0
      print(json.dumps({'impl': impl, 'summary': True, 'seeds': len(runs), **stats, **common}),
            flush=True)


if __name__ == '__main__':
  main()
