/* sql/parse.c: being written */
typedef int rosql_placeholder_parse;
