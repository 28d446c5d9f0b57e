/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An index bound the verifier of every supported kernel sees. 6.18's
 * verifier follows a bound from a test to every copy of the value (spilled
 * to the stack, or written by a bpf_loop callback); 6.1's does not, and
 * then refuses the array access ("invalid access to map value ... R2 max
 * value is outside of the allowed memory range"). A mask does bound the
 * register that indexes, but clang drops `x & (n - 1)` where it has proved
 * x < n already: the empty asm hides what it proved.
 */
#ifndef KSPLIT_BPF_BOUND_H
#define KSPLIT_BPF_BOUND_H

/* x & (n - 1), kept by the compiler; n is a power of two. */
#define ks_bound(x, n)                                                                       \
	({                                                                                   \
		__u32 __ks_v = (x);                                                          \
		_Static_assert(((n) & ((n) - 1)) == 0, "ks_bound: n is not a power of two"); \
		asm volatile("" : "+r"(__ks_v));                                             \
		__ks_v & ((n) - 1);                                                          \
	})

#endif /* KSPLIT_BPF_BOUND_H */
