-- One row's column changed as an API role would change it, in a savepoint always rolled back.
UPDATE {relation} SET {column} = %(value)s WHERE {id} = %(id)s
