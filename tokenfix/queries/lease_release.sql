-- Give the writer lease back, if it is still ours.
DELETE FROM {lease} WHERE name = 'writer' AND holder = %(holder)s
