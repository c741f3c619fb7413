CREATE TABLE g (x bigint, y text) WITH (connector = 'datagen', rows = '3000', 'fields.y.length' = '6');
CREATE TABLE n (id bigint, v bigint);
INSERT INTO n VALUES (1, 10), (2, NULL), (3, 30), (4, NULL), (5, -50), (6, 60);
CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE c AS '@LIB@', 'add_one_udf' STRICT IMMUTABLE WITH (decoupled = true, max_batch = 7);
CREATE FUNCTION inc2(bigint) RETURNS bigint LANGUAGE c AS '@LIB@', 'add_one_udf' IMMUTABLE WITH (decoupled = true, ordered = false, max_batch = 50, instances = 2);
CREATE FUNCTION words(text) RETURNS integer LANGUAGE c AS '@LIB@', 'word_count_udf' IMMUTABLE WITH (decoupled = true);
CREATE FUNCTION neg(bigint) RETURNS bigint LANGUAGE c AS '@LIB@', 'fail_on_negative_udf' IMMUTABLE WITH (decoupled = true, max_batch = 16);
CREATE FUNCTION local_inc(bigint) RETURNS bigint LANGUAGE c AS '@LIB@', 'add_one_udf' STRICT IMMUTABLE;
