/* runtime/connectors/datagen.c: being written */
typedef int rosql_placeholder_datagen;
