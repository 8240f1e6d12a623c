// Internal: each ISA translation unit exports its table. Only dispatch.cpp and the kernel
// tests include this. A variant whose TU is not compiled for this target is absent.
#pragma once

#include "kernels/kernels.hpp"

namespace bitnet::kernels {

const Table& table_scalar();
const Table& table_avx2();         // kernels_avx2.cpp   (x86-64 only)
const Table& table_avxvnni();      // kernels_avxvnni.cpp (x86-64 only)
const Table& table_avx512();       // kernels_avx512.cpp (x86-64 only)
const Table& table_amx();          // kernels_amx.cpp    (x86-64 only)
const Table& table_neon();         // kernels_neon.cpp   (aarch64 only)
const Table& table_neon_dotprod(); // kernels_neon_dotprod.cpp (aarch64 only)

} // namespace bitnet::kernels
