# Warnings for our own targets; third-party headers come in as SYSTEM includes.
function(petrel_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare)
endfunction()
