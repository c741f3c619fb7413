-- The decoupling corpus: every query runs with SET decoupling = off (the
-- functions in-process) and on (each decoupled function in its own service)
-- and must give the same rows; in the same order when it has ORDER BY.
-- One query per statement; `--` lines are comments.  Functions (setup.sql):
--   inc(bigint)      add_one, decoupled, STRICT IMMUTABLE, max_batch 7
--   inc2(bigint)     add_one, decoupled, unordered, max_batch 50
--   words(text)      word_count, decoupled
--   neg(bigint)      fail_on_negative, decoupled (fails on a negative input)
--   local_inc(bigint) add_one, in-process
-- Tables: g (datagen, x 1..3000, y text), n (sqlite, with NULLs).

-- select list
SELECT x, inc(x) FROM g ORDER BY x;
SELECT inc(x) FROM g;
SELECT x, inc2(x) FROM g ORDER BY x;
-- WHERE: the cheap conjunct below the proxy, the call's filter above
SELECT x FROM g WHERE inc(x) % 3 = 0 AND x < 500 ORDER BY x;
SELECT x FROM g WHERE inc(x) % 3 = 0 OR x < 10 ORDER BY x;
SELECT count(*) FROM g WHERE inc2(x) > 1000;
-- ORDER BY and GROUP BY keys, aggregate arguments, HAVING
SELECT x FROM g WHERE x < 60 ORDER BY inc(x) % 7, x;
SELECT inc(x) % 5 AS k, count(*) FROM g GROUP BY inc(x) % 5 ORDER BY k;
SELECT sum(inc(x)), max(words(y)), min(inc2(x)) FROM g;
SELECT x % 5 AS k, sum(inc(x)) FROM g GROUP BY x % 5 HAVING sum(inc(x)) > 900000 ORDER BY k;
SELECT count(*) FILTER (WHERE inc(x) % 2 = 0) FROM g;
SELECT DISTINCT inc(x) % 10 AS d FROM g ORDER BY d;
-- expression and constant arguments
SELECT x, inc(x * 2 + 1) FROM g WHERE x < 100 ORDER BY x;
SELECT x, inc(41) FROM g WHERE x < 4 ORDER BY x;
SELECT inc(1);
SELECT inc(1), words('a b c');
-- the same call twice is one call; different functions in one query
SELECT x, inc(x), inc(x) + 1 FROM g WHERE x < 50 ORDER BY x;
SELECT x, inc(x) FROM g WHERE inc(x) > 50 AND x < 90 ORDER BY x;
SELECT sum(inc(x)), count(*) FROM g WHERE inc(x) % 2 = 0;
SELECT x, inc2(x) FROM g WHERE inc2(x) % 7 = 0 ORDER BY x;
SELECT x, inc(x), words(y), inc2(x) FROM g WHERE x < 200 ORDER BY x;
-- nested: both decoupled; only the inner one decoupled
SELECT x, inc(inc(x)) FROM g WHERE x < 300 ORDER BY x;
SELECT x, local_inc(inc(x)), inc(local_inc(x)) FROM g WHERE x < 300 ORDER BY x;
SELECT x, inc(inc2(inc(x))) FROM g ORDER BY x;
-- CASE and COALESCE: only rows that need the call are sent (neg fails on
-- the others, so a wrongly sent row fails the query)
SELECT x, CASE WHEN x > 10 THEN neg(x - 10) ELSE 0 END FROM g WHERE x < 100 ORDER BY x;
SELECT x, CASE WHEN x <= 10 THEN 0 WHEN x % 2 = 0 THEN neg(x - 10) ELSE inc(x) END FROM g ORDER BY x;
SELECT x, CASE x % 3 WHEN 0 THEN inc(x) WHEN 1 THEN words(y) ELSE -1 END FROM g WHERE x < 90 ORDER BY x;
SELECT id, COALESCE(v, neg(id)) FROM n ORDER BY id;
SELECT id, COALESCE(v, inc(id), 0) FROM n ORDER BY id;
SELECT sum(CASE WHEN inc(x) > 100 THEN inc(x) ELSE neg(100 - inc(x)) END) FROM g;
-- STRICT: NULL arguments are not sent
SELECT id, inc(v) FROM n ORDER BY id;
SELECT count(inc(v)), count(*) FROM n;
-- LIMIT, OFFSET and a subquery-free pipeline
SELECT x, inc(x) FROM g LIMIT 5;
SELECT x, inc(x) FROM g ORDER BY inc(x) DESC LIMIT 3 OFFSET 2;
SELECT inc(x) AS a, words(y) AS b FROM g WHERE words(y) > 0 AND inc(x) < 20 ORDER BY a;
