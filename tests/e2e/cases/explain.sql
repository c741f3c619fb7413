-- EXPLAIN shows the operator tree, after and before rewriting.
CREATE TABLE t (a integer, b text, c double precision);
EXPLAIN SELECT * FROM t;
EXPLAIN SELECT b, sum(c) FROM t WHERE a > 1 GROUP BY b HAVING count(*) > 2 ORDER BY 2 DESC LIMIT 5;
EXPLAIN (REWRITE off) SELECT a, b FROM t;
EXPLAIN INSERT INTO t SELECT a + 1, b, c FROM t;
EXPLAIN SELECT a FROM t ORDER BY c;
