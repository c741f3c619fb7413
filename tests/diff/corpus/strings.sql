-- String functions, UTF-8, concatenation.
-- setup
CREATE TABLE s (id integer, t text, u text);
INSERT INTO s VALUES (1, 'hello', 'World'), (2, 'héllo wörld', 'ÄÖÜ'), (3, '', 'x'), (4, NULL, 'y'),
  (5, '  padded  ', NULL), (6, '日本語テキスト', 'ß'), (7, 'a,b,,c', 'MiXeD CaSe'), (8, 'xxhixx', 'x'),
  (9, 'emoji 😀!', '😀');
-- queries
SELECT id, length(t), upper(t), lower(t) FROM s ORDER BY id;
SELECT id, length(u), upper(u), lower(u) FROM s ORDER BY id;
SELECT id, t || u, t || '-' || u FROM s ORDER BY id;
SELECT id, concat(t, u), concat(t, NULL, u, 1, true) FROM s ORDER BY id;
SELECT concat(), concat(NULL), concat(NULL, NULL);
SELECT concat(1.5, 2, 'x');
SELECT 'a' || NULL, NULL || 'b', 'a' || 1, 1 || 'a', 'x' || true;
SELECT 1 || 2;
SELECT id, substr(t, 2), substr(t, 2, 3), substr(t, 0, 3), substr(t, -1, 3) FROM s ORDER BY id;
SELECT substr('hello', 10), substr('hello', 3, 0), substr('hello', 1, 100);
SELECT substr('hello', 2, -1);
SELECT substr('héllo', 2, 2), substr('日本語', 2), substr(NULL, 1), substr('abc', NULL);
SELECT id, trim(t), ltrim(t), rtrim(t) FROM s ORDER BY id;
SELECT trim('x' FROM 'xxhixx'), trim(LEADING 'x' FROM 'xxhixx'), trim(TRAILING 'x' FROM 'xxhixx'), trim(BOTH 'xy' FROM 'xyhiyx');
SELECT ltrim('xxhixx', 'x'), rtrim('xxhixx', 'x'), btrim('xxhixx', 'x');
SELECT ltrim('  a  '), rtrim('  a  '), trim('  a  '), trim(''), trim(NULL);
SELECT trim('é' FROM 'ééaéé'), ltrim('日日本', '日');
SELECT id, replace(t, 'l', 'L'), replace(t, 'x', ''), replace(t, '', 'z') FROM s ORDER BY id;
SELECT replace('aaa', 'a', 'bb'), replace('abc', 'abc', ''), replace(NULL, 'a', 'b'), replace('a', NULL, 'b');
SELECT id, position('l' IN t), position('' IN t), position('wörld' IN t) FROM s ORDER BY id;
SELECT position('語' IN '日本語'), position('z' IN 'abc'), position(NULL IN 'a');
SELECT strpos('hello', 'll');
SELECT length('日本語'), length(''), length(NULL);
SELECT char_length('héllo'), character_length('abc');
SELECT upper('straße'), lower('ÀÉÎ'), upper('ǆ');
SELECT 'abc' < 'abd', 'abc' < 'ab', 'B' < 'a', 'é' > 'z', '' < 'a';
SELECT 'abc' = 'abc ', 'a' <> 'A';
SELECT t FROM s ORDER BY t;
SELECT t FROM s ORDER BY t DESC;
SELECT u FROM s ORDER BY u NULLS FIRST;
SELECT max(t), min(t), max(u), min(u) FROM s;
SELECT id, greatest(t, u), least(t, u) FROM s ORDER BY id;
SELECT length(t || u) FROM s ORDER BY id;
SELECT lower(upper(t)) = lower(t) FROM s ORDER BY id;
SELECT substr(t, position(',' IN t) + 1) FROM s WHERE id = 7;
SELECT upper(substr(t, 1, 1)) || substr(t, 2) FROM s ORDER BY id;
SELECT 'it''s', E'tab\there', 'back\slash';
SELECT E'a\\b', E'\x41', E'\u00e9';
SELECT repeat('ab', 3);
SELECT 'x' || repeat('-', 0) || 'y';
SELECT length(t) * 2 + 1 FROM s ORDER BY id;
SELECT id FROM s WHERE t = 'hello';
SELECT id FROM s WHERE t > 'h' ORDER BY id;
SELECT id FROM s WHERE t IS NULL OR t = '';
SELECT coalesce(t, '(null)') FROM s ORDER BY id;
SELECT nullif(t, '') FROM s ORDER BY id;
