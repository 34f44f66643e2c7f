-- The floor of the `each` benchmark (bench/shapes.py, docs/performance.md): the bare GROUP BY
-- key over the list-valued ledger's elements (one sequential scan, each row's jsonb list
-- unnested, one hash aggregate). The tool's dry run under bench/each.toml reads the same
-- elements and must stay within 2x of this.
set work_mem = '64MB';
select item->>'balance_id', sum((item->>'value')::numeric), count(*)
from deduction_events cross join lateral jsonb_array_elements(deductions) as item
group by 1;
