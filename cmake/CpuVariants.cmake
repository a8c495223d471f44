# Kernels are compiled once per ISA level and picked at run time from CPUID, so one binary runs
# (fast) on any x86-64. The baseline stays plain x86-64; only files named *_avx2.cc / *_avx512.cc get
# the ISA flags.
set(PETREL_AVX2_FLAGS -mavx2 -mfma -mf16c)
set(PETREL_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni
    -mavx2 -mfma -mf16c
    -Wno-uninitialized -Wno-maybe-uninitialized)  # GCC 12 false positive in avx512fintrin.h
function(petrel_isa_sources)
  foreach(f ${ARGN})
    if(f MATCHES "_avx512\\.cc$")
      set_source_files_properties(${f} PROPERTIES COMPILE_OPTIONS "${PETREL_AVX512_FLAGS}")
    elseif(f MATCHES "_avx2\\.cc$")
      set_source_files_properties(${f} PROPERTIES COMPILE_OPTIONS "${PETREL_AVX2_FLAGS}")
    endif()
  endforeach()
endfunction()
