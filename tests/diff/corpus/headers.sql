-- Output column names as PostgreSQL derives them.
-- setup
CREATE TABLE h (id integer, name text, val double precision, flag boolean);
INSERT INTO h VALUES (1, 'a', 1.5, true), (2, NULL, NULL, NULL);
-- queries
SELECT 1;
SELECT 1, 2, 'x';
SELECT 1 AS one, 2 two;
SELECT id, name FROM h ORDER BY id;
SELECT h.id FROM h ORDER BY 1;
SELECT id + 1, -id, id * 2 AS "Twice", id AS "MixedCase" FROM h ORDER BY 1;
SELECT count(*), count(id), sum(id), avg(val), min(name), max(val) FROM h;
SELECT count(DISTINCT id), sum(id) FILTER (WHERE flag) FROM h;
SELECT upper(name), lower(name), length(name), substr(name, 1), trim(name) FROM h ORDER BY id;
SELECT coalesce(name, 'z'), nullif(id, 1), greatest(id, 2), least(id, 0) FROM h ORDER BY id;
SELECT CASE WHEN flag THEN 1 END, CASE id WHEN 1 THEN 'x' END FROM h ORDER BY id;
SELECT CAST(id AS text), id::text, id::bigint, val::integer, CAST(val AS real), '1'::int FROM h ORDER BY id;
SELECT 'lit'::text, 'x', NULL, true, 1.5, 10000000000 FROM h ORDER BY id;
SELECT name || 'x', id = 1, id IS NULL, name LIKE 'a%', id IN (1, 2), id BETWEEN 1 AND 2 FROM h ORDER BY id;
SELECT NOT flag, flag AND true, flag OR false FROM h ORDER BY id;
SELECT abs(id), floor(val), ceil(val), round(val), sqrt(val), power(val, 2) FROM h ORDER BY id;
SELECT position('a' IN name), replace(name, 'a', 'b'), concat(name, id), ltrim(name), rtrim(name) FROM h ORDER BY id;
SELECT trim(BOTH 'a' FROM name), trim(LEADING FROM name) FROM h ORDER BY id;
SELECT ceiling(val), char_length(name) FROM h ORDER BY id;
SELECT (id), ((id + 1)) FROM h ORDER BY 1;
SELECT DISTINCT id AS x FROM h ORDER BY x;
SELECT id, id FROM h ORDER BY 1;
SELECT *, name FROM h ORDER BY id;
SELECT h.* FROM h ORDER BY id;
SELECT id AS select FROM h ORDER BY 1;
SELECT CAST(NULL AS text) AS n, NULL::int;
SELECT -1, +1, - 1.5;
SELECT 1 = 1 AS eq, 'a' < 'b';
SELECT nosuchcol FROM h;
SELECT * FROM nosuchtable;
SELECT id FROM h WHERE name = 1;
SELECT count(*) AS "count(*)" FROM h;
SELECT val::float8, val::double precision, CAST(val AS float4) FROM h ORDER BY id;
SELECT 1::smallint, 1::int2, 1::int4, 1::int8, true::bool;
