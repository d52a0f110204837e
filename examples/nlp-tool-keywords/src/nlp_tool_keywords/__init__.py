"""nlp-tool-keywords: RAKE keyword extraction as an nlp-tool plugin.

The package is laid out the way a plugin author might copy it:

- ``rake.py``      the algorithm, plain Python, no nlp-tool import;
- ``stopwords.py`` the word list that splits text into candidate phrases;
- ``engine.py``    the engine class nlp-tool runs (options, results, stamp);
- ``plugin.py``    the hook implementation named by the entry point.
"""

__version__ = "0.1.0"
