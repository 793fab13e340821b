"""The evaluation a translation model adds after training: greedy and beam decoding, BLEU and chrF.

Files written to the workdir: translation_eval.json (scores, sacrebleu signatures, decoding
settings, sample translations), bleu_by_length.json, and attention_maps.npz (+ PNGs) for models with
attention: an RNN decoder's own weights, or the Transformer's top encoder-decoder attention averaged
over its heads (seqmodels.analysis.attention_maps has each head of each layer).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqmodels import decoding
from seqmodels.data import translation
from seqmodels.layers.attention import layer_order, sown_weights


def evaluate(model: nn.Module, step_function: Callable[..., Any], params, data, config,
             workdir: str) -> dict[str, float]:
  """Translates config.decode.split greedily and with beam search through the model's
  `step_function(model, params, src_BxS) -> (decoding.StepFn, cache)` (its registry entry's
  `decode_step`): corpus BLEU (tokenized as config.decode.bleu_tokenize says) and chrF (sacrebleu);
  BLEU per source-length bucket and attention maps go to the workdir (the module docstring)."""
  dc = config.decode
  split = dc.split
  pairs = data.meta['pairs'][split]
  n = min(len(pairs), dc.num_examples or len(pairs))
  bos, eos = data.meta['bos_id'], data.meta['eos_id']
  max_len = dc.max_len or data.seq_len

  @jax.jit
  def translate(params, src_BxS):
    first_B = jnp.full((src_BxS.shape[0],), bos, jnp.int32)
    step_fn, cache = step_function(model, params, src_BxS)
    greedy_BxL = decoding.greedy(step_fn, cache, first_B, max_len, eos_id=eos)
    beams_BxKxL, _ = decoding.beam_search(step_fn, cache, first_B, max_len, dc.beam_size,
                                          length_penalty=dc.length_penalty, eos_id=eos)
    return greedy_BxL, beams_BxKxL[:, 0]

  batch_size = dc.batch_size or config.train.batch_size
  greedy, beam, src, src_len = [], [], [], []
  for batch in data.eval_batches(batch_size=batch_size, split=split,
                                 max_batches=-(-n // batch_size)):
    g, b = jax.device_get(translate(params, batch['src']))
    greedy.append(g), beam.append(b), src.append(batch['src']), src_len.append(batch['src_len'])
  greedy, beam, src, src_len = (np.concatenate(x)[:n] for x in (greedy, beam, src, src_len))
  refs = [t for _, t in pairs[:n]]
  hyps = {'greedy': [data.decode(t) for t in greedy], 'beam': [data.decode(t) for t in beam]}
  # a config.json from before the field: sacrebleu's default
  tokenize = dc.get('bleu_tokenize', '13a')
  scores = {k: translation.corpus_scores(h, refs, tokenize) for k, h in hyps.items()}
  settings = {'split': split, 'sentences': n, 'max_len': max_len, 'beam_size': dc.beam_size,
              'length_penalty': dc.length_penalty, 'eos_id': eos, 'bleu_tokenize': tokenize}
  metrics = {'bleu_greedy': scores['greedy']['bleu'], 'chrf_greedy': scores['greedy']['chrf'],
             'bleu_beam': scores['beam']['bleu'], 'chrf_beam': scores['beam']['chrf'],
             'beam_size': float(dc.beam_size), 'length_penalty': float(dc.length_penalty)}
  if jax.process_index() != 0:
    return metrics

  by_length = {k: translation.bleu_by_length(src_len.tolist(), h, refs, tokenize)
               for k, h in hyps.items()}
  with open(os.path.join(workdir, 'bleu_by_length.json'), 'w') as f:
    json.dump({'bucket_width_tokens': 5, **by_length}, f, indent=2)
  samples = [{'src': pairs[i][0], 'ref': refs[i], 'greedy': hyps['greedy'][i],
              'beam': hyps['beam'][i]} for i in range(min(n, 8))]
  with open(os.path.join(workdir, 'translation_eval.json'), 'w') as f:
    json.dump({'decoding': settings, 'greedy': scores['greedy'], 'beam': scores['beam'],
               'samples': samples},
              f, indent=2, ensure_ascii=False)

  k = min(n, dc.attention_maps)
  if k:
    tgt_out = np.asarray(greedy[:k])
    tgt_in = np.concatenate([np.full((k, 1), bos, np.int32), tgt_out[:, :-1]], axis=1)
    outputs, sown = sown_weights(model, {'params': params}, src[:k], tgt_in)
    cross = sorted((p for p in sown if p.endswith('cross_attn')), key=layer_order)
    w = None
    # an RNN decoder's additive/multiplicative attention
    if isinstance(outputs, tuple) and outputs[1] is not None:
      w = np.asarray(outputs[1])
    elif cross:
      # the Transformer: its top decoder block's encoder-decoder attention, averaged over the heads
      w = sown[cross[-1]].mean(axis=1)
    if w is not None:
      src_tok, tgt_tok = data.meta['src_tokenizer'], data.meta['tgt_tokenizer']
      maps = []
      for i in range(k):
        S = int(src_len[i])
        ids = translation.cut_at_eos(tgt_out[i])
        T = min(len(ids) + 1, max_len)  # the tokens and EOS
        tgt_pieces = (tgt_tok.pieces(ids) + ['</s>'])[:T]
        maps.append((w[i, :T, :S], src_tok.pieces(src[i, :S].tolist()), tgt_pieces))
      translation.save_attention_maps(workdir, maps)
  return metrics
