-- sqlite_churn - insert and query 10^6 rows in an in-memory database.
-- SQLite takes every page, row buffer and sorter chunk from malloc.
-- The row count comes from the `params` table the runner prepends, so the
-- same file serves the quick and the full run. Output is deterministic.
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, note TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT n FROM params))
INSERT INTO t SELECT x, printf('%08x', (x * 2654435761) % 4294967296),
                     (x * 7919) % 100003, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26)
FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(v) FROM t WHERE k BETWEEN '10000000' AND '4fffffff';
SELECT v % 97 AS g, count(*), max(note) FROM t GROUP BY g ORDER BY 2 DESC, 1 LIMIT 3;
SELECT sum(length(k || note)) FROM (SELECT k, note FROM t ORDER BY note, v LIMIT 200000);
DELETE FROM t WHERE v % 3 = 0;
SELECT count(*), sum(length(note)) FROM t;
