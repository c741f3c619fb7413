/* runtime/connectors/connector.c: being written */
typedef int rosql_placeholder_connector;
