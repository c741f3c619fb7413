/* runtime/connectors/sqlite_table.c: being written */
typedef int rosql_placeholder_sqlite_table;
