/* sql/ext_parse.c: being written */
typedef int rosql_placeholder_ext_parse;
