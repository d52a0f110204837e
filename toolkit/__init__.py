"""nlp-tool: a plugin-based NLP task toolkit with a C-accelerated core."""

__version__ = "0.1.0"
