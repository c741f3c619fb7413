-- User-defined C functions from the example library.
CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE c AS 'examples/librosql_example_udf.so', 'add_one_udf' STRICT IMMUTABLE;
CREATE FUNCTION words(text) RETURNS integer LANGUAGE c AS 'examples/librosql_example_udf.so', 'word_count_udf';
CREATE FUNCTION neg(bigint) RETURNS bigint LANGUAGE c AS 'examples/librosql_example_udf.so', 'fail_on_negative_udf';
CREATE TABLE nums (n bigint, s text);
INSERT INTO nums VALUES (1, 'one small step'), (NULL, NULL), (41, ''), (-5, 'a  b   c');
SELECT n, add_one(n), words(s) FROM nums ORDER BY n NULLS LAST;
SELECT add_one(add_one(n)) FROM nums WHERE add_one(n) > 2 ORDER BY 1;
SELECT sum(add_one(n)) FROM nums;
SELECT neg(n) FROM nums WHERE n > 0 ORDER BY 1;
SELECT neg(n) FROM nums;
SELECT CASE WHEN n < 0 THEN 0 ELSE neg(n) END AS guarded FROM nums ORDER BY 1;
CREATE FUNCTION wrong(integer) RETURNS bigint LANGUAGE c AS 'examples/librosql_example_udf.so', 'add_one_udf';
CREATE FUNCTION missing(bigint) RETURNS bigint LANGUAGE c AS 'examples/librosql_example_udf.so', 'no_such_symbol';
CREATE FUNCTION nolib(bigint) RETURNS bigint LANGUAGE c AS 'nothing.so', 'x';
CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE c AS 'examples/librosql_example_udf.so', 'add_one_udf';
SELECT add_one('x');
SELECT add_one(1, 2);
CREATE FUNCTION scored(text) RETURNS double precision LANGUAGE c AS 'examples/librosql_example_udf.so', 'score_udf'
  WITH (decoupled = true, instances = 2, max_batch = 64, on_error = 'null');
CREATE FUNCTION bad_opt(text) RETURNS double precision LANGUAGE c AS 'examples/librosql_example_udf.so', 'score_udf'
  WITH (decoupled = maybe);
CREATE FUNCTION bad_opt2(text) RETURNS double precision LANGUAGE c AS 'examples/librosql_example_udf.so', 'score_udf'
  WITH (batch = 3);
ALTER FUNCTION scored SET (max_batch = 0);
ALTER FUNCTION scored SET (decoupled = false);
SHOW FUNCTIONS;
DROP FUNCTION words;
DROP FUNCTION words;
