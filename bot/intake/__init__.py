"""A delivery arrives -> verified, parsed, bound to this bot, de-duplicated, queued -> handled.

Webhooks (`serve`), an Actions event file (`handle`), polling (`poll`) and the local platform's
`comment` all end in `bot.commands`. Imports `bot.commands` and the shared modules, never
`bot.ci` (docs/design.md, "Layout and the dependency rule").
"""
