"""Hand-written stand-ins for the bot's collaborators: the stateful GitLab and GitHub REST fakes
(on `responses`, or behind a loopback HTTP server for separate processes) and an in-memory
registry for the rules. MLflow itself is never faked: tests use a real `mlflow server`."""
