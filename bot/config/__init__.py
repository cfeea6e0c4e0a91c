"""Configuration: params.yaml (`params`), several models (`model_set`), what a value may be
(`checks`) and what comes from the environment (`settings`)."""
