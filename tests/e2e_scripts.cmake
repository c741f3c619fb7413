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

# Streaming jobs: foreground and SUBMIT, STOP/RESUME/CHECKPOINT JOB, tail
# sources, file sink two-phase commit, kill -9 of the job / an instance / the
# coordinator, and a short fault-injection loop (tests/e2e/jobs_test.py).
add_test(NAME e2e_jobs
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/jobs_test.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_jobs PROPERTIES TIMEOUT 900)

# The full fault-injection loop (20 trials per fault kind), not part of the
# default run: `cmake --build build --target faults_full`.
add_custom_target(faults_full
  COMMAND ${CMAKE_COMMAND} -E env ROSQL_FAULT_TRIALS=20
          python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/jobs_test.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR} test_fault_loop
  DEPENDS rosql rosd
  USES_TERMINAL)

# Elastic scaling under running jobs: 1 -> 4 -> 2 -> 1 with per-phase
# throughput and output gaps, scale-in without jobs, during checkpoints and a
# restore, kill -9 of a starting instance, two jobs on one service
# (tests/e2e/scaling_test.py).
add_test(NAME e2e_scaling
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e/scaling_test.py $<TARGET_FILE:rosql> ${PROJECT_BINARY_DIR})
set_tests_properties(e2e_scaling PROPERTIES TIMEOUT 600)
