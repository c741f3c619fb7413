/* catalog/catalog.c: being written */
typedef int rosql_placeholder_catalog;
