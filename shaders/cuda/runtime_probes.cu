// Tiny kernels that exercise the runtime itself: launch overhead, memory
// growth, and fault reporting. Constants: none.

// Does nothing: its dispatch cost is pure host + launch overhead.
extern "C" __global__ void noop() {}

// out[i] = a * x[i] + i, a trivially checkable dispatch for runtime tests.
extern "C" __global__ void axpb(const float *__restrict__ x, float *__restrict__ out, float a,
                                int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  // Explicit rounding modes keep the compiler from fusing into an FMA, so the
  // host can reproduce the result bit for bit.
  if (i < n) out[i] = __fadd_rn(__fmul_rn(a, x[i]), (float)i);
}

// Writes through `ptr` (pass an invalid address) to raise a sticky device
// fault; only ever run in a child process by the tests.
extern "C" __global__ void write_to(unsigned long long ptr) {
  *reinterpret_cast<volatile int *>(ptr) = 1;
}

// %globaltimer stamps (ns) at the start and end of each block, the counter-
// sample analog for in-kernel timing; spins `cycles` clocks in between.
extern "C" __global__ void globaltimer_stamps(unsigned long long *stamps, long long cycles) {
  unsigned long long t0, t1;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
  if (threadIdx.x == 0) {
    stamps[2 * blockIdx.x] = t0;
    stamps[2 * blockIdx.x + 1] = t1;
  }
}
