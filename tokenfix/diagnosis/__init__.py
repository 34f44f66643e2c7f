"""Why a balance drifted: one owner's report, the likely causes, and the causes of a whole fleet
(docs/balance-model.md, docs/commands.md)."""
