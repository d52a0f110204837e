"""Language models as the tasks use them, above :mod:`toolkit.nn`: a loaded model with its tokenizer that
continues prompts (``generator``), its training on the shared trainer and its perplexities (``training``),
and texts as token streams (``corpus``). The generate task runs them on prompts, the chat task on
conversations."""
