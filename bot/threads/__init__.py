"""What the bot reads and writes in forge threads, platform-neutral: the thread and comment
shapes every adapter produces (`thread`), the hidden markers (`markers`) and the command forms
people type (`command_forms`). Imports nothing else of the bot."""
