-- The floor of the periods benchmark (bench/shapes.py, docs/performance.md): the bare GROUP BY
-- key over the ledger of examples/periods, one sequential scan and one hash aggregate. The
-- tool's periods dry run reads the same rows and must stay within 2x of this.
set work_mem = '64MB';
select entitlement_id, sum(value), count(*) from events group by entitlement_id;
