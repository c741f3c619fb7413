-- LIKE / ILIKE with wildcards and escapes.
-- setup
CREATE TABLE l (id integer, t text);
INSERT INTO l VALUES (1, 'abc'), (2, 'ABC'), (3, 'a_c'), (4, 'a%c'), (5, 'a\c'), (6, ''), (7, NULL),
  (8, 'héllo'), (9, 'HÉLLO'), (10, 'aXc'), (11, 'ac'), (12, 'abcabc'), (13, 'a\%c'), (14, 'ÿ');
-- queries
SELECT id FROM l WHERE t LIKE 'a%' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a_c' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a\_c' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a\%c' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a\\c' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a\\%' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a#_c' ESCAPE '#' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a!%c' ESCAPE '!' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'a\c' ESCAPE '' ORDER BY id;
SELECT id FROM l WHERE t LIKE '%' ORDER BY id;
SELECT id FROM l WHERE t LIKE '' ORDER BY id;
SELECT id FROM l WHERE t LIKE '_' ORDER BY id;
SELECT id FROM l WHERE t LIKE '%c' ORDER BY id;
SELECT id FROM l WHERE t LIKE '%b%' ORDER BY id;
SELECT id FROM l WHERE t LIKE '%abc' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'abc%abc' ORDER BY id;
SELECT id FROM l WHERE t LIKE '%%%' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'h_llo' ORDER BY id;
SELECT id FROM l WHERE t LIKE 'h__llo' ORDER BY id;
SELECT id FROM l WHERE t NOT LIKE 'a%' ORDER BY id;
SELECT id FROM l WHERE t ILIKE 'abc' ORDER BY id;
SELECT id FROM l WHERE t ILIKE 'a%' ORDER BY id;
SELECT id FROM l WHERE t ILIKE 'héllo' ORDER BY id;
SELECT id FROM l WHERE t NOT ILIKE '%B%' ORDER BY id;
SELECT id FROM l WHERE t ~~ 'a%' ORDER BY id;
SELECT id FROM l WHERE t ~~* 'A%' ORDER BY id;
SELECT id, t LIKE 'a%', t ILIKE 'A%', t NOT LIKE '%c' FROM l ORDER BY id;
SELECT 'abc' LIKE NULL, NULL LIKE 'a', NULL::text ILIKE NULL;
SELECT 'abc' LIKE 'abc\';
SELECT 'ab' LIKE 'a' || '%';
SELECT '%' LIKE '\%', '_' LIKE '\_', 'x' LIKE '\x';
SELECT 'abc' LIKE 'a%c' ESCAPE 'xy';
SELECT 'aaa' LIKE 'a%a%a', 'aa' LIKE 'a%a%a', 'Ä' ILIKE 'ä', 'ÿ' ILIKE 'Ÿ';
SELECT 'foo' LIKE '%_%', '' LIKE '%_%', 'x' LIKE '%_';
SELECT id FROM l WHERE t LIKE 'a' || '_' || 'c' ORDER BY id;
SELECT count(*) FROM l WHERE t LIKE '%';
SELECT count(*) FILTER (WHERE t LIKE 'a%'), count(*) FILTER (WHERE t ILIKE 'a%') FROM l;
SELECT 'abcd' LIKE 'abc\';
SELECT 'abd' LIKE 'abc\';
SELECT 'abc' LIKE '%\';
SELECT 'É' ILIKE 'é', 'é' LIKE '_', '' LIKE '_', '' LIKE '%';
SELECT 'abc' !~~ 'a%', 'abc' !~~* 'A%';
SELECT id FROM l WHERE t LIKE 'a%\' ORDER BY id;
