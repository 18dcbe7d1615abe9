# Builds libgrpchelper.so with SwiftPM and exposes it as the IMPORTED target
# grpchelper::grpchelper.
#
# Target grpchelper_swift (always out of date; SwiftPM itself is incremental):
#   1. swift build -c release --product grpchelper [-Xlinker -rpath ...]
#      (skipped when GH_PREBUILT_LIBRARY is set)
#   2. copies the result to ${GH_STAGED_LIBRARY} (lib/libgrpchelper.so.1 in the
#      build tree) and creates the symlink lib/libgrpchelper.so -> .so.1.
#
# Expects GH_STAGE_LIBDIR, GH_STAGED_LIBRARY, GH_STAGED_LINK, GH_SONAME.

set(GH_PREBUILT_LIBRARY "" CACHE FILEPATH
    "Already built libgrpchelper.so (SONAME libgrpchelper.so.1); skips SwiftPM when set")

if(GH_PREBUILT_LIBRARY)
  set(_gh_source_library "${GH_PREBUILT_LIBRARY}")
  set(_gh_swift_build_command "")
  message(STATUS "grpchelper: using prebuilt library ${GH_PREBUILT_LIBRARY}")
else()
  find_program(GH_SWIFT_EXECUTABLE NAMES swift
               DOC "The swift driver used to run `swift build`")
  if(NOT GH_SWIFT_EXECUTABLE)
    message(FATAL_ERROR
      "grpchelper: `swift` not found. Put the Swift toolchain on PATH, set "
      "GH_SWIFT_EXECUTABLE, or set GH_PREBUILT_LIBRARY to a built libgrpchelper.so.")
  endif()

  # The Swift runtime (libswiftCore.so, libFoundation*.so, libdispatch.so, ...)
  # lives in the toolchain. The installed library must find it without
  # LD_LIBRARY_PATH, so its directory goes into the library's RUNPATH.
  if(NOT GH_SWIFT_RUNTIME_DIR)
    get_filename_component(_gh_swift_bindir "${GH_SWIFT_EXECUTABLE}" DIRECTORY)
    find_program(GH_SWIFTC_EXECUTABLE NAMES swiftc HINTS "${_gh_swift_bindir}"
                 DOC "swiftc, used to query the Swift runtime directory")
    set(_gh_rt "")
    if(GH_SWIFTC_EXECUTABLE)
      execute_process(COMMAND "${GH_SWIFTC_EXECUTABLE}" -print-target-info
                      OUTPUT_VARIABLE _gh_target_info
                      RESULT_VARIABLE _gh_rc
                      ERROR_QUIET)
      if(_gh_rc EQUAL 0)
        string(JSON _gh_rt ERROR_VARIABLE _gh_json_err
               GET "${_gh_target_info}" paths runtimeLibraryPaths 0)
        if(_gh_json_err)
          set(_gh_rt "")
        endif()
      endif()
    endif()
    if(NOT _gh_rt)
      # <toolchain>/usr/bin/swift -> <toolchain>/usr/lib/swift/linux
      file(REAL_PATH "${GH_SWIFT_EXECUTABLE}" _gh_swift_real)
      get_filename_component(_gh_tc_bin "${_gh_swift_real}" DIRECTORY)
      get_filename_component(_gh_tc_usr "${_gh_tc_bin}" DIRECTORY)
      set(_gh_rt "${_gh_tc_usr}/lib/swift/linux")
    endif()
    if(NOT EXISTS "${_gh_rt}/libswiftCore.so")
      message(WARNING "grpchelper: no libswiftCore.so in ${_gh_rt}; "
                      "set GH_SWIFT_RUNTIME_DIR to the Swift runtime library directory")
    endif()
    set(GH_SWIFT_RUNTIME_DIR "${_gh_rt}" CACHE PATH
        "Swift runtime library directory (put into libgrpchelper's RUNPATH)")
  endif()
  message(STATUS "grpchelper: Swift runtime directory ${GH_SWIFT_RUNTIME_DIR}")

  set(GH_SWIFT_SCRATCH_PATH "${CMAKE_CURRENT_SOURCE_DIR}/.build" CACHE PATH
      "SwiftPM scratch path (the default .build shares dependency checkouts with other builds)")
  set(GH_SWIFT_BUILD_ARGS "" CACHE STRING "Extra arguments for `swift build` (;-list)")
  option(GH_SWIFT_ADD_RPATH
         "Link libgrpchelper.so with RUNPATH GH_SWIFT_RUNTIME_DIR" ON)

  set(_gh_swift_args build -c release --product grpchelper)
  file(TO_CMAKE_PATH "${GH_SWIFT_SCRATCH_PATH}" _gh_scratch)
  if(NOT _gh_scratch STREQUAL "${CMAKE_CURRENT_SOURCE_DIR}/.build")
    list(APPEND _gh_swift_args --scratch-path "${_gh_scratch}")
  endif()
  if(GH_SWIFT_ADD_RPATH)
    list(APPEND _gh_swift_args -Xlinker -rpath -Xlinker "${GH_SWIFT_RUNTIME_DIR}")
  endif()
  # Export only the C ABI (gh_*): see cmake/grpchelper.map.
  list(APPEND _gh_swift_args -Xlinker "--version-script=${CMAKE_CURRENT_SOURCE_DIR}/cmake/grpchelper.map")
  list(APPEND _gh_swift_args ${GH_SWIFT_BUILD_ARGS})

  set(_gh_source_library "${_gh_scratch}/release/libgrpchelper.so")
  set(_gh_swift_build_command COMMAND "${GH_SWIFT_EXECUTABLE}" ${_gh_swift_args})
endif()

add_custom_target(grpchelper_swift ALL
  ${_gh_swift_build_command}
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${GH_STAGE_LIBDIR}"
  COMMAND "${CMAKE_COMMAND}" -E copy_if_different
          "${_gh_source_library}" "${GH_STAGED_LIBRARY}"
  COMMAND "${CMAKE_COMMAND}" -E create_symlink "${GH_SONAME}" "${GH_STAGED_LINK}"
  WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
  BYPRODUCTS "${GH_STAGED_LIBRARY}" "${GH_STAGED_LINK}"
  COMMENT "Building libgrpchelper.so (SwiftPM, release)"
  USES_TERMINAL
  VERBATIM)

# The library as seen by C code in this tree. Linking by full path records the
# SONAME (libgrpchelper.so.1) as DT_NEEDED; CMake adds ${GH_STAGE_LIBDIR} to the
# build RPATH of every program that links it.
add_library(grpchelper::grpchelper SHARED IMPORTED GLOBAL)
set_target_properties(grpchelper::grpchelper PROPERTIES
  IMPORTED_LOCATION "${GH_STAGED_LIBRARY}"
  IMPORTED_SONAME "${GH_SONAME}"
  INTERFACE_INCLUDE_DIRECTORIES "${GH_INCLUDE_DIR}")
# Dependencies of an imported target are followed by everything linking it.
add_dependencies(grpchelper::grpchelper grpchelper_swift)
