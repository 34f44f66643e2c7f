-- Which shard of a hash-distributed balance table holds each key (docs/citus.md): the write
-- path locks a batch one shard at a time, since Citus runs FOR UPDATE only on one shard.
SELECT pg_catalog.get_shard_id_for_distribution_column(to_regclass(%(table)s), k.key) AS shard,
       k.key::text
FROM unnest(%(keys)s::text[]::{key_type}[]) AS k (key)
ORDER BY k.key
