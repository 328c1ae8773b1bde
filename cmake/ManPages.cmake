# Writes man pages generated from labctl's own --help (help2man), so they say what the
# binary says: labctl(1), labagent(1), and labctl-CMD(1) for each subcommand (labctl-vm-exec(1) for
# nested ones). Run at build time after labctl is linked.
# Inputs: LABCTL, LABAGENT (the binaries), HELP2MAN, OUT (a directory).
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}/wrappers")

# "  name   description" lines of a --help text's "Subcommands:" section, as name;desc;...
function(subcommands help_text out_var)
  string(REGEX REPLACE ".*\nSubcommands:\n" "" section "${help_text}")
  string(REPLACE "\n" ";" lines "${section}")
  set(result)
  foreach(line IN LISTS lines)
    if(line MATCHES "^  ([a-z][a-z-]*)  +(.*)$")
      list(APPEND result "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(${out_var} "${result}" PARENT_SCOPE)
endfunction()

# page NAME "ARGS..." [INCLUDE]: NAME.1 from `labctl ARGS --help`, through a wrapper script
# named like the page (help2man names a page after the program it runs). INCLUDE is a
# help2man include file (extra sections).
function(page name args)
  set(wrapper "${OUT}/wrappers/${name}")
  file(WRITE "${wrapper}" "#!/bin/sh\nexec '${LABCTL}' ${args} \"$@\"\n")
  file(CHMOD "${wrapper}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
  execute_process(COMMAND "${wrapper}" --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "`labctl ${args} --help` failed (${rc})")
  endif()
  # The first line of a subcommand's help is its one-line description.
  string(REGEX MATCH "^[^\n]*" description "${help}")
  if(name STREQUAL "labctl")
    set(description "build Linux network labs (LVS) in network namespaces and check them")
  endif()
  set(include)
  if(ARGC GREATER 2)
    set(include "--include=${ARGV2}")
  endif()
  execute_process(
    COMMAND "${HELP2MAN}" --no-info --no-discard-stderr --section=1 ${include}
            "--version-string=${name} ${VERSION}" "--name=${description}"
            "--output=${OUT}/${name}.1" "${wrapper}"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "help2man failed for ${name} (${rc})")
  endif()
endfunction()

execute_process(COMMAND "${LABCTL}" --version OUTPUT_VARIABLE VERSION RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "`labctl --version` failed (${rc})")
endif()
string(REGEX REPLACE "^labctl " "" VERSION "${VERSION}")
execute_process(COMMAND "${LABCTL}" --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "`labctl --help` failed (${rc})")
endif()
subcommands("${top}" commands)
set(see_also)
foreach(cmd IN LISTS commands)
  list(APPEND see_also "\\fBlabctl-${cmd}\\fR(1)")
endforeach()
list(JOIN see_also ", " see_also)
file(WRITE "${OUT}/wrappers/labctl.h2m" "[SEE ALSO]\n${see_also}, \\fBlabagent\\fR(1)\n")
page(labctl "" "${OUT}/wrappers/labctl.h2m")
execute_process(
  COMMAND "${HELP2MAN}" --no-info --no-discard-stderr --section=1
          "--name=the workloads labctl runs inside lab nodes" "--output=${OUT}/labagent.1" "${LABAGENT}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed for labagent (${rc})")
endif()
foreach(cmd IN LISTS commands)
  page("labctl-${cmd}" "${cmd}")
  execute_process(COMMAND "${LABCTL}" ${cmd} --help OUTPUT_VARIABLE sub_help)
  if(sub_help MATCHES "\nSubcommands:\n")
    subcommands("${sub_help}" nested)
    foreach(n IN LISTS nested)
      page("labctl-${cmd}-${n}" "${cmd} ${n}")
    endforeach()
  endif()
endforeach()
file(REMOVE_RECURSE "${OUT}/wrappers")
