# -DPETREL_CUDA=ON: the CUDA language for src/kernels/cuda/, built for Hopper (sm_90: H100/H200),
# plus the toolkit's runtime and cuBLAS. Included from the top-level CMakeLists.txt, because the
# language must be enabled in the directory that holds every target linking CUDA code.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
enable_language(CUDA)
# The .cu files are C++17: CMake 3.25 does not know nvcc 13's C++20 flag (CUDA_STANDARD 20 fails
# at generate time). Host code (cuda_backend.cc) is C++20 like the rest.
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
