"""promotion-bot: moves an MLflow model's champion alias through reviewed forge requests."""

__version__ = "0.1.0"
