-- Known differences from PostgreSQL: missing features and the documented
-- deviations (no numeric type).  Not run by default: diff_test.py --all.
-- setup
CREATE TABLE kf (id integer, p boolean, q boolean, x bigint, t text);
INSERT INTO kf VALUES (1, true, NULL, 9223372036854775807, 'b'), (2, NULL, NULL, 1, 'a');
-- queries
-- numeric: decimal literals are double precision in rosql
SELECT 0.1 + 0.2 = 0.3;
SELECT 9223372036854775808;
SELECT 1.5 * 2, 7.0 / 2;
-- numeric: sum(bigint) is bigint in rosql, so a result beyond its range is an error
SELECT sum(x) FROM kf;
-- IS [NOT] DISTINCT FROM
SELECT id, p IS DISTINCT FROM q, p IS NOT DISTINCT FROM q FROM kf ORDER BY id;
-- the ^ operator
SELECT 2 ^ 3, 2::float8 ^ 0.5;
-- bool_and / bool_or, pg_typeof, now(), octet_length
SELECT bool_and(p), bool_or(p) FROM kf;
SELECT pg_typeof(1);
SELECT now() IS NOT NULL;
SELECT octet_length('日本語');
-- subqueries in FROM
SELECT count(*) FROM (SELECT 1) AS sub;
-- COLLATE
SELECT t FROM kf ORDER BY t COLLATE "C";
-- real[] with NULL elements
SELECT '{1.5, NULL}'::real[];
-- column names in CREATE TABLE AS
CREATE TABLE kf2 (a, b) AS SELECT id, t FROM kf;
-- round(x, n) of a double precision (PostgreSQL has round(numeric, int) only)
SELECT round(1.45::float8, 1);
-- LIMIT/OFFSET take only constants, not constant expressions
SELECT id FROM kf ORDER BY id LIMIT 1 + 1;
