"""Translation with RNN encoder-decoders: context vector vs attention (Sutskever, Cho, Bahdanau,
Luong).

get_config('SIZE,VARIANT'), both optional (default 'cpu,gru_additive'):
  SIZE     cpu   toy_translation (generated locally: word cipher with adjective-noun reordering),
           ~1-2 min on CPU
           full  ted_hrlr_translate/pt_to_en (TFDS download), sentencepiece 8k shared, 2 x 512
                 bidirectional
  VARIANT  lstm          LSTM encoder-decoder, the final state is the context (Sutskever et al.
           2014)
           gru_context   GRU, the context feeds every decoder step and the output (Cho et al. 2014)
           gru_additive  GRU + additive attention (Bahdanau et al. 2015)
           lstm_general  LSTM + multiplicative 'general' attention (Luong et al. 2015)
           transformer   the encoder-decoder Transformer (Vaswani et al. 2017), post-LN; on CPU it
                         needs more steps than the RNNs (it stays flat for ~400 steps before it
                         learns the task)
The sweep experiments/sweeps/translate.py runs the five variants on the same data; BLEU by source
length lands in each run's bleu_by_length.json (the Bahdanau et al. figure), attention heatmaps in
attention_maps.npz.
"""

from experiments.configs.base import get_base_config

VARIANTS = ('lstm', 'gru_context', 'gru_additive', 'lstm_general', 'transformer')


def variant_overrides(variant: str, size: str = 'cpu') -> dict:
  """The config fields that make `variant` (the same for a config arg and for a sweep trial)."""
  rnn = lambda name, attention, context: {'model.name': name, 'model.attention': attention,
                                          'model.feed_context': context}
  if variant == 'transformer':
    if size == 'cpu':
      return {'model.name': 'transformer', 'model.width': 96, 'model.layers': 2, 'model.heads': 4,
              'optim.lr': 1e-3, 'optim.warmup_steps': 100, 'train.num_steps': 1500}
    return {'model.name': 'transformer', 'model.width': 512, 'model.layers': 6, 'model.heads': 8,
            'model.dropout': 0.1, 'optim.lr': 7e-4, 'optim.warmup_steps': 4000}
  return {'lstm': rnn('seq2seq_lstm', 'none', False),
          'gru_context': rnn('seq2seq_gru', 'none', True),
          'gru_additive': rnn('seq2seq_gru', 'additive', False),
          'lstm_general': rnn('seq2seq_lstm', 'general', False)}[variant]


def get_config(arg: str = ''):
  parts = [p for p in arg.split(',') if p]
  size = next((p for p in parts if p in ('cpu', 'full')), 'cpu')
  variant = next((p for p in parts if p in VARIANTS), 'gru_additive')
  unknown = [p for p in parts if p not in VARIANTS and p not in ('cpu', 'full')]
  if unknown:
    raise ValueError(
        f'translate.py:{arg}: unknown {unknown}; use cpu|full and one of {", ".join(VARIANTS)}')
  c = get_base_config()
  c.data.tokenizer, c.data.shared_vocab = 'unigram', True
  if size == 'cpu':
    c.data.name = 'toy_translation'
    c.data.num_symbols = 40                 # words in the toy lexicon (a quarter are "adjectives")
    c.data.min_len, c.data.max_len = 3, 20  # words per sentence: long enough for the context vector
                                            # to strain
    c.data.num_train, c.data.num_validation, c.data.num_test = 20_000, 400, 400
    # every word becomes one piece: seq_len = max_len + EOS + slack
    c.data.vocab_size, c.data.seq_len = 128, 24
    c.model.width, c.model.embed, c.model.layers = 64, 32, 1
    c.optim.lr, c.optim.warmup_steps = 1e-2, 30
    c.train.num_steps, c.train.batch_size = 400, 64
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 50, 400, 400
    c.decode.beam_size, c.decode.num_examples = 4, 400
  else:
    c.data.name = 'ted_hrlr_translate/pt_to_en'
    c.data.vocab_size, c.data.seq_len = 8000, 64
    c.model.width, c.model.embed, c.model.layers = 512, 256, 2
    c.model.encoder_bidirectional = True
    c.model.dropout = 0.2
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1000
    c.train.num_steps, c.train.batch_size = 30_000, 128
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 100, 2000, 2000
    c.train.dtype = 'bfloat16'
    c.decode.beam_size, c.decode.num_examples = 4, 0
  for key, value in variant_overrides(variant, size).items():
    section, field = key.split('.')
    c[section][field] = value
  return c
