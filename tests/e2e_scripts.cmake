# End-to-end .sql cases run through the shell (tests/e2e/run_sql_tests.py).
add_test(NAME e2e_sql_cases
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/run_sql_tests.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_sql_cases PROPERTIES TIMEOUT 300)
