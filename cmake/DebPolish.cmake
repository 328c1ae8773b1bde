# CPack pre-build script for `make deb`: what Debian policy asks of a package but `make
# install` need not do. Man pages compressed (gzip -9n: no name or time stamp, so the
# package is reproducible), and the package's changelog and copyright in its doc folder.
# CPACK_TEMPORARY_INSTALL_DIRECTORY is the staged tree; LABCTL_SOURCE_DIR is set by
# CMakeLists.txt through CPACK_PROJECT_CONFIG_FILE.
set(root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr")
if(NOT EXISTS "${root}")
  message(FATAL_ERROR "DebPolish: no staged /usr under ${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
endif()
file(GLOB pages "${root}/share/man/man1/*.1")
foreach(page IN LISTS pages)
  execute_process(COMMAND gzip -9nf "${page}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "DebPolish: gzip ${page} failed")
  endif()
endforeach()
set(doc "${root}/share/doc/labctl")
file(MAKE_DIRECTORY "${doc}")
file(COPY "${LABCTL_SOURCE_DIR}/packaging/copyright" DESTINATION "${doc}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
configure_file("${LABCTL_SOURCE_DIR}/packaging/changelog" "${doc}/changelog" COPYONLY)
execute_process(COMMAND gzip -9nf "${doc}/changelog" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "DebPolish: gzip the changelog failed")
endif()
