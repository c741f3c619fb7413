-- Aggregates over many batches: an ungrouped aggregate takes each batch's
-- column at once (count, sum, avg), a grouped one row by row; the totals
-- of the grouped query below must add up to the ungrouped ones.
-- id is 1..100000: count 100000, sum 5000050000; ids not divisible by 3:
-- 66667 of them, summing to 3333366667.
CREATE TABLE n (id bigint) WITH (connector = 'datagen', rows = 100000);
SELECT count(*), sum(id), avg(id), count(CASE WHEN id % 3 = 0 THEN NULL ELSE id END) AS c3, sum(CASE WHEN id % 3 = 0 THEN NULL ELSE id END) AS s3, sum(id::float8) AS sf, sum(id::integer) AS si, avg((id % 100)::smallint) AS a16, sum((id % 100)::smallint) AS s16 FROM n;
SELECT id % 2 AS p, count(*), sum(id), avg(id), count(CASE WHEN id % 3 = 0 THEN NULL ELSE id END) AS c3, sum(CASE WHEN id % 3 = 0 THEN NULL ELSE id END) AS s3 FROM n GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE id % 2 = 0), sum(id) FILTER (WHERE id <= 10), count(DISTINCT id % 7), min(id), max(id) FROM n;
-- Integer sums are exact: a partial sum may leave bigint's range as long
-- as the result is inside it (PostgreSQL's sum(bigint) is numeric).
CREATE TABLE wrap (g int, x bigint);
INSERT INTO wrap VALUES (1, 9223372036854775807), (1, 1), (1, -10), (2, -9223372036854775808), (2, -1), (2, 5);
SELECT sum(x) FROM wrap;
SELECT g, sum(x) FROM wrap GROUP BY g ORDER BY g;
SELECT sum(x) FROM wrap WHERE x > 0;
SELECT g, sum(x) FROM wrap WHERE x < 0 GROUP BY g ORDER BY g;
SELECT avg(x) FROM wrap WHERE g = 1;
