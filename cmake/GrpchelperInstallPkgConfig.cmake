# Install-time helper (included from cmake_install.cmake): writes
# grpchelper.pc for the prefix being installed to and installs it.
#
# In:  GH_PC_TEMPLATE, GH_PC_OUTPUT, GH_PC_VERSION, GH_PC_LIBDIR_REL,
#      GH_PC_INCLUDEDIR_REL, plus CMAKE_INSTALL_PREFIX (set by the install
#      script, honouring `cmake --install --prefix`).

set(GH_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")

# libdir/includedir relative to ${prefix} when possible, so the file stays
# readable and `pkg-config --define-prefix` can relocate it.
if(IS_ABSOLUTE "${GH_PC_LIBDIR_REL}")
  set(GH_PC_LIBDIR "${GH_PC_LIBDIR_REL}")
  set(_gh_pcdir "${GH_PC_LIBDIR_REL}/pkgconfig")
else()
  set(GH_PC_LIBDIR "\${prefix}/${GH_PC_LIBDIR_REL}")
  set(_gh_pcdir "${CMAKE_INSTALL_PREFIX}/${GH_PC_LIBDIR_REL}/pkgconfig")
endif()
if(IS_ABSOLUTE "${GH_PC_INCLUDEDIR_REL}")
  set(GH_PC_INCLUDEDIR "${GH_PC_INCLUDEDIR_REL}")
else()
  set(GH_PC_INCLUDEDIR "\${prefix}/${GH_PC_INCLUDEDIR_REL}")
endif()

configure_file("${GH_PC_TEMPLATE}" "${GH_PC_OUTPUT}" @ONLY)
# file(INSTALL) prepends $ENV{DESTDIR} and records the file in the manifest.
file(INSTALL DESTINATION "${_gh_pcdir}" TYPE FILE FILES "${GH_PC_OUTPUT}")
