"""word2vec: the negative-sampling loss and its gradients against float64 numpy, the sampling
recipe against its formulas, and one tiny run through the engine."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import word2vec as word2vec_config
from experiments.configs import word_lm
from seqmodels import errors, validation
from seqmodels.data import registry as datasets
from seqmodels.data import vectors
from seqmodels.data import word2vec as w2v_data
from seqmodels.models import word2vec
from seqmodels.train import loop, pretrained, steps


def _corpus(path, lines=150, seed=0):
  """Two topics whose words never share a line, plus frequent glue words."""
  rng = np.random.default_rng(seed)
  topics = [[f'a{i}' for i in range(8)], [f'b{i}' for i in range(8)]]
  text = []
  for n in range(lines):
    words = rng.choice(topics[n % 2], 12).tolist()
    for at in rng.integers(0, 12, 3):
      words.insert(int(at), 'the')
    text.append(' '.join(words))
  path.write_text('\n'.join(text) + '\n')
  return str(path)


@pytest.mark.parametrize('cbow', [False, True], ids=['skipgram', 'cbow'])
def test_negative_sampling_loss_and_gradients_match_float64_numpy(cbow):
  V, D, B, C, K = 7, 3, 2, 4, 2
  rng = np.random.default_rng(0)
  center = np.array([2, 5])
  context = rng.integers(2, V, (B, C))
  negatives = rng.integers(2, V, (B, K))
  negatives[0, 0] = center[0]  # a noise word that is the true one: gensim skips it
  weights = np.array([[1, 1, 0, 1], [0, 1, 1, 1]], np.float64)
  with jax.enable_x64(True):
    model = word2vec.Word2Vec(word2vec.Word2VecConfig(V, D, cbow=cbow, dtype=jnp.float64))
    params = {'embed': {'embedding': rng.normal(size=(V, D))},
              'output': {'embedding': rng.normal(size=(V, D))}}
    batch = {'center': center, 'context': context, 'negatives': negatives, 'weights': weights}

    def loss_fn(p):
      return steps.WORD2VEC.loss(model.apply({'params': p}, *steps.WORD2VEC.inputs(batch)),
                                 batch)[0]

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
  E, O = params['embed']['embedding'], params['output']['embedding']
  sig = lambda x: 1 / (1 + np.exp(-x))
  total, pairs = 0.0, 0
  gE, gO = np.zeros_like(E), np.zeros_like(O)
  for b in range(B):
    real = [c for c in range(C) if weights[b, c]]
    # skip-gram: each real context word is a pair; CBOW: their mean is one; the row's noise words
    # serve each
    inputs = [(E[context[b, c]], [(context[b, c], 1.0)], negatives[b]) for c in real]
    if cbow:
      inputs = [(np.mean([E[context[b, c]] for c in real], 0),
                 [(context[b, c], 1 / len(real)) for c in real], negatives[b])]
    for h, sources, noise in inputs:
      pairs += 1
      s = O[center[b]] @ h
      total += -np.log(sig(s))
      dh = (sig(s) - 1) * O[center[b]]
      gO[center[b]] += (sig(s) - 1) * h
      for k in noise:
        if k == center[b]:
          continue
        total += -np.log(sig(-O[k] @ h))
        dh += sig(O[k] @ h) * O[k]
        gO[k] += sig(O[k] @ h) * h
      for word, share in sources:
        gE[word] += share * dh
  np.testing.assert_allclose(loss, total / pairs, rtol=1e-12)
  np.testing.assert_allclose(grads['embed']['embedding'], gE / pairs, rtol=1e-10, atol=1e-14)
  np.testing.assert_allclose(grads['output']['embedding'], gO / pairs, rtol=1e-10, atol=1e-14)


def test_noise_and_subsampling_follow_their_formulas():
  counts = np.array([0, 0, 1000, 100, 10, 1])
  p = counts**0.75 / (counts**0.75).sum()
  np.testing.assert_allclose(w2v_data.noise_distribution(counts), p)
  t = 1e-2 * counts.sum()
  expected = np.minimum(1, (np.sqrt(counts[2:] / t) + 1) * t / counts[2:])
  np.testing.assert_allclose(w2v_data.keep_probability(counts, 1e-2)[2:], expected)
  assert expected[0] < 0.5 and expected[-1] == 1  # the frequent word is thinned, the rare kept
  # the pipeline's draws: keep rates per word, noise frequencies and window reaches
  words_N = np.repeat(np.arange(2, 6), [4000, 4000, 4000, 4000])
  rng = np.random.default_rng(0)
  words_N = rng.permutation(words_N)
  keep = w2v_data.keep_probability(counts, 1e-2)
  pairs = w2v_data.Pairs(words_N, np.zeros_like(words_N), keep,
                         w2v_data.noise_distribution(counts), window=4, negatives=5)
  positions = np.arange(len(words_N))
  batch = pairs.rows(positions, positions, seed=3, epochs_b=np.zeros(len(words_N), int),
                     train=True)
  kept = batch['weights'].sum(1) > 0
  for w in range(2, 6):
    rate = kept[words_N == w].mean()
    assert abs(rate - keep[w]) < 4 * np.sqrt(keep[w] * (1 - keep[w]) / 4000) + 1e-9, (w, rate)
  noise = np.bincount(batch['negatives'].ravel(), minlength=6) / batch['negatives'].size
  np.testing.assert_allclose(noise, p, atol=0.01)
  # the reach of a kept center in the middle: 1..W each side, uniform (W = 4: 2 to 8 slots)
  middle = kept & (positions > 100) & (positions < len(words_N) - 100)
  slots = batch['weights'][middle].sum(1)
  np.testing.assert_allclose(np.bincount(slots.astype(int), minlength=9)[2::2] / middle.sum(),
                             0.25, atol=0.03)
  # another epoch thins other occurrences
  again = pairs.rows(positions, positions, seed=3, epochs_b=np.ones(len(words_N), int), train=True)
  assert not np.array_equal(again['weights'].sum(1) > 0, kept)


def _config(tmp_path, steps_: int):
  c = word2vec_config.get_config('small')
  c.data.path, c.data.data_dir = _corpus(tmp_path / 'corpus.txt'), str(tmp_path / 'tfds')
  c.data.min_count, c.data.window, c.data.subsample = 2, 3, 0.0
  c.model.width = 8
  c.train.num_epochs, c.train.num_steps, c.train.batch_size = 0.0, steps_, 64
  c.optim.lr = 0.025 * 64 * 4
  c.train.eval_every, c.train.checkpoint_every, c.train.log_every = steps_, steps_, 10
  c.train.eval_batches = 4
  return c


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('w2v')
  c = _config(tmp_path, 60)
  # a start from GloVe vectors of 5 of its words (and one it lacks): the engine's path for any model
  rows = np.random.default_rng(1).uniform(-0.1, 0.1, (6, 8))
  (tmp_path / 'glove.txt').write_text(''.join(
      f'{w} ' + ' '.join(map(str, r)) + '\n'
      for w, r in zip(['the', 'a0', 'a1', 'b0', 'zz', 'b1'], rows)))
  c.model.pretrained_vectors = str(tmp_path / 'glove.txt')
  validation.validate(c)
  return tmp_path, c, loop.train_and_evaluate(c, str(tmp_path / 'run'))


def test_a_run_learns_topics_and_writes_its_vectors(run):
  tmp_path, c, summary = run
  # at init the output vectors are 0: every score is 0, each of the 1 + K terms log 2
  assert summary['eval']['loss'] < 0.8 * (1 + c.data.negatives) * np.log(2)
  words, table = vectors.read(str(tmp_path / 'run'))
  assert words[0] == 'the' and sorted(words[1:]) == sorted(
      [f'a{i}' for i in range(8)] + [f'b{i}' for i in range(8)])
  np.testing.assert_array_equal(table, jax.device_get(
      summary['state'].params['embed']['embedding'])[2:])
  unit = table / np.linalg.norm(table, axis=1, keepdims=True)
  topic = np.array([w[0] for w in words[1:]])
  cos = unit[1:] @ unit[1:].T
  same = cos[topic[:, None] == topic[None, :]].mean()
  other = cos[topic[:, None] != topic[None, :]].mean()
  assert same > other + 0.3, (same, other)
  summary_file = json.loads((tmp_path / 'run' / 'summary.json').read_text())
  assert summary_file['eval']['vectors'] == 17


def test_batches_are_the_same_under_any_process_count_and_on_resume(run):
  tmp_path, c, _ = run
  data = datasets.load(c.data)
  assert data.kind == 'word2vec'
  one = next(data.train_batches(batch_size=8, start_step=5, seed=1))
  halves = [next(data.train_batches(batch_size=4, start_step=5, seed=1, process_index=p,
                                    process_count=2)) for p in (0, 1)]
  stream = data.train_batches(batch_size=8, start_step=0, seed=1)
  unbroken = [next(stream) for _ in range(6)][5]  # resuming at step 5 reads what step 5 read
  for k in one:
    np.testing.assert_array_equal(one[k], np.concatenate([h[k] for h in halves]))
    np.testing.assert_array_equal(one[k], unbroken[k])
  assert one['weights'].sum() > 0 and one['context'].shape == (8, 2 * c.data.window)


@pytest.mark.parametrize('overrides, message', [
    ({'data.window': 40}, 'longest training line has'),
    ({'data.min_count': 10_000}, 'config.data.min_count=10000 keeps no word'),
])
def test_a_corpus_too_small_for_the_window_or_min_count_is_refused(tmp_path, overrides, message):
  d = ml_collections.ConfigDict(dict(
      name='word2vec', path=_corpus(tmp_path / 'small.txt', lines=20), data_dir=str(tmp_path),
      min_count=1, window=3, negatives=2, subsample=0.0, ns_exponent=0.75, seq_len=1, stride=0,
      tokenizer='auto', vocab_size=8000, byte_level=False))
  for k, v in overrides.items():
    d[k.split('.')[1]] = v
  with pytest.raises(errors.DataError, match=message):
    datasets.prepare(d)
    datasets.load(d)


def _lm_config(tmp_path, corpus: str):
  c = word_lm.get_config('small')
  c.data.path, c.data.data_dir, c.data.min_count = corpus, str(tmp_path / 'tfds'), 2
  c.model.width, c.model.layers, c.model.embed = 8, 1, 8
  return c


def test_a_word2vec_run_is_a_source_of_vectors_for_a_word_lm(run):
  """Its vectors become the rows of an LM's embedding for its words (the engine calls this at a
  fresh start: the run above started from glove.txt that way)."""
  tmp_path, c, summary = run
  record = summary['pretrained_vectors']
  assert (record['found'], record['vocabulary'], record['coverage']) == (5, 18, 5 / 18)
  assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['pretrained_vectors'] == record
  lm = _lm_config(tmp_path, c.data.path)
  lm.model.pretrained_vectors = str(tmp_path / 'run')
  validation.validate(lm)
  validation.validate_devices(lm, 8, 1, 'cpu')
  lm_words = list(datasets.load(c.data).meta['words'])[::-1]  # any order of the LM's own
  params = {'embed': {'embedding': np.zeros((len(lm_words), 8), np.float32)}}
  new, record = pretrained.initialise(params, lm_words, lm.model.pretrained_vectors, lm.model)
  words, table = vectors.read(str(tmp_path / 'run'))
  for w, row in zip(words, table):
    np.testing.assert_array_equal(new['embed']['embedding'][lm_words.index(w)], row)
  assert (record['found'], record['vocabulary']) == (17, 18)  # all but '<eos>' ('<unk>' is none)


def test_words_the_file_lacks_keep_their_init_and_case_and_eos_match(tmp_path):
  path = str(tmp_path / 'glove.txt')
  (tmp_path / 'glove.txt').write_text('the 1 2\nparis 3 4\n</s> 5 6\n<unk> 7 8\n')
  params = {'embed': {'embedding': np.zeros((5, 2), np.float32) - 1}, 'rnn': {'w': np.ones(3)}}
  m = ml_collections.ConfigDict({'name': 'lstm', 'embed': 2, 'width': 4})
  new, record = pretrained.initialise(params, ['<unk>', '<eos>', 'the', 'Paris', 'rome'], path, m)
  np.testing.assert_array_equal(new['embed']['embedding'],
                                [[-1, -1], [5, 6], [1, 2], [3, 4], [-1, -1]])
  assert new['rnn'] is params['rnn']
  assert (record['found'], record['vocabulary'], record['lower_cased']) == (3, 4, 1)


@pytest.mark.parametrize('overrides, message', [
    ({'model.name': 'lstm', 'model.embed': 16}, 'holds 8-dimensional vectors, and the embedding of '
                          "model.name='lstm' is 16 wide"),
    ({'data.tokenizer': 'char'}, 'the tokens of config.data.name=\'text\' are characters'),
    ({'model.name': 'lstm_classifier', 'data.name': 'classify', 'data.tokenizer': 'auto'},
     'has no word embedding'),
    ({'model.pretrained_vectors': '/nonexistent/vectors.txt'}, 'is not a file'),
])
def test_pretrained_vectors_that_cannot_fit_are_refused_in_one_line(run, overrides, message):
  tmp_path, c, _ = run
  lm = _lm_config(tmp_path, c.data.path)
  lm.model.pretrained_vectors = str(tmp_path / 'run')
  for k, v in overrides.items():
    section, field = k.split('.')
    lm[section][field] = v
  with pytest.raises(errors.ConfigError, match=message) as e:
    validation.validate(lm)
    validation.validate_devices(lm, 1, 1, 'cpu')
  assert '\n' not in str(e.value)
