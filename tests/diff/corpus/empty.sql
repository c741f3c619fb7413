-- Queries over empty tables and empty results.
-- setup
CREATE TABLE z (a integer, b text, c double precision, d bigint);
-- queries
SELECT * FROM z;
SELECT a, b FROM z ORDER BY a;
SELECT count(*), count(a), sum(a), avg(a), min(a), max(b), sum(c), sum(d) FROM z;
SELECT count(*) FROM z WHERE a > 0;
SELECT a, count(*) FROM z GROUP BY a;
SELECT DISTINCT a FROM z;
SELECT a FROM z LIMIT 5;
SELECT count(DISTINCT a), sum(a) FILTER (WHERE a > 0) FROM z;
SELECT 1 / 0 FROM z;
SELECT a / 0 FROM z;
SELECT max(a) IS NULL, coalesce(sum(a), 0) FROM z;
SELECT count(*) FROM z HAVING count(*) > 0;
SELECT count(*) FROM z HAVING count(*) = 0;
SELECT sum(a) + 1 FROM z;
INSERT INTO z SELECT a, b, c, d FROM z;
SELECT count(*) FROM z;
