"""The rules a champion change is checked against, written once for every stage that states or
applies them: the hard gates (`gates`)."""
