"""Where the balances and the ledger live (docs/mapping.md): the mapping's types, the TOML file,
which mapping is in effect, and `init`'s draft."""
