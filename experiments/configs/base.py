"""Every config field with its default; experiment configs start from here and change what they
need."""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                       # parameter init, dropout and data order

  c.model = ml_collections.ConfigDict()
  c.model.name = 'lstm'            # rnn | lstm | gru | gpt | lm | bert | lstm_classifier |
                                   # transformer | ...
  c.model.width = 128              # D: hidden units (recurrent) or model width (Transformer)
  c.model.layers = 2               # N: stacked layers / blocks
  c.model.heads = 4                # H: attention heads (Transformer)
  c.model.ffn = 0                  # F: FFN width (Transformer); 0 means 4 * width
  c.model.embed = 0                # E: embedding width (recurrent); 0 means width
  c.model.dropout = 0.0
  c.model.forget_bias = 1.0        # LSTM forget-gate bias at init
  c.model.unroll = 0               # lax.scan unroll (recurrent speed knob; same function); 0 =
                                   # auto: 8 on GPU/TPU, 1 on CPU
                                   # (seqmodels.layers.recurrent.default_unroll)
  c.model.min_scan = 'auto'        # mingru/minlstm training: parallel (associative scan) |
                                   # sequential | auto (parallel on GPU/TPU, sequential on CPU:
                                   # seqmodels.layers.minrnn.default_parallel)
  c.model.recurrence = 'auto'      # how rnn/lstm/gru layers run (speed knob; the same function):
                                   # scan (lax.scan, autodiff) | hoisted (lax.scan; the recurrent
                                   # weights' gradient as one matmul after the backward loop, as
                                   # cuDNN does) | cudnn (jax.experimental.rnn: float32 LSTMs on a
                                   # CUDA GPU) | auto (hoisted on CPU, scan on GPU/TPU:
                                   # seqmodels.layers.recurrent.default_recurrence)
  c.model.recurrent_init_scale = 1.0  # rnn/lstm/gru: multiplies the orthogonal recurrent init (> 1:
                                      # exploding)
  c.model.tie_embeddings = False   # recurrent LMs: the output layer is the embedding (Press & Wolf
                                   # 2017); the top states are projected to model.embed where it
                                   # differs from width (GPT ties always)
  c.model.order = 3                # ngram: n, the longest n-gram counted (context of n - 1 tokens)
  c.model.discount = 0.0           # ngram: Kneser-Ney discount D in (0, 1]; 0 means modified KN
                                   # (D1, D2, D3+ estimated per order from counts-of-counts, Chen &
                                   # Goodman 1998)
  c.model.pre_ln = False           # transformer: LayerNorm before each sublayer (True) or after
                                   # (False, the paper)
  c.model.share_embeddings = True  # transformer: one embedding for source, target and output layer;
                                   # needs one vocabulary (data.shared_vocab=True, or byte tokens):
                                   # set False for two
  c.model.attention = 'none'       # seq2seq_*: none | additive (Bahdanau) | general | dot (Luong)
  c.model.attention_width = 0      # seq2seq_*: additive attention hidden units; 0 means width
  c.model.encoder_bidirectional = False  # seq2seq_*: bidirectional encoder, bridged to the decoder
                                         # size
  c.model.feed_context = False     # seq2seq_*: the context vector feeds every decoder step (Cho et
                                   # al. 2014)
  c.model.teacher_forcing = 1.0    # seq2seq_*: P(true previous token) in training; < 1 is scheduled
                                   # sampling
  c.model.cell = 'lstm'            # elmo, elmo_classifier: rnn | lstm | gru | mingru | minlstm of
                                   # the biLM
  c.model.pretrained_vectors = ''  # word-level models: a word vectors file (word2vec text or .bin,
                                   # GloVe .txt, fastText .vec) or a word2vec run's workdir, whose
                                   # vectors start the embedding (its width must be theirs); the
                                   # words it lacks keep their init; optim.freeze='embed' fixes them
  c.model.pool = 'cls'             # bert classifier reads: cls (BERT's pooler tanh(W h_[CLS])) |
                                   # mean (of tokens)
  # lm, the backbone of sequence mixers (seqmodels/models/lm.py, seqmodels/layers/mixers):
  c.model.mixer = 'attention'      # every block's mixer: attention | rnn | lstm | gru | mingru |
                                   # minlstm | ...
  c.model.pattern = ''             # a repeating pattern of mixers instead, e.g.
                                   # 'rglru,rglru,attention'
  c.model.norm = 'rmsnorm'         # layernorm | rmsnorm
  c.model.mlp = 'swiglu'           # after each mixer: gelu | relu | swiglu | geglu | none (width
                                   # model.ffn; 0: 4 * width, or 8/3 * width for the gated ones,
                                   # rounded up to 8)
  c.model.position = 'auto'        # learned | rope | none | auto (rope where a block attends, else
                                   # none)
  c.model.bias = False             # biases in the projections and LayerNorms
  c.model.d_state = 16             # N of the state-space mixers
  c.model.expand = 2               # inner width / width of the gated recurrent mixers
  c.model.conv = 4                 # causal depthwise convolution width of the recurrent mixers
  c.model.window = 0               # attention mixers: > 0 attends to the last `window` positions
                                   # only
  c.model.chunk = 64               # chunked forms (linear attention's, Mamba's fused scan): steps
                                   # per chunk
  c.model.scan = 'auto'            # how linear recurrences run (a speed knob; the same function):
                                   # sequential | associative | chunked | auto (the platform's)
  # A size instead of a width (seqmodels/models/size.py), at most one of the two; 0: model.width.
  c.model.params = 0               # > 0: the width (a multiple of the model's step: heads, or 4)
                                   # whose non-embedding parameters come closest to this
  c.model.flops_per_token = 0.0    # > 0: the width whose training FLOPs per token come closest
  # gpt, bert: what a pre-trained checkpoint (seqmodels/hf: Hugging Face's GPT-2, BERT) sets
  c.model.activation = 'gelu'      # FFN activation: gelu (tanh approximation: GPT-2's gelu_new) |
                                   # gelu_erf (exact: BERT's) | relu
  c.model.norm_eps = 1e-6          # epsilon of the norms (GPT-2: 1e-5, BERT: 1e-12; lm: all but
                                   # Mamba-2's gated one)
  c.model.positions = 0            # learned positions; 0 means data.seq_len (a pre-trained table
                                   # may be longer than the windows)
  c.model.vocab_size = 0           # the vocabulary the weights were made for (an imported model's);
                                   # 0: the data's. Else the data's tokenizer must have this size
  # lm, what pre-trained checkpoints need (seqmodels/hf sets them on import; off by default):
  c.model.kv_heads = 0             # attention: key/value heads, each shared by heads / kv_heads
                                   # query heads (grouped-query; 1: multi-query); 0 means heads
  c.model.qkv_bias = True          # attention, with model.bias: biases on queries, keys and values
                                   # too (False: the output projection's only, as RecurrentGemma)
  c.model.rope_base = 10000.0      # RoPE's theta
  c.model.rope_fraction = 1.0      # share of each head's dims RoPE rotates (RecurrentGemma: 0.5)
  c.model.gated_norm_eps = 1e-5    # mamba2: its gated RMSNorm's epsilon (transformers: norm_eps)
  c.model.tied_head = True         # the output layer is the token embedding; False: a [width,
                                   # vocab] matrix of its own (Llama's untied lm_head)
  c.model.embed_scale = 1.0        # multiplies the token embeddings (Gemma: sqrt(width))
  c.model.logit_cap = 0.0          # > 0: logits soft-capped to cap * tanh(logits / cap)
  c.model.ssm_groups = 1           # mamba2: groups of heads sharing one B and C (n_groups)
  c.model.lru_width = 0            # rglru: width of the recurrence; 0 means width

  c.data = ml_collections.ConfigDict()
  c.data.name = 'copy'             # copy | reverse | sort | adding | text | tiny_shakespeare | lm1b
                                   # | mlm | classify
  c.data.min_len = 1               # synthetic tasks: sequence length range
  c.data.max_len = 16
  c.data.num_symbols = 8           # synthetic alphabet size
  c.data.num_train = 20_000
  c.data.num_validation = 1_000
  c.data.num_test = 1_000
  c.data.seed = 0                  # generation seed of synthetic data
  c.data.path = ''                 # text, mlm, classify: a local file (split 90/10), or a path with
                                   # '{split}', one file per split: train, validation (or
                                   # valid/val/dev), test optional ('wiki.{split}.tokens')
  c.data.seq_len = 128             # text LMs: window length
  c.data.stride = 0                # text LMs: window stride; 0 means seq_len
  c.data.byte_level = False        # text: tokens are UTF-8 bytes + 4 specials (the ids of lm1b, mlm
                                   # and classify data, so a model pre-trained on the file fits
                                   # them) instead of its characters
  # translation (toy_translation | parallel_text | wmt14_translate/de-en |
  # ted_hrlr_translate/pt_to_en): toy_translation uses min_len/max_len (words), num_symbols (lexicon
  # size), num_*, seed; seq_len = max tokens
  c.data.src_path = ''             # parallel_text: source file per split, with '{split}'
                                   # ('corpus/{split}.de')
  c.data.tgt_path = ''             # parallel_text: target file per split ('corpus/{split}.en')
  c.data.tokenizer = 'auto'        # text: char | byte (UTF-8) | word (whitespace-separated; a
                                   # newline is '<eos>') | bpe | unigram (sentencepiece trained on
                                   # the train split, lossless); translation: unigram | bpe | char |
                                   # byte; auto: char for text (byte with byte_level), unigram for
                                   # translation; text: hf:DIR, the tokenizer.json of a Hugging
                                   # Face checkpoint (seqmodels/hf), its ids the model's
  c.data.vocab_size = 8000         # bpe, unigram: sentencepiece vocabulary size (a soft limit)
  c.data.min_count = 1             # word: training occurrences a word needs to be in the vocabulary
                                   # (else <unk>)
  c.data.shared_vocab = True       # translation: one vocabulary for source and target
  c.data.source = ''               # mlm: '' (lines of data.path) | lm1b | wiki40b/en; classify: ''
                                   # (TSV/CSV at data.path) | shuffled / scrambled (real lines of
                                   # data.path vs lines with inner words reordered / words' inner
                                   # letters reordered) | glue/sst2 | imdb_reviews; TFDS sources
                                   # read at most num_train / num_validation examples
  c.data.mask_prob = 0.15          # mlm: share of tokens chosen for prediction (80% [MASK], 10%
                                   # random, 10% kept)
  # word2vec (data.name='word2vec': data.path read as words, data.min_count of them kept):
  c.data.window = 5                # W: context words each side of a center at most (each center
                                   # draws its own reach in [1, W]: the dynamic window)
  c.data.negatives = 5             # K: noise words per (center, context) pair
  c.data.subsample = 1e-3          # frequent-word subsampling threshold t (gensim's `sample`);
                                   # 0 keeps every word
  c.data.ns_exponent = 0.75        # noise distribution: unigram counts to this power
  # recall tasks (mqar | selective_copying | induction_heads, seqmodels/data/recall.py):
  # data.seq_len is the training length, data.num_symbols the vocabulary (MQAR's keys and values,
  # or the task's symbols with its special tokens)
  c.data.kv_pairs = 4              # mqar: key-value pairs per sequence (4 x kv_pairs <= seq_len)
  c.data.power_a = 0.01            # mqar: query gaps drawn with p(g) ~ (g + 1)^(a - 1) (Zoology)
  c.data.random_non_queries = False  # mqar: filler tokens uniform over the vocabulary (Zoology's
                                     # generator default) instead of 0 (its figure 2)
  c.data.copy_tokens = 16          # selective_copying: data tokens to reproduce after the markers
  c.data.eval_lens = ''            # recall tasks: lengths ('512,1024') the trained model is also
                                   # tested at (summary eval recall_accuracy_len<n>), on num_test
                                   # examples each
  c.data.data_dir = ''             # where TFDS datasets are built and read; '' means
                                   # ~/.cache/seqmodels/tfds

  c.decode = ml_collections.ConfigDict()  # seq2seq: decoding after training -> BLEU/chrF, attention
                                          # maps
  c.decode.split = 'validation'    # validation | test
  c.decode.num_examples = 0        # sentences translated; 0 means the whole split
  c.decode.batch_size = 0          # 0 means train.batch_size
  c.decode.max_len = 0             # tokens generated at most; 0 means data.seq_len
  c.decode.beam_size = 4
  c.decode.length_penalty = 0.6    # GNMT alpha: beams ranked by log p / ((5 + |Y|) / 6)^alpha
  c.decode.attention_maps = 4      # sentences whose attention weights go to attention_maps.npz
  c.decode.bleu_tokenize = '13a'   # sacrebleu's BLEU tokenizer: 13a (its default, WMT's) | intl |
                                   # zh | ja-mecab | ko-mecab | char | none | flores101 | ...: zh,
                                   # ja-mecab or char for targets written without spaces, which
                                   # score BLEU 0 under 13a

  c.optim = ml_collections.ConfigDict()
  c.optim.name = 'adamw'           # adamw | sgd | momentum (SGD with heavy-ball momentum b1)
  c.optim.lr = 3e-3                # peak learning rate
  c.optim.warmup_steps = 100
  c.optim.min_lr_ratio = 0.1       # the schedule decays to lr * min_lr_ratio
  c.optim.b1 = 0.9                 # Adam's first-moment decay; the momentum of 'momentum'
  c.optim.b2 = 0.99
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.01      # AdamW, on matrices only
  c.optim.clip_norm = 1.0          # clip_by_global_norm; 0 disables
  c.optim.freeze = ''              # comma-separated parameter paths ('encoder,embed') that get no
                                   # update; each must name parameters of the model (the launcher
                                   # lists its top-level ones)
  c.optim.plateau_decay = 0.0      # > 0: after each evaluation whose loss is not below the best so
                                   # far, the learning rate (on top of its schedule) is multiplied
                                   # by this (0.25: PyTorch's word_language_model divides it by 4);
                                   # 0 disables

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 1_000
  c.train.num_epochs = 0.0         # > 0: train this many epochs of the train split instead
                                   # (num_steps is then its steps, rounded up: summary.json and
                                   # config.json record them)
  c.train.batch_size = 64          # global, split over devices and processes
  c.train.grad_accum = 1           # micro-batches per step, run one after another (memory of one):
                                   # the same update as the whole batch at once; batch_size must
                                   # split into them
  c.train.dtype = 'auto'           # compute dtype: float32 | bfloat16 | auto (bfloat16 on GPU/TPU,
                                   # float32 on CPU); parameters are always float32
  c.train.log_every = 50
  c.train.eval_every = 500         # steps between evaluations; 0 means once an epoch (one epoch's
                                   # steps, rounded)
  c.train.eval_batches = 0         # 0 evaluates the whole validation split
  c.train.eval_batch_size = 0      # rows of an evaluation batch (under carry_state: the streams a
                                   # split is read as; PyTorch's word_language_model evaluates on
                                   # 10); 0 means batch_size
  c.train.checkpoint_every = 500   # steps between checkpoints; 0 means once an epoch
  c.train.keep_checkpoints = 3
  c.train.keep_best = False        # also keep the best evaluation's parameters
                                   # (workdir/best_checkpoint): the analysis CLIs read them with
                                   # --checkpoint=best
  c.train.test_eval = False        # after training, evaluate on the data's test split too (summary
                                   # 'test'): the best evaluation's parameters with keep_best, else
                                   # the final ones
  c.train.fsdp = False             # shard large parameters and optimizer state over devices (ZeRO-3
                                   # style)
  c.train.fsdp_min_size = 2**18    # arrays smaller than this stay replicated under fsdp
  c.train.init_from = ''           # workdir of a finished run: start from its parameters where
                                   # names and shapes match
  # Compute and observability (seqmodels/train/mfu.py, metrics.py):
  c.train.peak_flops = 0.0         # FLOP/s of one device that summary.json's mfu divides by; 0:
                                   # the table's figure for a known GPU/TPU, else a timed matmul's
  c.train.profile_steps = ''       # a jax.profiler trace of these steps into workdir/profile
                                   # ('10', '10,11' or '10-12'; TensorBoard's profile tab); '' none
  c.train.layer_norms = False      # each layer's parameter, gradient and update norms in the train
                                   # metrics (param_norm/<layer>, ...; means since the last log)
  c.train.carry_state = False      # recurrent LMs on running text: batch_size contiguous streams,
                                   # each window starting from the state the last one ended in
                                   # (truncated BPTT, as Zaremba et al. 2014 and PyTorch's
                                   # word_language_model), evaluation likewise; the n-gram's
                                   # contexts reach back across windows

  # comparisons (issue 26): context-controlled evaluation (seqmodels/train/evaluate.py), the wsd
  # schedule and its branches (optim.py), a held-out test part; see docs/protocol.md
  c.train.eval_mode = 'auto'       # running text: windows (non-overlapping: a token sees on average
                                   # half a window) | strided (a window every eval_stride tokens,
                                   # each token scored once with >= seq_len - eval_stride tokens of
                                   # context) | carried (streams with the state carried: needs
                                   # carry_state) | auto (carried under carry_state, else windows)
  c.train.eval_stride = 0          # strided: tokens between window starts; 0 means seq_len // 4
  c.train.eval_lengths = ''        # after training: also the loss at these multiples of seq_len
                                   # ('2,4,8'; refused for learned positions), with the loss by
                                   # position, in context.json
  c.train.branch_from = ''         # wsd: the workdir of a longer wsd run (same lr, warmup, decay
                                   # fraction): start from its checkpoint where this run's decay
                                   # begins, so one run is cooled down at several budgets
  c.optim.schedule = 'cosine'      # after warmup: cosine | linear (word2vec's decay) | wsd (stable
                                   # at lr, then a linear decay to lr * min_lr_ratio over the last
                                   # decay_fraction of the steps)
  c.optim.decay_fraction = 0.2     # wsd: the share of num_steps that decays
  c.data.test_from_validation = False  # text with no test file: the second half of the
                                       # validation text is the test split (a comparison selects
                                       # on validation and reports on test)

  c.distributed = ml_collections.ConfigDict()
  c.distributed.coordinator_address = ''  # host:port of process 0 for a multi-process run
  c.distributed.num_processes = 1
  c.distributed.process_id = 0
  c.distributed.auto = False       # jax.distributed.initialize() with cluster auto-detection
                                   # (SLURM, TPU, ...)

  # --launcher=slurm: each trial of a sweep a SLURM job, submitted through submitit
  # (seqmodels/slurm.py, docs/sweeps.md); a sweep may set these per trial. Not part of what a
  # rerun must match: a trial resumes under other resources.
  c.slurm = ml_collections.ConfigDict()
  c.slurm.partition = ''           # '' : the cluster's default partition
  c.slurm.account = ''             # '' : your default account
  c.slurm.nodes = 1                # nodes per trial; > 1 starts one process per node, joined by
                                   # jax.distributed's SLURM detection
  c.slurm.gpus_per_node = 0
  c.slurm.cpus_per_task = 0        # CPUs of each node's process; 0: the partition's default
  c.slurm.mem_gb = 0               # memory per node; 0: the partition's default
  c.slurm.time_min = 60            # a job's time limit, in minutes
  c.slurm.signal_delay_s = 120     # SLURM signals a job this long before its time limit: the
                                   # trial saves a checkpoint and its job is requeued
  c.slurm.max_requeues = 10        # requeues at the time limit before a trial's job gives up (a
                                   # rerun submits it again)
  c.slurm.sbatch = ''              # more sbatch options, e.g. '--qos=high --constraint=h100'
  c.slurm.poll_s = 30.0            # --wait: seconds between two queries of the queue
  return c
