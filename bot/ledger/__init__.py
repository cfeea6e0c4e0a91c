"""The audit ledger: the store of MLflow runs (`store`), one entry (`entry`), the chain of a
model's signed entries (`chain`), where a model's ledger lives (`setup`), the operator's import
of history from before keys (`importing`), and the drift question (`drift`)."""
