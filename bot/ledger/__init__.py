"""The audit ledger: the store of MLflow runs (`store`), one entry (`entry`), the chain of a
model's signed entries (`chain`), where a model's ledger lives and the import of older history
(`setup`), and the drift question (`drift`)."""
