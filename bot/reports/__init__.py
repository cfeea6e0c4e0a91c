"""What people read back: `status` (each model's aliases and requests) and `audit` (`history`
and `verify` over the ledger)."""
