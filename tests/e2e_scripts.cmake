# End-to-end .sql cases run through the shell (tests/e2e/run_sql_tests.py).
add_test(NAME e2e_sql_cases
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/run_sql_tests.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_sql_cases PROPERTIES TIMEOUT 300)

# Services end to end: lifecycle, kill -9 of an instance mid-query, crash
# loops, scaling, a worker registered by hand (tests/e2e/services_test.py).
add_test(NAME e2e_services
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/services_test.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_services PROPERTIES TIMEOUT 600)

# Automatic decoupling: the corpus of queries with SET decoupling on and off,
# the decoupled services' lifecycle, INSERT/CTAS, poison rows, option errors
# (tests/e2e/decoupling_test.py, corpus in tests/e2e/decoupling/).
add_test(NAME e2e_decoupling
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/decoupling_test.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_decoupling PROPERTIES TIMEOUT 600)
