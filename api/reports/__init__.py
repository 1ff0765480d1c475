"""The report page and its PDF (issue 20): a person's figures over a period, for reading and
printing.

What belongs here: the Jinja2 templates (autoescaped), the SVG chart builders as pure
functions (figures in, markup out), and the PDF renderer. The rule: a report reads its figures
through `api.analytics` and never writes SQL of its own; routes call in and stay thin.
"""
