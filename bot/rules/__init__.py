"""The rules a champion change is checked against, written once for every stage that states or
applies them: who may approve and the words for it (`approvers`), the hard gates (`gates`)."""
