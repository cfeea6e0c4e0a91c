"""The MLflow Model Registry: the client (`client`, the only MLflow importer), one read of a
model (`model_state`), the tags the bot keeps (`tags`), versions and runs (`versions`) and the
records read from them (`records`)."""
