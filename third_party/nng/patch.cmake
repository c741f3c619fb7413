# Run in nng's source folder by FetchContent (PATCH_COMMAND): applies
# Debian's patches (debian/patches/series of nng 1.5.2-2), then ours.
# cmake -DDEBIAN_TAR=URL -DDEBIAN_SHA256=HASH -DOUR_PATCH=FILE -P patch.cmake
#
# FetchContent runs this again on a source folder it already patched when
# the declaration changes (a new close-races.patch), so every patch applied
# is kept in .rosql-applied/ and undone, newest first, before applying.
find_program(PATCH_EXE patch REQUIRED)

function(run_patch file)
  execute_process(COMMAND ${PATCH_EXE} -p1 --batch ${ARGN} -i "${file}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nng: patch ${ARGN} ${file} failed:\n${out}")
  endif()
endfunction()

set(applied "${CMAKE_CURRENT_BINARY_DIR}/.rosql-applied")
file(GLOB done LIST_DIRECTORIES false "${applied}/*.patch")
list(SORT done)
list(REVERSE done)
foreach(p IN LISTS done)
  run_patch("${p}" -R)
endforeach()
file(REMOVE_RECURSE "${applied}")

set(tar "${CMAKE_CURRENT_BINARY_DIR}/.rosql-debian.tar.xz")
file(DOWNLOAD "${DEBIAN_TAR}" "${tar}" EXPECTED_HASH SHA256=${DEBIAN_SHA256} STATUS st)
list(GET st 0 rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "could not download ${DEBIAN_TAR}: ${st}")
endif()
set(deb "${CMAKE_CURRENT_BINARY_DIR}/.rosql-debian")
file(REMOVE_RECURSE "${deb}")
file(ARCHIVE_EXTRACT INPUT "${tar}" DESTINATION "${deb}")
set(dir "${deb}/debian/patches")
file(STRINGS "${dir}/series" series)
set(patches "")
foreach(p IN LISTS series)
  string(STRIP "${p}" p)
  if(p STREQUAL "" OR p MATCHES "^#")
    continue()
  endif()
  list(APPEND patches "${dir}/${p}")
endforeach()
list(APPEND patches "${OUR_PATCH}")

file(MAKE_DIRECTORY "${applied}")
set(n 10)
foreach(p IN LISTS patches)
  run_patch("${p}" --forward)
  get_filename_component(name "${p}" NAME)
  file(COPY_FILE "${p}" "${applied}/${n}-${name}" ONLY_IF_DIFFERENT)
  math(EXPR n "${n} + 1")
endforeach()
