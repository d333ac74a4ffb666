"""Imported once by the batch's fork server, so that every grading worker forked from it starts warm.

It loads nbgrader and the grading steps, and compiles the IPython lexer, which the HTML
feedback needs: done once here instead of in each worker (about 0.4 s a submission).
"""
from pygments import highlight
from pygments.formatters import HtmlFormatter
from IPython.lib.lexers import IPython3Lexer

import autograde.worker  # noqa: F401  (nbgrader, nbclient, jupyter_client)

highlight("warm = up", IPython3Lexer(), HtmlFormatter())
