"""word2vec with negative sampling (Mikolov et al. 2013): skip-gram and CBOW.

Two tables: `embed` (the input vectors, the word vectors kept) and `output` (the context vectors,
gensim's syn1neg). A (input, output) pair scores s = u_out . v_in; negative sampling's loss is
-log sigma(s_true) - sum_k log sigma(-s_noise_k). Skip-gram predicts the center from each context
word (gensim's pairing: the context word's input vector, the center's output vector); CBOW predicts
the center from the mean of its context words' input vectors. The K noise words of a row are shared
by its pairs (seqmodels/data/word2vec.py), so a window's scores are one [2W, D] x [D, K] product.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.errors import check
from seqmodels.models import entry


@dataclasses.dataclass(frozen=True)
class Word2VecConfig:
  V: int                  # vocabulary size
  D: int = 100            # vector width
  cbow: bool = False      # CBOW (True) or skip-gram (False)
  dtype: Any = jnp.float32


class Scores(NamedTuple):
  """The scores of P pairs per row and their K noise words, and which of them count."""
  true_BxP: jax.Array
  noise_BxPxK: jax.Array
  weights_BxP: jax.Array        # 1 for a real pair
  noise_weights_BxPxK: jax.Array  # 0 where the noise word is the true one (gensim skips it)


def _uniform_init(key, shape, dtype=jnp.float32):
  """gensim's input vectors: uniform in [-1/D, 1/D)."""
  return jax.random.uniform(key, shape, dtype, -1.0, 1.0) / shape[-1]


class Word2Vec(nn.Module):
  """(center_B, context_BxC, negatives_BxK, weights_BxC) -> Scores (float32 or wider)."""
  cfg: Word2VecConfig

  @nn.compact
  def __call__(self, center_B, context_BxC, negatives_BxK, weights_BxC, *, train: bool = False):
    del train
    c = self.cfg
    embed = nn.Embed(c.V, c.D, embedding_init=_uniform_init, name='embed')
    output = nn.Embed(c.V, c.D, embedding_init=nn.initializers.zeros, name='output')
    v_BxCxD = embed(context_BxC).astype(c.dtype)
    if c.cbow:  # one pair per row: the mean of the context's vectors -> the center
      w_BxC = weights_BxC.astype(c.dtype)
      n_B = jnp.maximum(w_BxC.sum(-1), 1.0)
      h_BxPxD = (jnp.einsum('bcd,bc->bd', v_BxCxD, w_BxC) / n_B[:, None])[:, None]
      weights_BxP = (weights_BxC.sum(-1) > 0).astype(jnp.float32)[:, None]
    else:
      h_BxPxD, weights_BxP = v_BxCxD, weights_BxC
    u_BxD = output(center_B).astype(c.dtype)
    u_BxKxD = output(negatives_BxK).astype(c.dtype)
    f = jnp.promote_types(c.dtype, jnp.float32)  # scores in float32 at least
    true_BxP = jnp.einsum('bpd,bd->bp', h_BxPxD, u_BxD).astype(f)
    noise_BxPxK = jnp.einsum('bpd,bkd->bpk', h_BxPxD, u_BxKxD).astype(f)
    noise_w_BxPxK = jnp.broadcast_to((negatives_BxK != center_B[:, None])[:, None],
                                     noise_BxPxK.shape).astype(f)
    return Scores(true_BxP, noise_BxPxK, weights_BxP.astype(f), noise_w_BxPxK)


def _build(cbow: bool):
  def build(m, data, dtype: Any) -> nn.Module:
    return Word2Vec(Word2VecConfig(V=data.vocab_size, D=m.embed or m.width, cbow=cbow,
                                   dtype=dtype))
  return build


def _check(config) -> None:
  check(config.data.name == 'word2vec', f'config.model.name={config.model.name!r} trains on '
        f"word2vec pairs: set config.data.name='word2vec' (and data.path to a text file)")


ENTRIES = {
    name: entry.Entry(_build(name == 'cbow'), kinds=('word2vec',), check=_check,
                      after_training=('word_vectors',), embedding=('embed',))
    for name in ('skipgram', 'cbow')
}
