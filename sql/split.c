/* sql/split.c: being written */
typedef int rosql_placeholder_split;
