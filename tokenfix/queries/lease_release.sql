-- Give the writer lease back, if it is still ours (with the row naming our balance table).
DELETE FROM {lease} WHERE holder = %(holder)s
