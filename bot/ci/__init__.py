"""Stage by stage in CI: a trained run -> a registered version -> `@candidate` -> a request thread.

`register`, `gate` and `request` run in the training pipeline; none of them moves the champion.
Imports only the shared modules of `bot` (docs/design.md, "Layout and the dependency rule").
"""
