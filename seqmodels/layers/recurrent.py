"""Recurrent layers: Elman RNN, LSTM and GRU cells written from their equations, driven by one scan.

Every cell splits into an input part that depends only on x_t and a recurrent part that depends on
h_{t-1}. The input part of all time steps is one matmul hoisted out of the loop (`xw_BxTxG`); the
scan only does the [B, H] x [H, G] recurrent matmul per step. Gate layouts (G = gates * H,
concatenated in this order):
  rnn:  [a]            h = tanh(a)
  lstm: [i, f, g, o]   c = sigmoid(f) * c + sigmoid(i) * tanh(g);  h = sigmoid(o) * tanh(c)
  gru:  [r, z, n]      h = (1 - z) * n + z * h,  n = tanh(W_n x + b_n + r * (U_n h + b_hn))
The GRU is the cuDNN / PyTorch / flax.linen.GRUCell variant (reset gate applied after the recurrent
matmul).

Parameters of a layer: `wx` [D, G], `b` [G], `wh` [H, G] and, for the GRU only, `bh` [G] (the
recurrent bias that sits inside r * (U_n h + b_hn)). Mapping to flax.linen cells (tested in
tests/layers/recurrent_test.py):
  LSTMCell / OptimizedLSTMCell: wx[:, k-th block] -> i{k}.kernel, wh[:, k-th block] -> h{k}.kernel,
    b[k-th block] -> h{k}.bias for k in (i, f, g, o); flax's carry is (c, h), ours is (h, c).
  GRUCell: wx -> i{r,z,n}.kernel, wh -> h{r,z,n}.kernel, b_r + bh_r -> ir.bias, b_z + bh_z ->
    iz.bias, b_n -> in.bias, bh_n -> hn.bias (flax has no hr/hz biases: ours are redundant there, as
    in PyTorch).
The cells 'mingru' and 'minlstm' (seqmodels/layers/minrnn.py) plug into the same `Recurrent` stack.

The same function runs three ways (`RECURRENCES`, config.model.recurrence), tested equal: `scan`
(lax.scan and autodiff), `hoisted` (lax.scan with a custom backward pass) and `cudnn`
(jax.experimental.rnn, LSTM on CUDA).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import gates
from seqmodels.layers.minrnn import MIN_GATES, MinRNNLayer

Array = jax.Array
GATES = {'rnn': 1, 'lstm': 4, 'gru': 3}


def _rnn_update(carry, a_BxG, r_BxG):
  """Elman: h_t = tanh(W_x x_t + W_h h_{t-1} + b)."""
  h = jnp.tanh(a_BxG + r_BxG)
  return (h,), h


def _lstm_update(carry, a_BxG, r_BxG):
  """LSTM (Hochreiter & Schmidhuber 1997, with forget gate of Gers et al. 2000)."""
  _, c = carry
  i, f, g, o = (a + r for a, r in zip(gates.parts(a_BxG, 4), gates.parts(r_BxG, 4)))
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), h


def _gru_update(carry, a_BxG, r_BxG):
  """GRU (Cho et al. 2014), reset gate applied to the recurrent projection (cuDNN layout)."""
  (h,) = carry
  ar, az, an = gates.parts(a_BxG, 3)
  rr, rz, rn = gates.parts(r_BxG, 3)
  r = jax.nn.sigmoid(ar + rr)
  z = jax.nn.sigmoid(az + rz)
  n = jnp.tanh(an + r * rn)
  h = (1.0 - z) * n + z * h
  return (h,), h


UPDATES: dict[str, Callable] = {'rnn': _rnn_update, 'lstm': _lstm_update, 'gru': _gru_update}

# How a RecurrentLayer runs its recurrence (config.model.recurrence): one function, three
# implementations.
RECURRENCES = {
    'scan': 'lax.scan, differentiated by autodiff',
    'hoisted': "lax.scan; its backward pass forms the recurrent weights' gradient as one "
               "matmul after the loop",
    'cudnn': 'cuDNN (jax.experimental.rnn.lstm): LSTM only, float32, CUDA GPUs only',
}


def zero_state(cell: str, batch: int, hidden: int) -> tuple[Array, ...]:
  """The all-zeros initial carry of a cell: (h,) or (h, c) for the LSTM, float32 [B, H]."""
  h = jnp.zeros((batch, hidden), jnp.float32)
  return (h, h) if cell == 'lstm' else (h,)


def default_unroll() -> int:
  """lax.scan unroll when config.model.unroll is 0 (auto): 8 on GPU/TPU, 1 on CPU.

  GPU: DESIGN.md's H100 figure for the hoisted bf16 LSTM scan was taken at unroll 8. CPU: unroll 8
  made the 2x128 LSTM char-LM step about 1.6x slower than unroll 1 (bench/recurrent.py --quick,
  2-core CPU, 2026-11-24).
  """
  return 1 if jax.default_backend() == 'cpu' else 8


def default_recurrence() -> str:
  """config.model.recurrence = 'auto': 'hoisted' on CPU, 'scan' elsewhere until measured on a GPU.

  CPU: the 2x128 char-LM training step (T=256, B=16) took 55.7 against 91.0 ms (LSTM) and 46.6
  against 64.7 ms (GRU) (python bench/recurrent.py --quick, 2-core Xeon, 720f02c; bench/README.md).
  GPU: `bash bench/gpu_checks.sh recurrent` runs the A/B (`seqmodels-hoisted`, `seqmodels-cudnn`,
  `seqmodels`).
  """
  return 'hoisted' if jax.default_backend() == 'cpu' else 'scan'


# jit: eager callers compile the driver once per shape instead of dispatching its ops one by one;
# under an outer jit it is inlined.
@functools.partial(jax.jit, static_argnames=('cell', 'reverse', 'unroll', 'dtype', 'hoisted_grad'))
def scan_recurrence(cell: str, xw_BxTxG: Array, wh_HxG: Array, bh_G: Array,
                    carry0: tuple[Array, ...], mask_BxT: Array | None = None, reverse: bool = False,
                    unroll: int = 1, dtype: Any = jnp.float32, dh_BxTxH: Array | None = None,
                    hoisted_grad: bool = False) -> tuple[Array, tuple[Array, ...]]:
  """The one scan driver: runs `cell` over time given the hoisted input projection.

  Padded steps (mask 0) leave the carry unchanged, so the final state is the state after the last
  real token (also when reverse=True, where padding comes first). `dh_BxTxH`, when given, is added
  to h_t inside the recurrence (so it reaches both the output and step t+1): its gradient at zero is
  the full dL/dh_t of backpropagation through time (seqmodels/analysis/gradient_flow.py). Returns
  (h_BxTxH, final carry).

  `hoisted_grad`: differentiate through `_hoisted_recurrence`'s custom VJP (the recurrent weights'
  gradient taken out of the backward loop, as cuDNN does) instead of autodiff of the scan; the same
  gradients (tested). A speed option: config.model.recurrence='hoisted' chooses it, the default on
  CPU (`default_recurrence`, with the figures).
  """
  # the carry is float32 whatever the compute dtype
  carry0 = tuple(c.astype(jnp.float32) for c in carry0)
  bh_G = jnp.broadcast_to(jnp.asarray(bh_G, jnp.float32), wh_HxG.shape[-1:])
  mask_TxBx1 = None if mask_BxT is None else jnp.swapaxes(mask_BxT, 0, 1)[..., None]
  dh_TxBxH = None if dh_BxTxH is None else jnp.swapaxes(dh_BxTxH, 0, 1)
  xw_TxBxG = jnp.swapaxes(xw_BxTxG, 0, 1)
  if hoisted_grad:
    h_TxBxH, carry = _hoisted_recurrence(cell, reverse, unroll, dtype)(
        xw_TxBxG, wh_HxG, bh_G, carry0, mask_TxBx1, dh_TxBxH)
  else:
    carry, h_TxBxH = scan_forward(cell, reverse, unroll, dtype, xw_TxBxG, wh_HxG, bh_G, carry0,
                                  mask_TxBx1, dh_TxBxH)
  return jnp.swapaxes(h_TxBxH, 0, 1), carry


def _cell_step(cell: str, dtype: Any) -> Callable:
  """Everything of one time step but the recurrent matmul: (carry, a_BxG, r_BxG, mask, dh) ->
  (carry, h)."""
  update = UPDATES[cell]

  def step(carry, a_BxG, r_BxG, m_Bx1, dh_BxH):
    new_carry, h = update(carry, jax.tree.map(lambda a: a.astype(jnp.float32), a_BxG), r_BxG)
    if dh_BxH is not None:
      h = h + dh_BxH
      new_carry = (h,) + tuple(new_carry[1:])
    if m_Bx1 is not None:
      new_carry = tuple(jnp.where(m_Bx1, n, o) for n, o in zip(new_carry, carry))
      h = jnp.where(m_Bx1, h, 0.0)
    return new_carry, h.astype(dtype)

  return step


def scan_forward(cell: str, reverse: bool, unroll: int, dtype: Any, xw_TxBxG, wh_HxG, bh_G, carry0,
                 mask_TxBx1, dh_TxBxH, residuals: bool = False):
  """The recurrence, time-major: (final carry, h_TxBxH), or with `residuals` (final carry, (h_TxBxH,
  the carry before each step, r_TxBxG = h_{t-1} W_h + b_h, per gate on CPU:
  seqmodels/layers/gates.py)) for `_hoisted_recurrence`'s backward pass.

  Differentiated by plain autodiff unless `hoisted_grad` (the reference `_hoisted_recurrence`'s
  gradient is tested against).
  """
  step = _cell_step(cell, dtype)

  def body(carry, inputs):
    a_BxG, m_Bx1, dh_BxH = inputs
    r_BxG = jnp.dot(carry[0].astype(dtype), wh_HxG.astype(dtype),
                    preferred_element_type=jnp.float32) + bh_G
    new_carry, h = step(carry, a_BxG, r_BxG, m_Bx1, dh_BxH)
    return new_carry, ((h, carry, gates.by_gate(r_BxG, GATES[cell])) if residuals else h)

  xs = (gates.by_gate(xw_TxBxG, GATES[cell]), mask_TxBx1, dh_TxBxH)
  return jax.lax.scan(body, carry0, xs, reverse=reverse, unroll=unroll)


@functools.lru_cache(maxsize=None)
def _hoisted_recurrence(cell: str, reverse: bool, unroll: int, dtype: Any) -> Callable:
  """scan_forward's (h_TxBxH, final carry) with a custom VJP.

  Autodiff of the scan would add the outer product h_{t-1}^T dr_t into dL/dW_h inside the backward
  loop, one [H, B] x [B, G] matmul and a carried [H, G] sum per step. Here the backward loop only
  carries dL/dh (one dr_t W_h^T matmul per step) and collects dr_t; dL/dW_h is then one [H, T*B] x
  [T*B, G] matmul. The 2x128 LSTM layer's forward + backward alone at H=128, T=256, B=16 went from
  40 to 31 ms on a 2-core CPU (GRU 30 -> 25, tanh RNN 7.1 -> 5.9). Not forward-mode differentiable
  (jax.jvp / jax.hessian through it raise).
  """
  step = _cell_step(cell, dtype)

  @jax.custom_vjp
  def run(xw_TxBxG, wh_HxG, bh_G, carry0, mask_TxBx1, dh_TxBxH):
    carry, h_TxBxH = scan_forward(cell, reverse, unroll, dtype, xw_TxBxG, wh_HxG, bh_G, carry0,
                                  mask_TxBx1, dh_TxBxH)
    return h_TxBxH, carry

  def run_fwd(xw_TxBxG, wh_HxG, bh_G, carry0, mask_TxBx1, dh_TxBxH):
    carry, (h_TxBxH, prev, r_TxBxG) = scan_forward(cell, reverse, unroll, dtype, xw_TxBxG, wh_HxG,
                                                   bh_G, carry0, mask_TxBx1, dh_TxBxH,
                                                   residuals=True)
    return (h_TxBxH, carry), (xw_TxBxG, wh_HxG, prev, r_TxBxG, mask_TxBx1, dh_TxBxH)

  def run_bwd(residuals, cotangents):
    xw_TxBxG, wh_HxG, prev, r_TxBxG, mask_TxBx1, dh_TxBxH = residuals
    g_TxBxH, g_carry = cotangents
    wh_GxH = wh_HxG.T.astype(dtype)

    def body(d_carry, inputs):
      carry, a_BxG, r_BxG, m_Bx1, dh_BxH, g_BxH = inputs  # a, r: per gate on CPU (gates.py)
      _, vjp = jax.vjp(lambda c, a, r, dh: step(c, a, r, m_Bx1, dh), carry, a_BxG, r_BxG, dh_BxH)
      d_prev, d_a, d_r, d_dh = vjp((d_carry, g_BxH.astype(dtype)))
      d_h = d_prev[0] + jnp.dot(gates.joined(d_r).astype(dtype), wh_GxH,
                                preferred_element_type=jnp.float32)
      # rnn, lstm: a and r enter as a + r, so d_a = d_r, one array to write per step; the GRU's n
      # gate differs.
      return (d_h,) + tuple(d_prev[1:]), (d_a if cell == 'gru' else None, d_r, d_dh)

    d_carry0, (d_xw, d_r, d_dh) = jax.lax.scan(
        body, g_carry,
        (prev, gates.by_gate(xw_TxBxG, GATES[cell]), r_TxBxG, mask_TxBx1, dh_TxBxH, g_TxBxH),
        reverse=not reverse, unroll=unroll)
    d_r = gates.joined(d_r)
    d_xw = d_r if d_xw is None else gates.joined(d_xw)
    d_wh = jnp.einsum('tbh,tbg->hg', prev[0].astype(dtype), d_r.astype(dtype),
                      preferred_element_type=jnp.float32)
    return d_xw.astype(xw_TxBxG.dtype), d_wh, d_r.sum((0, 1)), d_carry0, None, d_dh

  run.defvjp(run_fwd, run_bwd)
  return run


def cudnn_weights(wx_DxG: Array, b_G: Array, wh_HxG: Array) -> Array:
  """One LSTM layer's parameters in cuDNN's flat layout (jax.experimental.rnn): W_ih [G, D], W_hh
  [G, H], b_ih, b_hh, each flattened. Both use the gate order i, f, g, o, as this module does; b_hh
  is zero (b holds both)."""
  return jnp.concatenate([wx_DxG.T.ravel(), wh_HxG.T.ravel(), b_G, jnp.zeros_like(b_G)])


def _flip_real(x_BxTxF: Array, lengths_B: Array) -> Array:
  """Each row's first lengths_B[b] steps in reverse order, its padding kept at the end (its own
  inverse)."""
  T = x_BxTxF.shape[1]
  return jnp.flip(jax.vmap(lambda x, n: jnp.roll(x, T - n, axis=0))(x_BxTxF, lengths_B), axis=1)


def cudnn_lstm(x_BxTxD: Array, wx_DxG: Array, b_G: Array, wh_HxG: Array,
               carry0: tuple[Array, Array], mask_BxT: Array | None = None, reverse: bool = False,
               lstm: Callable | None = None) -> tuple[Array, tuple[Array, Array]]:
  """One LSTM layer by cuDNN: the function
  `scan_recurrence('lstm', x W_x + b, W_h, 0, carry0, mask, reverse)` computes, as (h_BxTxH float32,
  (h, c)).

  cuDNN takes sequence lengths, not a mask: `mask_BxT` must mark a prefix of each row (padding after
  the tokens, as every pipeline here makes). A row with no real token keeps `carry0` and outputs
  zeros, as the scan does. `lstm` is jax.experimental.rnn.lstm (CUDA only, float32); tests pass
  jax's reference of it (`lstm_ref`), which runs anywhere. Under a mesh of several devices XLA may
  gather the batch for the cuDNN call: measured on one GPU.
  """
  if lstm is None:
    from jax.experimental import rnn  # imported where it is used: a GPU-only path
    lstm = rnn.lstm
  B, T, D = x_BxTxD.shape
  H = wh_HxG.shape[0]
  real_B = (jnp.full((B,), T, jnp.int32) if mask_BxT is None
            else jnp.sum(mask_BxT > 0, axis=1).astype(jnp.int32))
  # cuDNN needs a step; an empty row's outputs and state are reset below
  lengths_B = jnp.maximum(real_B, 1)
  x = x_BxTxD.astype(jnp.float32)
  if reverse:
    x = _flip_real(x, lengths_B)
  h0_BxH, c0_BxH = (c.astype(jnp.float32) for c in carry0)
  y_BxTxH, h_n, c_n = lstm(x, h0_BxH[None], c0_BxH[None], cudnn_weights(wx_DxG, b_G, wh_HxG),
                           lengths_B, input_size=D, hidden_size=H, num_layers=1, dropout=0.0,
                           bidirectional=False)
  if reverse:
    y_BxTxH = _flip_real(y_BxTxH, lengths_B)
  empty_Bx1 = (real_B == 0)[:, None]
  if mask_BxT is not None:
    y_BxTxH = jnp.where(mask_BxT[..., None] > 0, y_BxTxH, 0.0)
  return y_BxTxH, (jnp.where(empty_Bx1, h0_BxH, h_n[0]), jnp.where(empty_Bx1, c0_BxH, c_n[0]))


class RecurrentLayer(nn.Module):
  """One unidirectional layer of `cell` with H units; x_BxTxD -> (h_BxTxH, final carry).

  Under a mutable or given 'perturbations' collection (flax `perturb`), the hidden states get a zero
  perturbation named 'h' inside the recurrence, for gradient-flow analysis; otherwise nothing is
  added. `recurrence` (RECURRENCES) chooses how the same function runs; the perturbed analysis
  always takes the scan, which has the hook inside the loop that cuDNN lacks.
  """
  cell: str
  H: int
  forget_bias: float = 0.0  # added to the LSTM forget-gate bias at init (1.0 is the usual choice)
  unroll: int = 1
  reverse: bool = False
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()
  recurrent_init: Callable = nn.initializers.orthogonal()
  # multiplies recurrent_init (> 1 with tanh: exploding gradients, Pascanu 2013)
  recurrent_init_scale: float = 1.0
  # scan | hoisted | cudnn: RECURRENCES (the same function; a speed option)
  recurrence: str = 'scan'

  @nn.compact
  def __call__(self, x_BxTxD, mask_BxT=None, carry0=None):
    G = GATES[self.cell] * self.H
    D = x_BxTxD.shape[-1]
    wx_DxG = self.param('wx', self.kernel_init, (D, G), jnp.float32)
    b_G = self.param('b', self._bias_init, (G,), jnp.float32)
    wh_HxG = self.param('wh', self._recurrent_init, (self.H, G), jnp.float32)
    # The GRU's n gate needs its own recurrent bias inside r * (U_n h + b_hn); other cells fold it
    # into b.
    bh_G = self.param('bh', nn.initializers.zeros, (G,), jnp.float32) if self.cell == 'gru' else 0.0
    if self.recurrence not in RECURRENCES:
      raise ValueError(
          f'unknown recurrence {self.recurrence!r}: choose one of {", ".join(RECURRENCES)}')
    B, T = x_BxTxD.shape[:2]
    if carry0 is None:
      carry0 = zero_state(self.cell, B, self.H)
    dh_BxTxH = None
    # Not at init: parameters made by `init` stay free of [B, T, H] zeros tied to the example
    # input's shape.
    if not self.is_initializing() and (self.is_mutable_collection('perturbations')
                                       or self.has_variable('perturbations', 'h')):
      dh_BxTxH = self.perturb('h', jnp.zeros((B, T, self.H), jnp.float32))
    if self.recurrence == 'cudnn' and dh_BxTxH is None:
      if self.cell != 'lstm' or jnp.dtype(self.dtype) != jnp.float32:
        raise ValueError("recurrence 'cudnn' runs float32 LSTMs only, not a "
                         f"{jnp.dtype(self.dtype).name} {self.cell}: use 'scan' or 'hoisted'")
      h_BxTxH, carry = cudnn_lstm(x_BxTxD, wx_DxG, b_G, wh_HxG, carry0, mask_BxT, self.reverse)
      return h_BxTxH.astype(self.dtype), carry
    xw_BxTxG = jnp.dot(x_BxTxD.astype(self.dtype), wx_DxG.astype(self.dtype),
                       preferred_element_type=jnp.float32) + b_G
    # One step (a decoder stepping through time) has nothing to hoist: its weight gradient is one
    # matmul anyway.
    return scan_recurrence(self.cell, xw_BxTxG, wh_HxG, bh_G, carry0, mask_BxT, self.reverse,
                           self.unroll, self.dtype, dh_BxTxH,
                           self.recurrence == 'hoisted' and T > 1)

  def _bias_init(self, key, shape, dtype):
    b = jnp.zeros(shape, dtype)
    if self.cell == 'lstm' and self.forget_bias:
      b = b.at[self.H:2 * self.H].set(self.forget_bias)
    return b

  def _recurrent_init(self, key, shape, dtype):
    # Orthogonal per gate block, so each gate's recurrent matrix is orthogonal.
    keys = jax.random.split(key, GATES[self.cell])
    return self.recurrent_init_scale * jnp.concatenate(
        [self.recurrent_init(k, (shape[0], self.H), dtype) for k in keys], axis=-1)


class Recurrent(nn.Module):
  """Stack of N recurrent layers, optionally bidirectional, with dropout between layers.

  x_BxTxD -> (y_BxTxH or y_BxTx2H when bidirectional, final carries: one per layer and direction).
  `carry0` is None or a list with one carry per layer (per direction: [fwd, bwd] per layer when
  bidirectional). `cell` is rnn | lstm | gru (RecurrentLayer) or mingru | minlstm (MinRNNLayer,
  parallel scan; `forget_bias`, `unroll` and `recurrence` do not apply to those, nor
  `recurrent_init_scale`: they have no recurrent matrix). `parallel_scan` applies to mingru |
  minlstm only: True / False / None (`minrnn.default_parallel()`).
  """
  cell: str
  H: int
  N: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  forget_bias: float = 0.0
  unroll: int = 1
  dtype: Any = jnp.float32
  # RecurrentLayer's orthogonal recurrent init is multiplied by this
  recurrent_init_scale: float = 1.0
  parallel_scan: bool | None = None
  recurrence: str = 'scan'  # rnn | lstm | gru: scan | hoisted | cudnn (RECURRENCES)

  @nn.compact
  def __call__(self, x_BxTxD, mask_BxT=None, carry0=None, *, train: bool = False):
    if self.cell in MIN_GATES:
      layer = functools.partial(MinRNNLayer, self.cell, self.H, dtype=self.dtype,
                                parallel=self.parallel_scan)
    else:
      layer = functools.partial(RecurrentLayer, self.cell, self.H, self.forget_bias, self.unroll,
                                dtype=self.dtype, recurrent_init_scale=self.recurrent_init_scale,
                                recurrence=self.recurrence)
    dirs = 2 if self.bidirectional else 1
    finals = []
    x = x_BxTxD
    for n in range(self.N):
      if n > 0 and self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      outs = []
      for d in range(dirs):
        c0 = None if carry0 is None else carry0[n * dirs + d]
        y, c = layer(reverse=d == 1, name=f'layer{n}' + ('_bwd' if d else ''))(x, mask_BxT, c0)
        outs.append(y)
        finals.append(c)
      x = outs[0] if dirs == 1 else jnp.concatenate(outs, axis=-1)
    return x, finals
