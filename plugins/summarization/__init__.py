"""Built-in summarization plugin: the task ``summarize``.

Registered through the same hook as any third-party plugin.
"""

from toolkit import hookimpl

from plugins.summarization.lead import LeadSummarizer


@hookimpl
def register_engines(register):
    register("summarize", "lead", LeadSummarizer, LeadSummarizer.description)
