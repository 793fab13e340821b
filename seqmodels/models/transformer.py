"""The Transformer (Vaswani et al. 2017, "Attention Is All You Need"): encoder-decoder, attention
only.

N encoder blocks (self-attention + FFN) over the source; N decoder blocks (masked self-attention,
encoder-decoder attention onto the top encoder layer, FFN) over the shifted target; sinusoidal
positions; embeddings scaled by sqrt(D); post-LN as in the paper (pre-LN option, with a final
LayerNorm on each stack); output linear tied to the target embedding. PAD (id 0) marks padding at
the end of source and target rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers.embeddings import PositionEmbedding, tied_logits
from seqmodels.layers.transformer import Block, DecoderBlock
from seqmodels.models import entry

PAD = 0


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  V: int                  # target vocabulary size (and source, when V_src is 0)
  L: int                  # longest source or target sequence (number of positions)
  V_src: int = 0          # source vocabulary size; 0 means V
  D: int = 128            # width (d_model)
  N: int = 2              # encoder blocks = decoder blocks
  H: int = 4              # heads
  F: int = 512            # FFN width (d_ff)
  dropout: float = 0.0    # P_drop on embeddings+positions and on every sublayer output
  pre_ln: bool = False    # False: the paper's post-LN; True: pre-LN (more stable when deep)
  share_embeddings: bool = True  # one embedding for source, target and the output layer: for one
                                 # vocabulary only (source id i is target id i), which the caller
                                 # knows, not V_src == V
  positions: str = 'sinusoidal'  # sinusoidal | learned
  dtype: Any = jnp.float32


def lengths(tokens_BxT) -> jax.Array:
  """Real tokens per row (padding is PAD at the end); at least 1, so all-padding rows stay
  finite."""
  return jnp.maximum((tokens_BxT != PAD).sum(-1), 1).astype(jnp.int32)


class Transformer(nn.Module):
  """(src_BxS, tgt_in_BxT) -> logits_BxTxV (float32), teacher forcing; `encode` + `decode` for
  generation."""
  cfg: TransformerConfig

  def setup(self):
    c = self.cfg
    init = nn.initializers.normal(c.D ** -0.5)
    self.tgt_embed = nn.Embed(c.V, c.D, embedding_init=init)
    if not self._shared():
      self.src_embed = nn.Embed(c.V_src or c.V, c.D, embedding_init=init)
    self.src_pos = PositionEmbedding(c.L, c.positions)
    self.tgt_pos = PositionEmbedding(c.L, c.positions)
    block = dict(H=c.H, F=c.F, pre_ln=c.pre_ln, activation='relu', dropout=c.dropout, dtype=c.dtype)
    self.encoder = [Block(causal=False, **block) for _ in range(c.N)]
    self.decoder = [DecoderBlock(**block) for _ in range(c.N)]
    self.enc_ln = nn.LayerNorm(dtype=c.dtype) if c.pre_ln else None
    self.dec_ln = nn.LayerNorm(dtype=c.dtype) if c.pre_ln else None
    self.drop = nn.Dropout(c.dropout)

  def _shared(self) -> bool:
    c = self.cfg
    if c.share_embeddings and c.V_src not in (0, c.V):
      raise ValueError(
          f'share_embeddings=True needs one vocabulary, and V_src={c.V_src} differs from V={c.V}')
    return c.share_embeddings

  def _embed(self, embed, pos, tokens_BxT, train: bool, offset=0):
    # as in the paper, section 3.4
    x_BxTxD = embed(tokens_BxT) * jnp.sqrt(self.cfg.D).astype(jnp.float32)
    return self.drop(pos(x_BxTxD.astype(self.cfg.dtype), offset), deterministic=not train)

  def encode(self, src_BxS, *, train: bool = False):
    """The top encoder layer x_BxSxD and the source lengths_B."""
    src_lengths_B = lengths(src_BxS)
    x_BxSxD = self._embed(self.tgt_embed if self._shared() else self.src_embed, self.src_pos,
                          src_BxS, train)
    for block in self.encoder:
      x_BxSxD = block(x_BxSxD, src_lengths_B, train=train)
    return (x_BxSxD if self.enc_ln is None else self.enc_ln(x_BxSxD)), src_lengths_B

  def decode(self, tgt_in_BxT, memory_BxSxD, src_lengths_B, *, train: bool = False,
             decode_position=None):
    """Logits_BxTxV for target tokens at positions p..p+T-1 (p = decode_position, with a KV cache)
    or 0..T-1."""
    y_BxTxD = self._embed(self.tgt_embed, self.tgt_pos, tgt_in_BxT, train,
                          0 if decode_position is None else decode_position)
    for block in self.decoder:
      y_BxTxD = block(y_BxTxD, memory_BxSxD, src_lengths_B, train=train,
                      decode_position=decode_position)
    if self.dec_ln is not None:
      y_BxTxD = self.dec_ln(y_BxTxD)
    return tied_logits(self.tgt_embed, y_BxTxD)

  def __call__(self, src_BxS, tgt_in_BxT, *, train: bool = False):
    memory_BxSxD, src_lengths_B = self.encode(src_BxS, train=train)
    return self.decode(tgt_in_BxT, memory_BxSxD, src_lengths_B, train=train)


def step_function(model: Transformer, params, src_BxS) -> tuple[Callable, dict]:
  """For seqmodels.decoding: `(last_tokens_B, cache, position) -> (logits_BxV, cache)` and the
  initial cache.

  The source is encoded once; the cache holds the top encoder layer, the source lengths and the
  decoder's self-attention keys/values, every leaf with the batch leading (so beam search can
  reorder rows).
  """
  memory_BxSxD, src_lengths_B = model.apply({'params': params}, src_BxS, method=Transformer.encode)
  B, L = src_BxS.shape[0], model.cfg.L
  dummy_BxL = jnp.zeros((B, L), jnp.int32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), dummy_BxL, memory_BxSxD,
                                             src_lengths_B, decode_position=0,
                                             method=Transformer.decode)['cache'])
  kv = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  cache = {'memory': memory_BxSxD, 'src_lengths': src_lengths_B, 'kv': kv}

  def step(last_tokens_B, cache, position):
    logits_Bx1xV, mutated = model.apply(
        {'params': params, 'cache': cache['kv']}, last_tokens_B[:, None], cache['memory'],
        cache['src_lengths'], decode_position=position, method=Transformer.decode,
        mutable=['cache'])
    return logits_Bx1xV[:, 0], {**cache, 'kv': mutated['cache']}

  return step, cache


def one_vocabulary(meta) -> bool:
  """Whether translation data has one vocabulary for both sides: source id i and target id i are the
  same piece for every i (data.shared_vocab, or byte tokens), not merely two vocabularies of one
  size."""
  src, tgt = meta.get('src_tokenizer'), meta.get('tgt_tokenizer')
  if src is None or tgt is None:
    return 'src_vocab_size' not in meta
  return src is tgt or (src.vocab_size == tgt.vocab_size
                        and src.pieces(range(src.vocab_size)) == tgt.pieces(range(tgt.vocab_size)))


def _build(m, data, dtype: Any) -> nn.Module:
  V_src = data.meta.get('src_vocab_size', data.vocab_size)
  # 2 * seq_len positions: decoding may run past the training length (config.decode.max_len).
  return Transformer(TransformerConfig(
      V=data.vocab_size, V_src=V_src, L=2 * data.seq_len, D=m.width, N=m.layers, H=m.heads,
      F=m.ffn or 4 * m.width, dropout=m.dropout, pre_ln=m.pre_ln,
      share_embeddings=m.share_embeddings and one_vocabulary(data.meta), dtype=dtype))


def _check(config) -> None:
  m, d = config.model, config.data
  entry.check_heads(m)
  if 'decode' in config:
    entry.check(
        config.decode.max_len <= 2 * d.seq_len, f'config.decode.max_len={config.decode.max_len} '
        f"exceeds the Transformer's 2 * config.data.seq_len={2 * d.seq_len} positions: lower it or "
        'raise seq_len')
  # Byte tokens are one vocabulary on both sides whatever shared_vocab says; other tokenizers learn
  # one a side.
  entry.check(not m.share_embeddings or d.shared_vocab or d.tokenizer == 'byte',
              'config.model.share_embeddings=True ties the source and target embeddings, and '
              'config.data.shared_vocab=False gives the two sides their own vocabularies (source '
              'id i and target id i are different pieces): set '
              'config.model.share_embeddings=False, or config.data.shared_vocab=True')


def _flops(m, data) -> float:
  """Per target token (and the source token beside it: both sides are seq_len long): encoder
  self-attention (4 S D), decoder self- and cross-attention (8 T D), the tied output layer."""
  T, D = data.seq_len, m.width
  return m.layers * 12.0 * T * D + 2.0 * data.vocab_size * D


ENTRIES = {'transformer': entry.Entry(_build, kinds=('seq2seq',), check=_check,
                                      tie_embeddings='always', decode_step=step_function,
                                      after_training=('translation',), flops=_flops,
                                      width_multiple=entry.heads_multiple)}
