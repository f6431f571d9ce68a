# rc_npm_package: a node program the worker runs beside its binary, with npm packages
# pinned by its package-lock.json (the js engine host, issue 16; the browser recorder,
# issue 17). The target copies SOURCES and package.json/package-lock.json into the current
# binary dir and runs `npm ci --omit=dev --ignore-scripts` there only when the lock file
# changes (a stamp file), never when a task runs. Without npm (or with NPM_OPTION OFF) the
# copy still happens but node_modules is missing: `WHAT_THEN` says what the worker does then.
#
#   rc_npm_package(TARGET name LABEL "js engine" SOURCES a.js b.js NPM_OPTION RC_X_NPM
#                  WHAT_THEN "the worker refuses --allow js" [ENV VAR=VALUE ...]
#                  INSTALL_DIR share/retire-cluster/js)
function(rc_npm_package)
  cmake_parse_arguments(P "" "TARGET;LABEL;NPM_OPTION;WHAT_THEN;INSTALL_DIR" "SOURCES;ENV" ${ARGN})
  set(package package.json package-lock.json)
  set(out ${CMAKE_CURRENT_BINARY_DIR})
  # `copy`, not copy_if_different: the copy must be newer than its source or the rule re-runs.
  set(outputs)
  foreach(f ${P_SOURCES} ${package})
    add_custom_command(OUTPUT ${out}/${f}
      COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_SOURCE_DIR}/${f} ${out}/${f}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${f}
      COMMENT "${P_LABEL}: ${f}" VERBATIM)
    list(APPEND outputs ${out}/${f})
  endforeach()
  find_program(NPM_PROGRAM npm)
  if(NOT ${P_NPM_OPTION})
    message(STATUS "${P_LABEL}: ${P_NPM_OPTION}=OFF, no npm ci (${P_WHAT_THEN})")
  elseif(NOT NPM_PROGRAM)
    message(WARNING "npm not found: the ${P_LABEL} in ${out} gets no node_modules, so ${P_WHAT_THEN}. "
                    "Install node and npm (scripts/install-deps.sh) and re-run cmake.")
  else()
    # npm ci empties node_modules first, so the stamp lives beside it.
    add_custom_command(OUTPUT ${out}/npm_ci.stamp
      COMMAND ${CMAKE_COMMAND} -E env ${P_ENV}
              ${NPM_PROGRAM} ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
      COMMAND ${CMAKE_COMMAND} -E touch ${out}/npm_ci.stamp
      DEPENDS ${out}/package-lock.json ${out}/package.json
      WORKING_DIRECTORY ${out}
      COMMENT "${P_LABEL}: npm ci in ${out}" VERBATIM)
    list(APPEND outputs ${out}/npm_ci.stamp)
  endif()
  add_custom_target(${P_TARGET} ALL DEPENDS ${outputs})
  install(FILES ${P_SOURCES} ${package} DESTINATION ${P_INSTALL_DIR})
  install(DIRECTORY ${out}/node_modules DESTINATION ${P_INSTALL_DIR} OPTIONAL)
endfunction()
