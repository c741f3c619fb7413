# End-to-end tests of the rosql shell (included by tests/CMakeLists.txt).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  # Types into the interactive shell under a pseudo-terminal: multi-line
  # input, meta-commands, tab completion, Ctrl-C, Ctrl-D, history.
  add_test(NAME e2e_pty_shell COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e/pty_shell.py $<TARGET_FILE:rosql>)
  set_tests_properties(e2e_pty_shell PROPERTIES TIMEOUT 120)
endif()

if(Python3_FOUND)
  # Differential test against a private PostgreSQL cluster (tests/diff):
  # skipped (77) when the PostgreSQL server binaries are not installed.
  add_test(NAME diff_postgres COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/diff/diff_test.py $<TARGET_FILE:rosql>)
  set_tests_properties(diff_postgres PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
