"""RNN encoder-decoders: the parallel teacher-forced pass equals step-by-step decoding; source
padding is inert; greedy decoding of a model equals beam search with one beam; a tiny GRU +
attention learns the toy translation."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs.translate import get_config
from seqmodels import errors
from seqmodels import decoding, validation
from seqmodels.models.seq2seq import Seq2Seq, Seq2SeqConfig, step_function
from seqmodels.train import loop

V_SRC, V_TGT, B, S, T = 11, 13, 3, 7, 5
VARIANTS = {  # name -> config overrides
    'lstm': dict(cell='lstm'),
    'gru_context_bidirectional': dict(cell='gru', feed_context=True, bidirectional=True),
    'gru_additive_bidirectional': dict(cell='gru', attention='additive', bidirectional=True, N=2),
    'rnn_general': dict(cell='rnn', attention='general', N=2),
}


def _model(**kw):
  cfg = Seq2SeqConfig(V_src=V_SRC, V_tgt=V_TGT, E=8, H=16, **{'N': 1, **kw})
  rng = np.random.default_rng(0)
  src = rng.integers(1, V_SRC, (B, S)).astype(np.int32)
  src[1, 4:] = 0  # PAD ends the second sentence
  src[2, 2:] = 0
  tgt_in = rng.integers(1, V_TGT, (B, T)).astype(np.int32)
  model = Seq2Seq(cfg)
  # NumPy parameters of the right shapes: no initializer compiles (the tests check functions, not
  # inits).
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(1), src, tgt_in)['params'])
  params = jax.tree.map(lambda x: jnp.asarray(rng.normal(0, 0.5, x.shape), jnp.float32), shapes)
  return model, params, jnp.asarray(src), jnp.asarray(tgt_in)


@pytest.mark.parametrize('variant', VARIANTS)
def test_teacher_forced_loss_equals_sum_of_step_losses(variant):
  model, params, src, tgt_in = _model(**VARIANTS[variant])
  tgt_out = jnp.roll(tgt_in, -1, axis=1)

  @jax.jit
  def losses(params):
    logits, weights = model.apply({'params': params}, src, tgt_in)
    step_fn, cache = step_function(model, params, src)
    per_step = []
    for t in range(T):  # decoding one token at a time, always fed the true previous token
      logits_t, cache = step_fn(tgt_in[:, t], cache, jnp.int32(t))
      per_step.append(
          optax.softmax_cross_entropy_with_integer_labels(logits_t, tgt_out[:, t]).sum())
    return (optax.softmax_cross_entropy_with_integer_labels(logits, tgt_out).sum(), sum(per_step),
            logits, weights)

  total, step_total, logits, weights = losses(params)
  chex.assert_shape(logits, (B, T, V_TGT))
  np.testing.assert_allclose(total, step_total, rtol=1e-5)
  if weights is not None:
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('variant', ['gru_additive_bidirectional', 'rnn_general'])
def test_padding_the_source_leaves_outputs_unchanged(variant):
  model, params, src, tgt_in = _model(**VARIANTS[variant])
  apply = jax.jit(lambda src: model.apply({'params': params}, src, tgt_in))
  logits, weights = apply(src)
  logits_p, weights_p = apply(jnp.pad(src, ((0, 0), (0, 4))))
  np.testing.assert_allclose(logits_p, logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(weights_p[..., :S], weights, rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(weights_p)[:, :, S:] == 0) and np.all(np.asarray(weights)[2, :, 2:] == 0)


def test_scheduled_sampling_feeds_model_tokens_only_below_ratio_one():
  model, params, src, tgt_in = _model(cell='gru', attention='additive', teacher_forcing=1.0)
  rngs = {'sample': jax.random.PRNGKey(3), 'dropout': jax.random.PRNGKey(4)}
  sampled = Seq2Seq(Seq2SeqConfig(**{**model.cfg.__dict__, 'teacher_forcing': 0.0}))
  run = jax.jit(lambda: (model.apply({'params': params}, src, tgt_in)[0],
                         model.apply({'params': params}, src, tgt_in, train=True, rngs=rngs)[0],
                         sampled.apply({'params': params}, src, tgt_in, train=True, rngs=rngs)[0]))
  forced, forced_train, out = run()
  np.testing.assert_allclose(forced_train, forced, rtol=1e-6)
  np.testing.assert_allclose(out[:, 0], forced[:, 0], rtol=1e-6)  # step 0 always sees BOS
  assert not np.allclose(out[:, 1:], forced[:, 1:])


def test_greedy_decoding_of_a_model_equals_beam_search_with_one_beam():
  model, params, src, _ = _model(cell='lstm', attention='general')
  first = jnp.ones((B,), jnp.int32)
  run = jax.jit(lambda p, s: (decoding.greedy(*step_function(model, p, s), first, 6, eos_id=2),
                              decoding.beam_search(*step_function(model, p, s), first, 6, 1, 0.0,
                                                   eos_id=2)[0]))
  greedy, beam = run(params, src)
  np.testing.assert_array_equal(greedy, beam[:, 0])


def test_gru_with_attention_learns_toy_translation_end_to_end(tmp_path):
  c = get_config('cpu,gru_additive')
  c.data.data_dir = str(tmp_path / 'tfds')
  c.data.num_symbols, c.data.min_len, c.data.max_len = 12, 2, 6
  c.data.num_train, c.data.num_validation, c.data.num_test = 1000, 64, 0
  c.data.vocab_size, c.data.seq_len = 64, 12
  c.model.width, c.model.embed = 32, 16
  c.optim.warmup_steps = 10
  c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = (
      150, 32, 150, 150)
  c.decode.beam_size, c.decode.attention_maps = 2, 2
  c.decode.bleu_tokenize = 'intl'  # as 13a on these ASCII words; the signature must name it
  validation.validate(c)
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  ev = summary['eval']
  chance = np.log(summary['state'].params['head']['bias'].shape[0])
  assert ev['loss'] < 0.5 * chance, ev
  assert ev['bleu_greedy'] > 10 and ev['bleu_beam'] > 10, ev
  with open(tmp_path / 'run' / 'translation_eval.json') as f:
    report = json.load(f)
  assert (report['greedy']['bleu_signature'].startswith('nrefs:1') and
          report['decoding']['beam_size'] == 2)
  assert ('tok:intl' in report['beam']['bleu_signature'] and
          report['decoding']['bleu_tokenize'] == 'intl')
  maps = np.load(tmp_path / 'run' / 'attention_maps.npz')
  assert (int(maps['count']) == 2 and
          maps['weights_0'].shape == (len(maps['tgt_0']), len(maps['src_0'])))
  assert os.path.exists(tmp_path / 'run' / 'bleu_by_length.json')
  print('tiny end-to-end:', {k: round(v, 3) for k, v in ev.items()}, 'chance', round(chance, 3))


def test_bleu_tokenize_scores_perfect_unsegmented_chinese_100_and_names_its_tokenizer():
  from seqmodels.data.translation import bleu_by_length, corpus_scores
  refs = ['我爱你们大家。', '今天天气很好，我们去公园吧。']
  # 13a: each sentence is one word, so no 2-gram matches
  assert corpus_scores(refs, refs)['bleu'] == 0
  scores = corpus_scores(refs, refs, 'zh')
  assert scores['bleu'] == pytest.approx(100) and 'tok:zh' in scores['bleu_signature']
  assert [b['bleu'] for b in bleu_by_length([3, 9], refs, refs, 'zh')] == pytest.approx([100, 100])


@pytest.mark.parametrize(
    'name, message', [('13b', 'is not a sacrebleu tokenizer: choose one of .*zh'), ('zh', None)])
def test_bleu_tokenize_must_be_a_sacrebleu_tokenizer(name, message):
  c = get_config('cpu')
  c.decode.bleu_tokenize = name
  if message is None:
    validation.validate(c)
  else:
    with pytest.raises(errors.ConfigError, match=f"config.decode.bleu_tokenize='{name}' {message}"):
      validation.validate(c)
