// The record a kernel writes when a device-resident input is out of range
// (csrc/cuda/input_errors.h reads it on the host). Two 64-bit words:
//   word 0: code (bits 0-7) | sequence (bits 8-31) | value (bits 32-63, int32)
//   word 1: auxiliary (bits 0-31: the table column or the limit) | limit (bits 32-63)
// Word 1 is written first and word 0, which marks the record present, last.
// Several bad entries may race; any one complete record is enough to report.
#pragma once

#define AP_INPUT_ERROR_NONE 0
#define AP_INPUT_ERROR_CONTEXT_LENGTH 1 // context_lens[seq] = value outside 1..limit
#define AP_INPUT_ERROR_PAGE_ID 2        // page_table[seq, aux] = value outside 0..limit-1

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
namespace ap {
__device__ __forceinline__ void report_input_error(unsigned long long *record, int code, int seq,
                                                   int value, int aux, int limit) {
  volatile unsigned long long *r = record;
  r[1] = (unsigned long long)(unsigned)aux | ((unsigned long long)(unsigned)limit << 32);
  __threadfence_system();
  r[0] = (unsigned long long)code | ((unsigned long long)(seq & 0xffffff) << 8) |
         ((unsigned long long)(unsigned)value << 32);
}
} // namespace ap
#endif
