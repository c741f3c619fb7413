# nng, built from Debian bookworm's own source package (1.5.2-2: the
# upstream tarball plus Debian's patches) with rosql's fixes for four close
# races and a timer spin on top, close-races.patch.  Why: see third_party/nng/README.md.
#
# Sets NNG_LIB (the static library target) and NNG_INCLUDE for the rest of
# the build.  -DROSQL_SYSTEM_NNG=ON links the system's libnng-dev instead
# (offline builds), without the fix.
include(FetchContent)

set(ROSQL_NNG_BASE "http://deb.debian.org/debian/pool/main/n/nng")
set(ROSQL_NNG_DEBIAN_TAR "${ROSQL_NNG_BASE}/nng_1.5.2-2.debian.tar.xz")
set(ROSQL_NNG_DEBIAN_SHA256 ecf0bcd3b5645b95aa1f1f58519547bcfaaab81a863f88a59178d72fdfdffd72)

# the patch's hash is part of the declaration, so editing the patch makes
# the next configure run patch.cmake again (it undoes what it applied
# before, then applies the current patches)
file(SHA256 ${CMAKE_CURRENT_LIST_DIR}/close-races.patch ROSQL_NNG_PATCH_SHA256)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_LIST_DIR}/close-races.patch ${CMAKE_CURRENT_LIST_DIR}/patch.cmake)

FetchContent_Declare(nng
  URL "${ROSQL_NNG_BASE}/nng_1.5.2.orig.tar.gz"
  URL_HASH SHA256=f8b25ab86738864b1f2e3128e8badab581510fa8085ff5ca9bb980d317334c46
  DOWNLOAD_EXTRACT_TIMESTAMP TRUE
  PATCH_COMMAND ${CMAKE_COMMAND}
    -DDEBIAN_TAR=${ROSQL_NNG_DEBIAN_TAR} -DDEBIAN_SHA256=${ROSQL_NNG_DEBIAN_SHA256}
    -DOUR_PATCH=${CMAKE_CURRENT_LIST_DIR}/close-races.patch -DOUR_PATCH_SHA256=${ROSQL_NNG_PATCH_SHA256}
    -P ${CMAKE_CURRENT_LIST_DIR}/patch.cmake)

# a static library with what rosql uses (REQ/REP, PUB/SUB; ipc, tcp, inproc)
set(BUILD_SHARED_LIBS OFF)
set(NNG_TESTS OFF CACHE BOOL "" FORCE)
set(NNG_TOOLS OFF CACHE BOOL "" FORCE)
set(NNG_ENABLE_NNGCAT OFF CACHE BOOL "" FORCE)
set(NNG_ENABLE_HTTP OFF CACHE BOOL "" FORCE)
set(NNG_ENABLE_TLS OFF CACHE BOOL "" FORCE)
set(NNG_TRANSPORT_WS OFF CACHE BOOL "" FORCE)
set(NNG_TRANSPORT_WSS OFF CACHE BOOL "" FORCE)
set(NNG_TRANSPORT_TLS OFF CACHE BOOL "" FORCE)
set(NNG_TRANSPORT_ZEROTIER OFF CACHE BOOL "" FORCE)

# nng is third-party code: built without rosql's sanitizer flags, as the
# system library was (its own tests are not ours to run under UBSan).
get_directory_property(_rosql_opts COMPILE_OPTIONS)
set_directory_properties(PROPERTIES COMPILE_OPTIONS "")
FetchContent_MakeAvailable(nng)
set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_rosql_opts}")

set(NNG_LIB nng)
set(NNG_INCLUDE ${nng_SOURCE_DIR}/include)
