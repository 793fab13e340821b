"""Tests for seqmodels/layers/recurrent.py: cells against their equations and flax, masking, state,
stacking."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.recurrent import GATES, Recurrent, RecurrentLayer

B, T, D, H = 3, 7, 5, 4
ATOL = 1e-5


def _normal(seed, shape, scale=1.0):
  """N(0, scale^2) float32 from NumPy: jax.random would compile a threefry kernel per shape (slow on
  CPU)."""
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _inputs(seed=0, b=B, t=T, d=D):
  return _normal(seed, (b, t, d))


def _random_params(cell, seed=1):
  """Random values for every parameter (biases too, so each bias slot is exercised)."""
  G = GATES[cell] * H
  p = {'wx': _normal(seed, (D, G), 0.5), 'b': _normal(seed + 1, (G,), 0.5),
       'wh': _normal(seed + 2, (H, G), 0.5)}
  if cell == 'gru':
    p['bh'] = _normal(seed + 3, (G,), 0.5)
  return p


def _init(module, x, scale=0.5):
  """Random N(0, scale^2) values in the shapes `init` would make (skips compiling the
  initializers)."""
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  leaves, tree = jax.tree.flatten(shapes)
  return jax.tree.unflatten(tree, [_normal(i, l.shape, scale) for i, l in enumerate(leaves)])


def _sigmoid(v):
  return 1.0 / (1.0 + np.exp(-v))


def _numpy_reference(cell, p, x_BxTxD):
  """The textbook equations in float64, one gate matrix at a time."""
  p = {n: np.asarray(v, np.float64) for n, v in p.items()}
  x = np.asarray(x_BxTxD, np.float64)
  blocks = lambda m, k: m[..., k * H:(k + 1) * H]
  h = np.zeros((x.shape[0], H))
  c = np.zeros((x.shape[0], H))
  out = []
  for t in range(x.shape[1]):
    pre = lambda k: x[:, t] @ blocks(p['wx'], k) + blocks(p['b'], k)
    rec = lambda k: h @ blocks(p['wh'], k)
    if cell == 'rnn':
      h = np.tanh(pre(0) + rec(0))
    elif cell == 'lstm':
      i, f, g, o = (pre(k) + rec(k) for k in range(4))
      c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
      h = _sigmoid(o) * np.tanh(c)
    else:
      bh = lambda k: blocks(p['bh'], k)
      r = _sigmoid(pre(0) + rec(0) + bh(0))
      z = _sigmoid(pre(1) + rec(1) + bh(1))
      n = np.tanh(pre(2) + r * (rec(2) + bh(2)))
      h = (1 - z) * n + z * h
    out.append(h)
  return np.stack(out, 1), h, c


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru'])
def test_cell_matches_its_equations_in_float64_numpy(cell):
  x = _inputs()
  p = _random_params(cell)
  h, carry = RecurrentLayer(cell, H).apply({'params': p}, x)
  ref_h, ref_hT, ref_cT = _numpy_reference(cell, p, x)
  np.testing.assert_allclose(h, ref_h, atol=ATOL)
  np.testing.assert_allclose(carry[0], ref_hT, atol=ATOL)
  if cell == 'lstm':
    np.testing.assert_allclose(carry[1], ref_cT, atol=ATOL)


def _flax_params(cell, p):
  """Our concatenated layout -> flax's per-gate Dense params (see the recurrent.py docstring)."""
  names = 'ifgo' if cell == 'lstm' else 'rzn'
  blk = lambda m, k: m[..., k * H:(k + 1) * H]
  out = {}
  for k, g in enumerate(names):
    out['i' + g] = {'kernel': blk(p['wx'], k)}
    out['h' + g] = {'kernel': blk(p['wh'], k)}
    if cell == 'lstm':
      out['h' + g]['bias'] = blk(p['b'], k)
    else:
      out['i' + g]['bias'] = blk(p['b'], k) + (blk(p['bh'], k) if g != 'n' else 0.0)
  if cell == 'gru':
    out['hn']['bias'] = blk(p['bh'], 2)
  return out


@pytest.mark.parametrize('cell,flax_cell', [('lstm', nn.LSTMCell), ('lstm', nn.OptimizedLSTMCell),
                                            ('gru', nn.GRUCell)])
def test_cell_matches_flax_cell_given_the_same_weights(cell, flax_cell):
  x = _inputs()
  p = _random_params(cell)
  h, carry = RecurrentLayer(cell, H).apply({'params': p}, x)
  fp = _flax_params(cell, p)
  fcell = flax_cell(H)

  def run_flax(fp, x):
    fcarry = fcell.initialize_carry(jax.random.key(0), x[:, 0].shape)
    ys = []
    for t in range(T):
      fcarry, y = fcell.apply({'params': fp}, fcarry, x[:, t])
      ys.append(y)
    return jnp.stack(ys, 1), fcarry

  fh, fcarry = run_flax(fp, x)
  np.testing.assert_allclose(h, fh, atol=ATOL)
  if cell == 'lstm':  # flax's carry is (c, h), ours (h, c)
    np.testing.assert_allclose(carry[0], fcarry[1], atol=ATOL)
    np.testing.assert_allclose(carry[1], fcarry[0], atol=ATOL)
  else:
    np.testing.assert_allclose(carry[0], fcarry, atol=ATOL)


LENGTHS = jnp.array([T, 4, 1])
MASK = jnp.arange(T)[None, :] < LENGTHS[:, None]


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_padded_steps_leave_state_unchanged_and_final_state_is_after_last_real_token(cell):
  x = _inputs()
  layer = RecurrentLayer(cell, H)
  p = {'params': _random_params(cell)}
  h, carry = layer.apply(p, x, MASK)
  for b, n in enumerate(LENGTHS.tolist()):
    h_b, carry_b = layer.apply(p, x[b:b + 1, :n])
    np.testing.assert_allclose(h[b, :n], h_b[0], atol=ATOL)
    np.testing.assert_allclose(h[b, n:], 0.0)
    for c, c_b in zip(carry, carry_b):
      np.testing.assert_allclose(c[b], c_b[0], atol=ATOL)


@pytest.mark.parametrize('reverse', [False, True])
def test_outputs_at_real_steps_do_not_depend_on_padded_inputs(reverse):
  x = _inputs()
  noise = jnp.where(MASK[..., None], 0.0, 100.0 * _inputs(seed=5))
  layer = RecurrentLayer('lstm', H, reverse=reverse)
  p = {'params': _random_params('lstm')}
  h1, c1 = layer.apply(p, x, MASK)
  h2, c2 = layer.apply(p, x + noise, MASK)
  np.testing.assert_allclose(h1, h2, atol=ATOL)
  chex.assert_trees_all_close(c1, c2, atol=ATOL)


def test_bidirectional_output_is_forward_concat_reversed_run_backward():
  x = _inputs()
  model = Recurrent('gru', H, N=1, bidirectional=True)
  v = _init(model, x)
  y, finals = model.apply(v, x)
  chex.assert_shape(y, (B, T, 2 * H))
  fwd, _ = RecurrentLayer('gru', H).apply({'params': v['params']['layer0']}, x)
  bwd_on_flipped, bwd_final = RecurrentLayer('gru', H).apply({'params': v['params']['layer0_bwd']},
                                                             x[:, ::-1])
  np.testing.assert_allclose(y[..., :H], fwd, atol=ATOL)
  np.testing.assert_allclose(y[..., H:], bwd_on_flipped[:, ::-1], atol=ATOL)
  np.testing.assert_allclose(finals[1][0], bwd_final[0], atol=ATOL)


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru', 'mingru', 'minlstm'])
def test_two_halves_passing_the_carry_equal_one_run(cell):
  x = _inputs()
  model = Recurrent(cell, H, N=2)
  v = _init(model, x)
  y, finals = model.apply(v, x)
  y1, mid = model.apply(v, x[:, :3])
  y2, finals2 = model.apply(v, x[:, 3:], carry0=mid)
  np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y, atol=ATOL)
  chex.assert_trees_all_close(finals2, finals, atol=ATOL)


@pytest.mark.parametrize('bidirectional', [False, True])
def test_stack_shapes(bidirectional):
  x = _inputs()
  model = Recurrent('lstm', H, N=3, bidirectional=bidirectional)
  v = _init(model, x)
  y, finals = model.apply(v, x, MASK)
  dirs = 2 if bidirectional else 1
  chex.assert_shape(y, (B, T, dirs * H))
  assert len(finals) == 3 * dirs
  for h, c in finals:
    chex.assert_shape([h, c], (B, H))
  chex.assert_shape(v['params']['layer1']['wx'], (dirs * H, 4 * H))


def test_dropout_is_active_only_when_training():
  x = _inputs()
  model = Recurrent('gru', H, N=2, dropout=0.5)
  v = _init(model, x)
  eval1, _ = model.apply(v, x)
  eval2, _ = model.apply(v, x, train=False)
  train1, _ = model.apply(v, x, train=True, rngs={'dropout': jax.random.key(1)})
  train2, _ = model.apply(v, x, train=True, rngs={'dropout': jax.random.key(2)})
  np.testing.assert_array_equal(eval1, eval2)
  assert not np.allclose(train1, eval1)
  assert not np.allclose(train1, train2)


def test_bfloat16_compute_stays_close_to_float32():
  x = _inputs()
  p = {'params': _random_params('lstm')}
  h32, _ = RecurrentLayer('lstm', H).apply(p, x)
  h16, c16 = RecurrentLayer('lstm', H, dtype=jnp.bfloat16).apply(p, x)
  assert h16.dtype == jnp.bfloat16 and c16[0].dtype == jnp.float32
  np.testing.assert_allclose(h16.astype(jnp.float32), h32, atol=3e-2)


def test_init_holds_only_params_and_plain_apply_adds_no_perturbation():
  x = _inputs()
  model = Recurrent('rnn', H, N=2)
  assert set(jax.eval_shape(model.init, jax.random.key(0), x)) == {'params'}
  v = _init(model, x)
  _, state = model.apply(v, x, mutable='perturbations')
  chex.assert_shape(state['perturbations']['layer1']['h'], (B, T, H))
  y_plain, _ = model.apply(v, x)
  y_zero, _ = model.apply({**v, **state}, x)
  np.testing.assert_array_equal(y_plain, y_zero)


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru'])
@pytest.mark.parametrize('reverse', [False, True])
def test_hoisted_weight_gradient_equals_autodiff_of_the_scan(cell, reverse):
  """scan_recurrence's custom VJP (dL/dW_h as one matmul after the loop) against plain autodiff of
  the same scan, for every input: the projected inputs, W_h, b_h, the initial carry and the
  gradient-flow perturbation dh, with a float padding mask, and a loss on both the outputs and the
  final carry."""
  from seqmodels.layers.recurrent import scan_forward, scan_recurrence
  G = GATES[cell] * H
  xw, wh, bh = _normal(0, (B, T, G)), _normal(1, (H, G), 0.5), _normal(2, (G,), 0.5)
  carry0 = tuple(_normal(3 + i, (B, H), 0.5) for i in range(2 if cell == 'lstm' else 1))
  dh = jnp.zeros((B, T, H))
  mask = jnp.asarray(np.arange(T)[None, :] < np.array([T, 4, 1])[:, None], jnp.float32)
  w_out = _normal(6, (B, T, H))

  def loss(h_BxTxH, carry):
    return jnp.sum(h_BxTxH * w_out) + sum(jnp.sum(jnp.sin(c)) for c in carry)

  def custom(xw, wh, bh, carry0, dh):
    return loss(*scan_recurrence(cell, xw, wh, bh, carry0, mask, reverse, 1, jnp.float32, dh,
                                 hoisted_grad=True))

  def autodiff(xw, wh, bh, carry0, dh):
    sw = lambda a: jnp.swapaxes(a, 0, 1)
    carry, h = scan_forward(cell, reverse, 1, jnp.float32, sw(xw), wh, bh, carry0,
                            sw(mask)[..., None], sw(dh))
    return loss(sw(h), carry)

  args = (xw, wh, bh, carry0, dh)
  np.testing.assert_allclose(custom(*args), autodiff(*args), rtol=1e-6)
  got = jax.grad(custom, argnums=range(5))(*args)
  want = jax.grad(autodiff, argnums=range(5))(*args)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
  # W_h and dh gradients are live
  assert float(jnp.abs(got[1]).max()) > 0 and float(jnp.abs(got[4]).max()) > 0


def _cudnn_reference(x, h_0, c_0, weights, seq_lengths, *, input_size, hidden_size, num_layers,
                     dropout, bidirectional):
  """jax.experimental.rnn.lstm's signature, computed by jax's own reference of the cuDNN op (runs on
  CPU)."""
  from jax.experimental import rnn
  unpacked = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
  return rnn.lstm_ref(x, h_0, c_0, *unpacked, seq_lengths, input_size, hidden_size, num_layers,
                      dropout, bidirectional)


@pytest.mark.parametrize('reverse', [False, True])
def test_cudnn_lstm_computes_the_scan_layer_function(reverse):
  """The cuDNN path (weights packed in cuDNN's layout, lengths instead of a mask, reverse by
  flipping each row's real steps) against the scan, outputs, final state and gradients, with jax's
  reference of the cuDNN op; a row with no real token keeps its initial state."""
  from seqmodels.layers.recurrent import cudnn_lstm, scan_recurrence
  p = _random_params('lstm')
  x = _inputs()
  carry0 = (_normal(7, (B, H), 0.5), _normal(8, (B, H), 0.5))
  mask = jnp.asarray(np.arange(T)[None, :] < np.array([T, 3, 0])[:, None], jnp.float32)
  w_out = _normal(9, (B, T, H))

  def loss(h, carry):
    return jnp.sum(h * w_out) + sum(jnp.sum(jnp.sin(c)) for c in carry)

  def by_cudnn(p, x, carry0):
    return cudnn_lstm(x, p['wx'], p['b'], p['wh'], carry0, mask, reverse, lstm=_cudnn_reference)

  def by_scan(p, x, carry0):
    return scan_recurrence('lstm', x @ p['wx'] + p['b'], p['wh'], 0.0, carry0, mask, reverse)

  got, want = by_cudnn(p, x, carry0), by_scan(p, x, carry0)
  chex.assert_trees_all_close(got, want, atol=ATOL)
  np.testing.assert_array_equal(got[0][2], 0.0)
  chex.assert_trees_all_close(tuple(c[2] for c in got[1]), tuple(c[2] for c in carry0))
  grads = [jax.grad(lambda *a: loss(*f(*a)), argnums=(0, 1, 2))(p, x, carry0)
           for f in (by_cudnn, by_scan)]
  chex.assert_trees_all_close(grads[0], grads[1], atol=1e-4)


def test_cudnn_recurrence_of_the_stack_equals_the_scan(monkeypatch):
  """Recurrent(recurrence='cudnn'), bidirectional and two layers deep, with
  jax.experimental.rnn.lstm replaced by its reference (there is no cuDNN here): the same outputs and
  states as the scan, from the same parameters."""
  from jax.experimental import rnn
  monkeypatch.setattr(rnn, 'lstm', _cudnn_reference)
  x = _inputs()
  scan = Recurrent('lstm', H, N=2, bidirectional=True)
  v = _init(scan, x)
  got = Recurrent('lstm', H, N=2, bidirectional=True, recurrence='cudnn').apply(v, x, MASK)
  chex.assert_trees_all_close(got, scan.apply(v, x, MASK), atol=ATOL)
  with pytest.raises(ValueError, match="'cudnn' runs float32 LSTMs only, not a float32 gru"):
    RecurrentLayer('gru', H, recurrence='cudnn').init(jax.random.key(0), x)
