"""Tests for seqmodels/models/transformer.py: padding, causality, KV-cache decoding equals teacher
forcing, and a training run through the seq2seq objective; embeddings are shared for one vocabulary
only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.translate import get_config
from seqmodels import errors
from seqmodels import decoding, validation
from seqmodels.data import core, translation
from seqmodels.models import registry
from seqmodels.models.transformer import Transformer, TransformerConfig, step_function

V, L = 13, 8


def _params(model, *args, seed=0):
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *args))
  leaves, tree = jax.tree.flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(
      tree, [jnp.asarray(rng.normal(size=l.shape) * 0.3, jnp.float32) for l in leaves])


SRC = jnp.array([[5, 6, 7, 0, 0], [4, 9, 4, 8, 4]])
TGT = jnp.array([[1, 5, 6, 7, 0, 0, 0, 0], [1, 4, 4, 4, 4, 4, 2, 0]])


def test_decoding_with_kv_cache_equals_teacher_forced_logits(pre_ln=False, share=False):
  model = Transformer(TransformerConfig(V=V, L=L, V_src=V if share else 11, D=16, N=2, H=2, F=32,
                                        pre_ln=pre_ln, share_embeddings=share))
  params = _params(model, SRC, TGT)['params']
  assert ('src_embed' in params) != share
  full_BxTxV = jax.jit(model.apply)({'params': params}, SRC, TGT)

  cache = jax.jit(lambda p, src: step_function(model, p, src)[1])(params, SRC)
  # One compile, run L times (the unused encoder pass is dropped by XLA).
  step = jax.jit(lambda p, tok, cache, t: step_function(model, p, SRC)[0](tok, cache, t))
  outs = []
  for t in range(L):
    logits_BxV, cache = step(params, TGT[:, t], cache, t)
    outs.append(logits_BxV)
  np.testing.assert_allclose(jnp.stack(outs, 1), full_BxTxV, atol=1e-4)


def test_source_padding_and_future_targets_do_not_change_outputs():
  model = Transformer(TransformerConfig(V=V, L=L, D=16, N=1, H=2, F=32, pre_ln=True))
  params = _params(model, SRC, TGT)
  apply = jax.jit(model.apply)
  out = apply(params, SRC, TGT)
  longer_src = jnp.concatenate([SRC, jnp.zeros((2, 2), jnp.int32)], axis=1)  # more padding
  np.testing.assert_allclose(apply(params, longer_src, TGT), out, atol=1e-5)
  np.testing.assert_allclose(apply(params, SRC, TGT.at[:, 4:].set(3))[:, :4], out[:, :4], atol=1e-5)


def test_greedy_decoding_runs_through_decoding_module():
  model = Transformer(TransformerConfig(V=V, L=L, D=16, N=1, H=2, F=32))
  params = _params(model, SRC, TGT)['params']

  @jax.jit
  def greedy(params, src):
    step, cache = step_function(model, params, src)
    return decoding.greedy(step, cache, jnp.ones((src.shape[0],), jnp.int32), L, eos_id=2)

  out = greedy(params, SRC)
  assert out.shape == (2, L) and out.dtype == jnp.int32


@pytest.mark.parametrize('src_tok, tgt_tok, shared', [
    # one size, different pieces
    (translation.CharLevel('abc'), translation.CharLevel('xyz'), False),
    (translation.CharLevel('abc'), translation.CharLevel('abc'), True),  # the same pieces
    (translation.CharLevel(None), translation.CharLevel(None), True),  # bytes on both sides
])
def test_embeddings_are_shared_only_when_source_and_target_are_one_vocabulary(
    src_tok, tgt_tok, shared):
  meta = {'src_vocab_size': src_tok.vocab_size, 'src_tokenizer': src_tok, 'tgt_tokenizer': tgt_tok}
  data = core.Data('seq2seq', tgt_tok.vocab_size, 4, meta=meta)
  c = get_config('cpu,transformer')
  c.model.width, c.model.layers, c.model.heads = 8, 1, 2
  model = registry.build(c.model, data, jnp.float32)
  src = jnp.ones((1, 4), jnp.int32)
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), src, src))['params']
  assert ('src_embed' not in params) == shared


def test_share_embeddings_with_two_vocabularies_is_a_config_error():
  c = get_config('cpu,transformer')
  c.data.shared_vocab = False
  with pytest.raises(errors.ConfigError,
                     match='model.share_embeddings=True .*data.shared_vocab=False'):
    validation.validate(c)
  c.model.share_embeddings = False
  validation.validate(c)
