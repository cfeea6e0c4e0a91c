"""A comment event -> the rules -> at most one champion change -> one answer in the thread.

The handler is the one way in, for every delivery path (`serve`, `handle`, `poll`, `comment`);
the MLflow alias report is the other job done here. Imports only the shared modules of `bot`
(docs/design.md, "Layout and the dependency rule").
"""
