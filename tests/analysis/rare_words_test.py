"""rare_words: perplexity per group of targets, checked against the run's own evaluation and a
direct count of the groups."""

import collections
import json

import numpy as np

from experiments.configs import word_lm
from seqmodels import validation
from seqmodels.analysis import rare_words
from seqmodels.data import registry as datasets
from seqmodels.report import write_report
from seqmodels.train import count, loop


def test_groups_partition_the_targets_and_all_is_the_runs_perplexity(tmp_path):
  rng = np.random.default_rng(0)
  vocab = [f'w{i}' for i in range(150)]
  weights = 1 / np.arange(1, 151)  # Zipf: a few frequent words, many rare ones
  lines = [' '.join(rng.choice(vocab, 10, p=weights / weights.sum())) for _ in range(400)]
  (tmp_path / 'text.txt').write_text('\n'.join(lines) + '\n')
  c = word_lm.get_config('small')
  c.data.path, c.data.data_dir = str(tmp_path / 'text.txt'), str(tmp_path / 'tfds')
  c.data.seq_len, c.data.min_count = 16, 2
  c.model.name, c.model.order = 'ngram', 3
  validation.validate(c)
  summary = loop.train_and_evaluate(c, str(tmp_path / 'ngram'))
  rare_words.main([f'--workdir={tmp_path / "ngram"}', '--rare=5'])
  result = json.loads((tmp_path / 'ngram' / 'rare_words.json').read_text())
  np.testing.assert_allclose(result['all']['perplexity'], summary['eval']['perplexity'], rtol=1e-9)
  data = datasets.load(c.data)
  train = count.training_tokens(data, c.data)
  counts = np.bincount(train, minlength=data.vocab_size)
  targets = np.concatenate([b['targets'][b['weights'] > 0]
                            for b in data.eval_batches(batch_size=32)])
  unk = (targets == 0).sum()
  assert result['rare']['tokens'] + result['frequent']['tokens'] + unk == result['all']['tokens']
  assert result['rare']['tokens'] == ((counts[targets] <= 5) & (targets != 0)).sum() > 0
  bigrams = collections.Counter(zip(train[:-1].tolist(), train[1:].tolist()))
  unseen = sum((int(b['inputs'][r, t]), int(b['targets'][r, t])) not in bigrams
               for b in data.eval_batches(batch_size=32)
               for r, t in zip(*np.nonzero(b['weights'] > 0)))
  assert result['unseen_bigram']['tokens'] == unseen > 0
  assert result['unseen_bigram']['perplexity'] > result['all']['perplexity']
  report = write_report([str(tmp_path / 'ngram')], str(tmp_path / 'report'))['markdown']
  report = open(report).read()
  assert '## Perplexity by target' in report and f'({result["unseen_bigram"]["tokens"]})' in report
