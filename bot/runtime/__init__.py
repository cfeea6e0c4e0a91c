"""What a run holds: the context of a command (`context`: params, settings and the clients built
on first use), the shared Redis store (`shared_store`) and the bot's request threads on the
forge (`request_threads`)."""
