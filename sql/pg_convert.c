/* sql/pg_convert.c: being written */
typedef int rosql_placeholder_pg_convert;
