"""A word LSTM LM with random embeddings beside one started from word2vec vectors (trained on, and
frozen), and the n-gram: what pre-trained word vectors change, overall and on rare words.

  python launch.py --config=experiments/configs/word2vec.py --config.data.min_count=2 \
      --config.data.path=../shared/data/tinyshakespeare.txt --workdir=runs/w2v_shakespeare
  python launch.py --config=experiments/configs/word_lm.py:small --config.model.embed=100 \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/pretrained_vectors.py:runs/w2v_shakespeare \
      --workdir=runs/pretrained_vectors_small
  python -m seqmodels.analysis.rare_words --workdir=runs/pretrained_vectors_small/<trial> ...

The argument is the vectors source (a word2vec run's workdir or a vectors file); model.embed must
be its width. The word2vec run reads the same file's train split only (both split it 90/10 at the
same character), so no validation word leaks into the vectors.
"""


def get_sweep(arg: str = ''):
  if not arg:
    raise ValueError('pretrained_vectors.py needs the vectors: --sweep=experiments/sweeps/'
                     'pretrained_vectors.py:RUN_OR_FILE (a word2vec run\'s workdir or a vectors '
                     'file)')
  return [{'model.name': 'ngram', 'model.order': 3},
          {'model.name': 'lstm'},
          {'model.name': 'lstm', 'model.pretrained_vectors': arg},
          {'model.name': 'lstm', 'model.pretrained_vectors': arg, 'optim.freeze': 'embed'}]
