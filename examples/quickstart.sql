-- rosql quickstart: run with   build/shell/rosql -f examples/quickstart.sql
-- (scripts/quickstart.sh does this on a fresh database).

-- 1. A generated source: deterministic rows from a seed, like a stream of events.
CREATE TABLE events (id bigint, user_id integer, amount double precision, note text)
  WITH (connector = 'datagen', rows = 100000, seed = 42,
        'fields.user_id.kind' = 'random', 'fields.user_id.min' = 1, 'fields.user_id.max' = 20,
        'fields.amount.min' = 0, 'fields.amount.max' = 100,
        'fields.note.length' = 12);

SELECT * FROM events ORDER BY id LIMIT 5;

-- 2. Aggregate it into a table stored in the database file (connector sqlite, the default).
CREATE TABLE per_user AS
  SELECT user_id, count(*) AS events, round(sum(amount)) AS total, avg(amount) > 50 AS big_spender
  FROM events GROUP BY user_id;

SELECT * FROM per_user WHERE total > 100000 ORDER BY total DESC LIMIT 5;

-- 3. A user-defined C function: the same code a service runs out of process.
CREATE FUNCTION score(text) RETURNS double precision
  LANGUAGE c AS 'build/examples/librosql_example_udf.so', 'score_udf' IMMUTABLE;

SELECT id, note, round(score(note) * 100) AS score FROM events WHERE id <= 5 ORDER BY id;

-- 4. A service: the same C function, run by two worker processes that load it
--    once (its init is the "model load") and are called with column batches.
CREATE SERVICE scorer USING 'build/examples/librosql_example_udf.so:score_udf'
  WITH (instances = 2, max_batch = 256);
CREATE FUNCTION remote_score(text) RETURNS double precision IMMUTABLE SERVICE scorer;

-- The query waits for a ready instance; EXPLAIN shows the proxy operator.
EXPLAIN SELECT id, remote_score(note) FROM events WHERE id <= 5;
SELECT count(*) FILTER (WHERE remote_score(note) = score(note)) AS same_as_in_process, count(*)
FROM events;
SHOW SERVICES;

-- Services outlive the shell; drop them when done.
DROP FUNCTION remote_score;
DROP SERVICE scorer;

-- 5. Automatic decoupling: annotate the function and the planner runs each
--    call through a proxy and the function's own service (created on first
--    use, named after it); the query does not change.
CREATE FUNCTION dscore(text) RETURNS double precision
  LANGUAGE c AS 'build/examples/librosql_example_udf.so', 'score_udf' IMMUTABLE
  WITH (decoupled = true, instances = 2, max_batch = 256);
EXPLAIN SELECT id, dscore(note) FROM events WHERE dscore(note) > 0.5 AND id < 100;
SELECT count(*), round(sum(dscore(note))) AS total FROM events WHERE id < 20000;
SET decoupling = off;  -- the same query in-process, for comparison
SELECT count(*), round(sum(dscore(note))) AS total FROM events WHERE id < 20000;
SET decoupling = on;
SHOW SERVICES;

-- 6. Streaming jobs: an INSERT ... SELECT that calls a service runs as a job
--    in its own process, with checkpoints in the catalog (exactly-once into
--    the sink even if the job process is killed).  SUBMIT runs it detached.
CREATE TABLE scored (id bigint, s double precision);
SET checkpoint_interval = '1s';
INSERT INTO scored SELECT id, dscore(note) FROM events WHERE id <= 5000;
SELECT count(*), count(DISTINCT id) FROM scored;
SHOW CHECKPOINTS;
DROP FUNCTION dscore;  -- drops its service too

EXPLAIN SELECT user_id, count(*) FROM events WHERE amount > 10 GROUP BY user_id ORDER BY 2 DESC LIMIT 3;
