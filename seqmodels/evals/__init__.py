"""Evaluations a task adds after training, named by the models' registry entries
(`Entry.after_training`)."""

from seqmodels.evals import translation, word_vectors

# name -> (model, entry.decode_step, params, data, config, workdir) -> metrics merged into the final
# eval's
AFTER_TRAINING = {'translation': translation.evaluate, 'word_vectors': word_vectors.write_vectors}
