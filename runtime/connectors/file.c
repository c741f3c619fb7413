/* runtime/connectors/file.c: being written */
typedef int rosql_placeholder_file;
