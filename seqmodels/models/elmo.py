"""ELMo (Peters et al. 2018, "Deep contextualized word representations"): a biLM of two independent
recurrent LMs whose per-token states, mixed by learned scalar weights, are features for a downstream
task.

The forward LM reads x_0..x_t and predicts x_{t+1}; the backward LM reads x_{T-1}..x_t and predicts
x_{t-1}. The two share the token embedding and the softmax (as in ELMo) and nothing else, so neither
ever sees the token it predicts. Layer j of token t's representation is [h_fwd_j(t); h_bwd_j(t)]
(layer 0: the embedding twice), and a task combines the N + 1 layers as gamma * sum_j softmax(s)_j
h_j (`ScalarMix`).

The biLM is the submodule `elmo` of both the pre-training model and the classifier, so
`train.init_from` carries it from a pre-training run to a classification run, and
`optim.freeze=elmo` trains only the mix and the head (feature extraction). Adapted to this codebase:
token embeddings instead of ELMo's character CNN, and no projection or residual connection between
layers (so the embedding is H wide, like every layer it is mixed with).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels import decoding
from seqmodels.layers.embeddings import OutputLayer
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.minrnn import MIN_GATES
from seqmodels.layers.recurrent import GATES
from seqmodels.models import entry

Array = jax.Array
PAD = 0  # of classification rows (seqmodels/data/bert.py)


@dataclasses.dataclass(frozen=True)
class ELMoConfig:
  V: int                 # vocabulary size
  cell: str = 'lstm'     # rnn | lstm | gru | mingru | minlstm, in both directions and in the
                         # classifier's head
  H: int = 256           # hidden units per layer and direction; also the embedding width
  N: int = 2             # layers per direction
  C: int = 2             # classes (ELMoClassifier)
  dropout: float = 0.0   # on the embedding, between layers, before the softmax and in the
                         # classifier's head
  forget_bias: float = 1.0
  unroll: int = 1        # lax.scan unroll factor (speed knob only)
  parallel_scan: bool | None = None  # mingru/minlstm: associative (True) or sequential (False)
                                     # scan; None: auto
  dtype: Any = jnp.float32
  # rnn/lstm/gru: scan | hoisted | cudnn (seqmodels.layers.recurrent.RECURRENCES)
  recurrence: str = 'scan'


class BiLMLogits(NamedTuple):
  """Float32 logits of the two LMs at every position t of the input."""
  fwd_BxTxV: Array       # predicts x_{t+1} from x_0..x_t
  bwd_BxTxV: Array       # predicts x_{t-1} from x_t..x_{T-1}


class BiLM(nn.Module):
  """(tokens_BxT, mask_BxT) -> N + 1 layers of per-token features, each [B, T, 2H] = [forward;
  backward].

  Each direction is N single-layer `Recurrent` stacks, so every layer's states come out; the
  backward LM runs the same scan on the time-reversed sequence (padding, at the end of a row, then
  comes first and leaves the state at zero until the last real token).
  """
  cfg: ELMoConfig

  @nn.compact
  def __call__(self, tokens_BxT, mask_BxT=None, *, train: bool = False) -> list[Array]:
    c = self.cfg
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    flip = lambda y: None if y is None else jnp.flip(y, axis=1)
    x_BxTxH = nn.Embed(c.V, c.H, name='embed')(tokens_BxT)
    layers = [jnp.concatenate([x_BxTxH, x_BxTxH], axis=-1)]
    rnn = lambda name: Recurrent(c.cell, c.H, 1, forget_bias=c.forget_bias, unroll=c.unroll,
                                 parallel_scan=c.parallel_scan, dtype=c.dtype,
                                 recurrence=c.recurrence, name=name)
    f_BxTxH, b_BxTxH = x_BxTxH, flip(x_BxTxH)  # b_ is in reversed time until it is flipped back
    for n in range(c.N):
      f_BxTxH, _ = rnn(f'fwd{n}')(drop(f_BxTxH), mask_BxT)
      b_BxTxH, _ = rnn(f'bwd{n}')(drop(b_BxTxH), flip(mask_BxT))
      layers.append(
          jnp.concatenate([f_BxTxH.astype(jnp.float32), flip(b_BxTxH).astype(jnp.float32)],
                          axis=-1))
    return layers


class ELMo(nn.Module):
  """The biLM pre-training model: (tokens_BxT, mask_BxT) -> BiLMLogits; `features` gives the N + 1
  layers."""
  cfg: ELMoConfig

  def setup(self):
    c = self.cfg
    self.elmo = BiLM(c)
    self.drop = nn.Dropout(c.dropout)
    self.softmax = OutputLayer(c.V, dtype=c.dtype)  # one softmax for both directions, as in ELMo

  def __call__(self, tokens_BxT, mask_BxT=None, *, train: bool = False) -> BiLMLogits:
    top_BxTx2H = self.drop(self.elmo(tokens_BxT, mask_BxT, train=train)[-1],
                           deterministic=not train)
    H = self.cfg.H
    return BiLMLogits(self.softmax(top_BxTx2H[..., :H]), self.softmax(top_BxTx2H[..., H:]))

  def features(self, tokens_BxT, mask_BxT=None) -> list[Array]:
    """Per-token ELMo representations, N + 1 arrays [B, T, 2H] (use with
    `apply(..., method=ELMo.features)`)."""
    return self.elmo(tokens_BxT, mask_BxT)


class ScalarMix(nn.Module):
  """ELMo's task-specific weighting (eq. 1): gamma * sum_j softmax(s)_j h_j over layers of one
  shape, float32."""

  @nn.compact
  def __call__(self, layers: Sequence[Array]) -> Array:
    s_J = self.param('s', nn.initializers.zeros, (len(layers),), jnp.float32)
    gamma = self.param('gamma', nn.initializers.ones, (), jnp.float32)
    w_J = jax.nn.softmax(s_J)
    return gamma * sum(w_J[j] * h.astype(jnp.float32) for j, h in enumerate(layers))


class ELMoClassifier(nn.Module):
  """(tokens_BxT, segments_BxT) -> logits_BxC (float32): the scalar mix of the biLM's layers over
  the real (non-PAD) tokens, read by a one-layer recurrent head whose state after the last real
  token feeds a linear layer."""
  cfg: ELMoConfig

  @nn.compact
  def __call__(self, tokens_BxT, segments_BxT=None, *, train: bool = False):
    del segments_BxT  # the [SEP] token already marks where sentence B starts
    c = self.cfg
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    mask_BxT = (tokens_BxT != PAD).astype(jnp.float32)
    elmo_BxTx2H = ScalarMix(name='mix')(BiLM(c, name='elmo')(tokens_BxT, mask_BxT, train=train))
    _, finals = Recurrent(c.cell, c.H, 1, forget_bias=c.forget_bias, unroll=c.unroll,
                          parallel_scan=c.parallel_scan, dtype=c.dtype, recurrence=c.recurrence,
                          name='head')(drop(elmo_BxTx2H), mask_BxT)
    # padded steps leave the carry unchanged: the state after the last real token
    h_BxH = finals[-1][0]
    return nn.Dense(c.C, dtype=c.dtype, name='classifier')(drop(h_BxH)).astype(jnp.float32)


def _build(m, data, dtype: Any) -> nn.Module:
  c = ELMoConfig(V=data.vocab_size, cell=m.cell, H=m.width, N=m.layers,
                 C=data.meta.get('num_classes', 2), dropout=m.dropout, forget_bias=m.forget_bias,
                 unroll=m.unroll, parallel_scan=entry.parallel_scan(m),
                 recurrence=entry.recurrence(m), dtype=dtype)
  # The biLM is the submodule 'elmo' in both, so train.init_from moves it from pre-training to
  # classification.
  return ELMoClassifier(c) if data.kind == 'classify' else ELMo(c)


def _check(config) -> None:
  m = config.model
  cells = (*GATES, *MIN_GATES)
  entry.check(m.cell in cells, f'config.model.cell={m.cell!r} is not a recurrent cell: choose one '
              f'of {", ".join(cells)}')
  entry.check(m.embed in (0, m.width), f'config.model.embed={m.embed} differs from '
              f'config.model.width={m.width}: ELMo mixes the embedding (layer 0) with the '
              'recurrent states, so it has their width: leave embed=0')


def _generate(model: ELMo, params, prompt_BxP, rng, *, window: int, max_new: int,
              **settings) -> jax.Array:
  """Its forward LM continues the prompt, recomputed over the last `window` tokens at every step."""
  step = decoding.window_step_function(
      lambda tokens: model.apply({'params': params}, tokens).fwd_BxTxV, prompt_BxP, window)
  return decoding.sample(*step, max_new, rng, **settings)


_cell = lambda m: m.cell if m.cell in GATES else ''
ENTRIES = {
    'elmo': entry.Entry(_build, kinds=('lm',), objective='bilm', check=_check, needs_text=True,
                        recurrent_cell=_cell, generate=_generate),
    'elmo_classifier': entry.Entry(_build, kinds=('classify',), check=_check, recurrent_cell=_cell),
}
