"""Attention maps: the weights every MultiHeadAttention sows are the ones it attended with; the CLI
writes them for a finished run in the layout seqmodels.report draws, and the Transformer's
translations get theirs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.translate import get_config as translate_config
from seqmodels import report, validation
from seqmodels.analysis import attention_maps, gradient_flow
from seqmodels.layers.attention import MultiHeadAttention
from seqmodels.train import loop
from tests.analysis.gradient_flow_cli_test import _run


def test_the_sown_weights_are_the_ones_the_attention_used():
  B, T, D, H = 2, 5, 8, 2
  x = jax.random.normal(jax.random.PRNGKey(0), (B, T, D))
  lengths = jnp.array([5, 3])
  mha = MultiHeadAttention(H)
  variables = mha.init(jax.random.PRNGKey(1), x)
  assert set(variables) == {'params'}  # init sows nothing (it makes every collection mutable)
  params = variables['params']
  kw = dict(causal=True, q_lengths_B=lengths, kv_lengths_B=lengths)
  plain = mha.apply({'params': params}, x, **kw)
  out, sown = attention_maps.sown_weights(mha, {'params': params}, x, **kw)
  np.testing.assert_array_equal(out, plain)  # asking for the weights changes nothing else
  (p,) = sown.values()
  assert p.shape == (B, H, T, T)
  allowed = (
      (np.arange(T)[:, None] >= np.arange(T)) & (np.arange(T) < np.asarray(lengths)[:, None, None]))
  # no weight on the future or on padding
  assert np.all(p[~np.broadcast_to(allowed[:, None], p.shape)] == 0)
  np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)
  # The module's output, rebuilt from these weights and its own value and output projections.
  qkv = jnp.einsum('btd,dchk->btchk', x, params['qkv']['kernel']) + params['qkv']['bias']
  ctx = jnp.einsum('bhts,bshk->bthk', p, qkv[:, :, 2])
  ctx = jnp.where((jnp.arange(T) < lengths[:, None])[:, :, None, None], ctx, 0)
  rebuilt = jnp.einsum('bthk,hkd->btd', ctx, params['out']['kernel']) + params['out']['bias']
  np.testing.assert_allclose(rebuilt, out, rtol=1e-5, atol=1e-6)


def test_cli_writes_causal_maps_of_every_block_that_the_report_draws(tmp_path, capsys):
  workdir = _run(tmp_path, 'gpt')
  attention_maps.main(['--workdir', workdir])
  maps = np.load(f'{workdir}/attention_layers.npz')
  T = 2 * 4 + 2  # BOS, 4 symbols, SEP, 4 symbols, EOS: no padding in this copy task
  assert maps['layer0'].shape == (2, T, T) and 'layer1' not in maps and int(maps['step']) == 2
  assert list(maps['tokens'][:2]) == ['<bos>', maps['tokens'][1]] and len(maps['tokens']) == T
  np.testing.assert_allclose(maps['layer0'].sum(-1), 1, rtol=1e-5)
  assert np.all(np.triu(maps['layer0'], 1) == 0)  # a causal model: no query sees a later key
  assert (capsys.readouterr().out.splitlines()[-1] ==
          (f'{workdir}: 1 layer x 2 heads, {T} x {T} positions -> {workdir}/attention_layers.npz'))
  report.write_report([workdir], str(tmp_path / 'report'))
  assert (tmp_path / 'report' / 'attention_layers_gpt_copy.png').stat().st_size > 0


def test_a_model_without_multi_head_attention_is_one_line(tmp_path, capsys):
  workdir = _run(tmp_path, 'rnn')
  capsys.readouterr()  # the run's own output
  with pytest.raises(SystemExit) as e:
    attention_maps.main(['--workdir', workdir])
  assert e.value.code == 2
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      f'error: --workdir={workdir}: config.model.name=rnn has no multi-head attention (seq2seq '
      'models with additive or multiplicative attention write attention_maps.npz in '
      'their final evaluation)')


def test_a_transformer_translation_writes_its_encoder_decoder_attention(tmp_path):
  c = translate_config('cpu,transformer')
  c.data.data_dir = str(tmp_path / 'tfds')
  c.data.num_symbols, c.data.min_len, c.data.max_len = 8, 2, 5
  c.data.num_train, c.data.num_validation, c.data.num_test = 64, 8, 0
  c.data.vocab_size, c.data.seq_len = 64, 10  # a piece a word: padding after every source
  c.model.width, c.model.layers, c.model.heads = 16, 2, 2
  c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = 2, 8, 2, 2
  c.decode.beam_size, c.decode.attention_maps, c.decode.num_examples = 1, 2, 8
  validation.validate(c)
  loop.train_and_evaluate(c, str(tmp_path / 'run'))
  maps = np.load(tmp_path / 'run' / 'attention_maps.npz')
  assert int(maps['count']) == 2
  for i in range(2):
    w = maps[f'weights_{i}']
    assert w.shape == (len(maps[f'tgt_{i}']), len(maps[f'src_{i}']))
    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-5)  # every real source token, and only those
  # The same run's gradient flow: its encoder's series runs over source positions, measured from the
  # source's last real token (the context the decoder reads); padding never reaches the loss.
  series = gradient_flow.run_gradient_flow(str(tmp_path / 'run'), batch_size=4)
  enc = [s for s in series if s['site'].startswith('encoder')]
  assert len(enc) == 2 and any(s['site'].startswith('decoder') for s in series), [
      s['site'] for s in series]
  for s in enc:
    norms = np.asarray(s['norms'])
    assert s['time'] == 'source' and len(norms) == 10 and 1 <= s['loss_position'] < 9
    assert (np.all(norms[:s['loss_position'] + 1] > 0) and
            np.all(norms[s['loss_position'] + 1:] == 0))
  # The whole translation's loss (every target) reaches the same source positions, measured from the
  # same ends.
  whole = gradient_flow.run_gradient_flow(str(tmp_path / 'run'), batch_size=4, whole_sequence=True)
  assert [s['site'] for s in whole] == [s['site'] for s in series]
  assert all(s['loss'] == 'whole_sequence' for s in whole)
  for s, w in zip(series, whole):
    if s['site'].startswith('encoder'):
      assert w['loss_position'] == s['loss_position']
      np.testing.assert_array_equal(np.asarray(w['norms']) > 0, np.asarray(s['norms']) > 0)


def test_a_bert_run_gives_bidirectional_maps_over_its_real_tokens(tmp_path):
  from tests.models.bert_test import _config as bert_config
  workdir = str(tmp_path / 'pretrain')
  loop.train_and_evaluate(bert_config(tmp_path, 'mlm'), workdir)
  maps = attention_maps.run_attention_maps(workdir)
  w, tokens = maps['layer0'], list(maps['tokens'])
  assert w.shape == (2, len(tokens), len(tokens)) and 'layer1' not in maps
  assert tokens[0] == '[CLS]' and '[PAD]' not in tokens and '[SEP]' in tokens
  np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-5)
  assert np.triu(w, 1).sum() > 0.1 * w.sum()  # an encoder: queries see later tokens too
