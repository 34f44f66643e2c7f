-- One row deleted as an API role would delete it, in a savepoint always rolled back.
DELETE FROM {relation} WHERE {id} = %(id)s
