"""Built-in summarization plugin: the task ``summarize``.

Registered through the same hook as any third-party plugin. The first engine
registered is the task's default.
"""

from toolkit import hookimpl

from toolkit_plugins.summarization.centrality import CentralitySummarizer
from toolkit_plugins.summarization.common import CONTRACT
from toolkit_plugins.summarization.lead import LeadSummarizer
from toolkit_plugins.summarization.trained import TrainedSummarizer


@hookimpl
def register_tasks(register):
    register(CONTRACT)


@hookimpl
def register_engines(register):
    # "trained" with its shipped model beats "centrality" on both test corpora
    # (docs/summarization.md), so it is the default.
    register("summarize", "trained", TrainedSummarizer, TrainedSummarizer.description)
    register("summarize", "centrality", CentralitySummarizer, CentralitySummarizer.description)
    register("summarize", "lead", LeadSummarizer, LeadSummarizer.description)
