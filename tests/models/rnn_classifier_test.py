"""Tests for seqmodels/models/rnn_classifier.py: many-to-one over the real tokens only."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from seqmodels.models.rnn_classifier import RNNClassifier, RNNClassifierConfig


def test_classifier_reads_the_state_after_the_last_real_token():
  model = RNNClassifier(RNNClassifierConfig(V=12, C=3, E=8, H=8, N=2))
  tokens = jnp.array([[1, 5, 6, 2, 0, 0], [1, 7, 7, 7, 8, 2]])
  params = model.init(jax.random.key(0), tokens)
  apply = jax.jit(model.apply)
  logits = apply(params, tokens)
  chex.assert_shape(logits, (2, 3))
  np.testing.assert_allclose(apply(params, tokens[:1, :4]), logits[:1], atol=1e-5)
  assert not np.allclose(apply(params, tokens.at[0, 2].set(9))[0], logits[0])
