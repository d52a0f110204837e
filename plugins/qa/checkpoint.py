"""The "bert" question-answering engine: BERT and DistilBERT question-answering checkpoints made elsewhere.

The model is a Hugging Face folder (config.json, model.safetensors, the
tokenizer's files), or a model id in the local Hugging Face cache, with a
span head (``qa_outputs``: a start and an end score per token). It reads
the passages the common QA pipeline picks (BM25 over a long context, as
every engine of the task), each as the pair question + passage, in windows
of the model's positions when a passage is longer; answers are character
offsets in the user's text, found through the tokenizer's offsets. It is
not trained here (`nlp-tool evaluate qa` scores it).
"""

from __future__ import annotations

from typing import Any

from toolkit_plugins.qa.common import Job, QAEngine, Span
from toolkit.checkpoint_engines import LoadsCheckpoint


class CheckpointReader(LoadsCheckpoint, QAEngine):
    """Extractive question answering with a BERT-family checkpoint on the compiled kernels."""

    name = "bert"
    description = "BERT/DistilBERT question-answering checkpoints (a Hugging Face folder), without PyTorch."
    checkpoint_types = ("bert", "distilbert")
    checkpoint_head = "a question-answering head"

    def _load(self) -> tuple[Any, dict]:
        from toolkit.nn.bert import BertReader

        folder = self.checkpoint_folder()
        reader = BertReader.from_pretrained(folder)
        return reader, self.checkpoint_metadata(folder, reader.encoder.args.kind, context=reader.encoder.args.max_len)

    def _candidates(self, jobs: list[Job]) -> list[list[Span]]:
        # The answer length is counted in the model's subwords here; the span head is the model's own.
        reader, limit, top_k = self._loaded()[0], self.settings["max_answer_tokens"], self.settings["top_k"]
        found = []
        for job in jobs:
            spans = []
            for passage in job.passages:
                text = job.context[passage.start:passage.end]
                spans += [Span(passage.start + start, passage.start + end, score)
                          for start, end, score in reader.spans(job.question, text, limit, top_k)]
            found.append(spans)
        return found

    def _offsets(self, job: Job, span: Span) -> tuple[int, int]:
        return span.first, span.last
