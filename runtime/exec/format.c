/* format.c: being written */ typedef int rosql_placeholder_format;
