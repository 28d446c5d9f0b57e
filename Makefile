# SPDX-License-Identifier: BSD-2-Clause
# ksplit build. Output goes to $(OUT) (build/ by default). `make help` lists targets.

CLANG		?= clang
BPFTOOL		?= bpftool
HOST_ARCH	:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
# Only `make ARCH=...` chooses another: an ARCH in the environment (a kernel
# build's, say) does not.
ifneq ($(origin ARCH),command line)
ARCH		:= $(HOST_ARCH)
endif
PKG_CONFIG	?= pkg-config

# ARCH=arm64 on an x86 host cross-builds the agent, the tools and the tests
# into build-arm64/ with Debian's cross gcc against the arm64 multiarch -dev
# libraries (scripts/deps.sh --arm64). Host tools (clang, bpftool) still make
# the BPF object and the skeleton; the object differs only in
# __TARGET_ARCH_arm64 (CO-RE relocates its fields against the node's BTF).
ifneq ($(ARCH),$(HOST_ARCH))
ifneq ($(ARCH),arm64)
$(error ARCH=$(ARCH): only arm64 cross-builds (host is $(HOST_ARCH)))
endif
CROSS		:= aarch64-linux-gnu-
OUT		?= build-arm64
ifeq ($(origin CC),default)
CC		:= $(CROSS)gcc
endif
PKG_CONFIG	:= $(CROSS)pkg-config
DEPS_GROUP	:= --arm64
VM_GROUP	:= --vm-arm64
endif
VM_GROUP	?= --vm
# The cross build's unit tests run under qemu-user (KS_TEST_EXEC: also the
# binaries they start); its kernel tests and demo run in the arm64 guest.
ifdef CROSS
KS_TEST_EXEC	:= qemu-aarch64
HOST_ONLY	:= $(filter test kern-test skew deploy-test demo image image-test image-test-arm64 fresh-check bench bench-% fuzz,$(MAKECMDGOALS))
ifneq ($(HOST_ONLY),)
$(error ARCH=$(ARCH) is a cross build: $(HOST_ONLY) runs this host's build; the arm64 unit tests run in `make unit-test ARCH=$(ARCH)` (qemu-user), the kernel tests and demo in `make vm-test ARCH=$(ARCH)`, the arm64 image in `make image` (without ARCH: it takes $(OUT) in))
endif
endif
OUT		?= build

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# SANITIZE=1 builds the same userspace with ASan+UBSan into build-san/.
ifeq ($(SANITIZE),1)
OUT		:= build-san
SANFLAGS	:= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CFLAGS		?= -O2 -g
CFLAGS		+= -std=gnu11 -Wall -Wextra -Werror -MMD -MP $(SANFLAGS) $(ABI_DEFS) \
		   -Iinclude -Iuser
LDFLAGS		+= $(SANFLAGS)
LDLIBS		:= -lbpf -lelf -lz -lyaml -ljson-c -lmnl -lhttp_parser -lnghttp2 -lcurl -lssl -lcrypto -lm \
		   $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
ifdef CROSS
# libhttp-parser-dev is not Multi-Arch: same (its :arm64 would remove the
# host's), so the cross link takes the arm64 runtime library by file name and
# the header from the host's -dev package.
LDLIBS		:= $(patsubst -lhttp_parser,-l:libhttp_parser.so.2.9,$(LDLIBS))
endif
BPF_CFLAGS	:= -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__TARGET_ARCH_$(ARCH) \
		   -Iinclude -Ivmlinux -Ibpf -MMD -MP $(ABI_DEFS)

# maps.bpf.c, the one object that defines the maps, goes first on the
# `bpftool gen object` line on purpose, not by name order: libbpf 1.1 loses
# the relocations of programs in an object linked before the maps' definer.
BPF_SRCS	:= bpf/maps.bpf.c $(filter-out bpf/maps.bpf.c,$(sort $(wildcard bpf/*.bpf.c)))
BPF_OBJS	:= $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKEL		:= $(OUT)/ksplit.skel.h
# user/ is one folder per subsystem (common config image datapath health metrics agent cli).
USER_SRCS	:= $(sort $(wildcard user/*/*.c))
LIB_SRCS	:= $(filter-out user/cli/main.c,$(USER_SRCS))
LIB_OBJS	:= $(patsubst user/%.c,$(OUT)/user/%.o,$(LIB_SRCS))
# Only the datapath loads the BPF object, so only it sees the generated skeleton.
DP_OBJS		:= $(filter $(OUT)/user/datapath/%,$(LIB_OBJS))
LIB		:= $(OUT)/libksplit.a
BIN		:= $(OUT)/ksplit
TOOL_SRCS	:= $(sort $(wildcard bench/*.c))
TOOLS		:= $(patsubst bench/%.c,$(OUT)/%,$(TOOL_SRCS))
UNIT_SRCS	:= $(sort $(wildcard selftests/unit/test_*.c))
UNIT_BINS	:= $(patsubst selftests/unit/%.c,$(OUT)/selftests/unit/%,$(UNIT_SRCS))
KERN_SRCS	:= $(sort $(wildcard selftests/kern/test_*.c))
KERN_BINS	:= $(patsubst selftests/kern/%.c,$(OUT)/selftests/kern/%,$(KERN_SRCS))
KERN_LIB_SRCS	:= $(filter-out $(KERN_SRCS),$(sort $(wildcard selftests/kern/*.c)))
KERN_LIB_OBJS	:= $(patsubst selftests/kern/%.c,$(OUT)/selftests/kern/%.o,$(KERN_LIB_SRCS))
# The stand-in Kubernetes API server (tests and bench only; not part of ksplit).
APISERVER_SRCS	:= $(sort $(wildcard selftests/apiserver/*.c))
APISERVER_OBJS	:= $(patsubst selftests/apiserver/%.c,$(OUT)/selftests/apiserver/%.o,$(APISERVER_SRCS))
APISERVER	:= $(OUT)/selftests/apiserver/ks-apiserver

# `make`, `make test`, `make demo` and `make bench` install what they need:
# every build directory waits for scripts/deps.sh (idempotent: when all is
# installed it only asks dpkg), and the stamp re-runs it when the list changes.
DEPS_STAMP	:= $(OUT)/.deps-ok
BENCH_STAMP	:= $(OUT)/.deps-bench-ok
IMAGE_STAMP	:= $(OUT)/.deps-image-ok
DEPLOY_STAMP	:= $(OUT)/.deps-deploy-ok
VM_STAMP	:= $(OUT)/.deps-vm-ok

.PHONY: skew all help test unit-test kern-test deploy-test demo fresh-check image image-test image-test-arm64 vm-test bench bench-bpf bench-prober bench-metrics bench-tc fuzz vmlinux deps clean
.DEFAULT_GOAL := all

all: $(BIN) $(TOOLS) $(APISERVER)

help:
	@echo 'ksplit targets:'
	@echo '  all (default)  build $(BIN) and the test/bench tools'
	@echo '  test           unit tests (no root) then kernel tests (root)'
	@echo '  unit-test      cmocka unit tests only (no root; builds $(BIN) for test_cli; ARCH=arm64: under qemu-aarch64)'
	@echo '  kern-test      real-kernel tests only (root; netns + cgroup)'
	@echo '  skew           $(OUT)/skew/ksplit: the agent with another map layout, for test_upgrade'
	@echo '  deploy-test    render deploy/ with kubectl kustomize (offline) and check it against the agent'
	@echo '  demo           run the checkout A/B demo (root)'
	@echo '  image          OCI image from Debian packages in $(OUT)/image/ (root; mmdebstrap + umoci); with'
	@echo '                 $(ARM64_OUT)/ksplit (make ARCH=arm64) also the linux/arm64 image, both under one index'
	@echo '  image-test     run the image with podman: split, restart, capabilities only (root); then image-test-arm64'
	@echo '  image-test-arm64  the arm64 image: pulled by platform, its ksplit run under qemu-aarch64 (root)'
	@echo '  vm-test        KERNEL=6.1|5.10: kernel tests and the demo on a Debian cloud kernel under qemu (root; network once; 6.1: 9-11 min, 5.10: ~30 s)'
	@echo '                 ARCH=arm64: the same with the arm64 cross build on Debian'"'"'s arm64 cloud kernel (qemu-system-aarch64; 6.1: ~20 min)'
	@echo '  fresh-check    make demo + make test in a clean Debian 12 chroot (root; network; ~5 min, +30 s to build the cached rootfs)'
	@echo '  bench          benchmarks vs kube-proxy shapes, then bench-prober (root; QUICK=1 for a short run)'
	@echo '  bench-tc       TC programs: ns per packet with BPF_PROG_TEST_RUN (BEFORE=<build dir> beside), iperf3 through a veth (root)'
	@echo '  bench-bpf      BPF ns per connection at N = 1 and 50,000; BEFORE=<build dir> measures another build beside this one (root)'
	@echo '  bench-prober   health checker CPU at 5,000 endpoints every 5 s (root)'
	@echo '  bench-metrics  time and agent CPU of one /metrics scrape at 10,000 services (root)'
	@echo '  fuzz           run the manifest and health-check response fuzzers (FUZZ_SECONDS=60 each)'
	@echo '  vmlinux        regenerate vmlinux/vmlinux.h from /sys/kernel/btf/vmlinux'
	@echo '  deps           install Debian build/test dependencies'
	@echo '  clean          remove build/, build-san/ and build-arm64/'
	@echo 'variables: V=1 (show commands)  SANITIZE=1 (ASan+UBSan build in build-san/)  ARCH=arm64 (cross-build into build-arm64/)'

deps:
	$(Q)bash scripts/deps.sh

vmlinux:
	$(call msg,GEN,vmlinux/vmlinux.h)
	$(Q){ echo '/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */'; \
	      echo '/* Generated by `make vmlinux` (bpftool btf dump file /sys/kernel/btf/vmlinux format c). */'; \
	      $(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c; } > vmlinux/vmlinux.h.tmp
	$(Q)mv vmlinux/vmlinux.h.tmp vmlinux/vmlinux.h

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/ksplit.bpf.o: $(BPF_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(OUT)/ksplit.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name ksplit_bpf > $@.tmp && mv $@.tmp $@

# user/<subsystem>/ dirs are made here, not by a rule above: wait for deps.sh too.
$(OUT)/user/%.o: user/%.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The skeleton is generated: -MMD records it only after a first compile, so
# the datapath names it here (and only the datapath has $(OUT) to include from).
$(DP_OBJS): $(SKEL)
$(DP_OBJS): CFLAGS += -I$(OUT)

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): user/cli/main.c $(LIB) | $(OUT)/user
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# The TC cost tool drives the datapath in-process and crafts frames with the kern tests' builder.
$(OUT)/tc_cost: bench/tc_cost.c selftests/kern/packets.c $(LIB) | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iselftests/kern $(LDFLAGS) bench/tc_cost.c selftests/kern/packets.c $(LIB) $(LDLIBS) -o $@

$(OUT)/%: bench/%.c | $(OUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LDLIBS) -o $@

$(OUT)/selftests/unit/%: selftests/unit/%.c $(LIB) | $(OUT)/selftests/unit
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iselftests $(LDFLAGS) $< $(LIB) $(LDLIBS) -lcmocka -o $@

$(OUT)/selftests/kern/%.o: selftests/kern/%.c $(SKEL) | $(OUT)/selftests/kern
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iselftests -c $< -o $@

$(OUT)/selftests/kern/%: selftests/kern/%.c $(KERN_LIB_OBJS) $(LIB) | $(OUT)/selftests/kern
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iselftests $(LDFLAGS) $< $(KERN_LIB_OBJS) $(LIB) $(LDLIBS) -lcmocka -o $@

$(OUT)/selftests/apiserver/%.o: selftests/apiserver/%.c | $(OUT)/selftests/apiserver
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $$($(PKG_CONFIG) --cflags libmicrohttpd json-c) -c $< -o $@

$(APISERVER): $(APISERVER_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $$($(PKG_CONFIG) --libs libmicrohttpd json-c) -lpthread -o $@

# The ks-apiserver tests drive it with libcurl (selftests/apiserver/harness.h).
$(OUT)/selftests/unit/test_apiserver $(OUT)/selftests/unit/test_apiserver_kubectl: LDLIBS += -lcurl

$(OUT) $(OUT)/bpf $(OUT)/user $(OUT)/selftests/unit $(OUT)/selftests/kern $(OUT)/selftests/apiserver:
	$(Q)mkdir -p $@

$(OUT) $(OUT)/bpf $(OUT)/user $(OUT)/selftests/unit $(OUT)/selftests/kern $(OUT)/selftests/apiserver: | $(DEPS_STAMP)

$(DEPS_STAMP): scripts/deps.sh
	$(call msg,DEPS,scripts/deps.sh $(DEPS_GROUP))
	$(Q)bash scripts/deps.sh $(DEPS_GROUP)
	$(Q)mkdir -p $(@D) && touch $@

$(IMAGE_STAMP): scripts/deps.sh
	$(call msg,DEPS,scripts/deps.sh --image)
	$(Q)bash scripts/deps.sh --image
	$(Q)mkdir -p $(@D) && touch $@

$(DEPLOY_STAMP): scripts/deps.sh
	$(call msg,DEPS,scripts/deps.sh --deploy)
	$(Q)bash scripts/deps.sh --deploy
	$(Q)mkdir -p $(@D) && touch $@

$(VM_STAMP): scripts/deps.sh
	$(call msg,DEPS,scripts/deps.sh $(VM_GROUP))
	$(Q)bash scripts/deps.sh $(VM_GROUP)
	$(Q)mkdir -p $(@D) && touch $@

$(BENCH_STAMP): scripts/deps.sh
	$(call msg,DEPS,scripts/deps.sh --bench)
	$(Q)bash scripts/deps.sh --bench
	$(Q)mkdir -p $(@D) && touch $@

unit-test: $(BIN) $(APISERVER) $(UNIT_BINS)
	$(Q)KS_TEST_EXEC=$(KS_TEST_EXEC) bash scripts/run-tests.sh unit $(UNIT_BINS)

# Another real build for selftests/kern/test_upgrade: the same sources with
# another map layout (KS_ABI_SKEW in include/ksplit/abi.h), in $(OUT)/skew/.
skew:
	$(Q)$(MAKE) --no-print-directory OUT=$(OUT)/skew ABI_DEFS=-DKS_ABI_SKEW $(OUT)/skew/ksplit

kern-test: $(BIN) $(TOOLS) $(KERN_BINS) skew
	$(Q)bash scripts/run-tests.sh kern $(KERN_BINS)

test: unit-test deploy-test kern-test

# The kustomizations render offline and hold what the agent needs.
deploy-test: $(DEPLOY_STAMP)
	$(Q)bash scripts/deploy-test.sh

# OCI layout and archives in $(OUT)/image/: Debian packages only, no registry.
# The arm64 cross build in $(ARM64_OUT) (`make ARCH=arm64`), when it exists,
# is brought up to date and becomes a second image, linux/arm64, in the same
# layout under one image index; without it the image is this host's alone
# and scripts/image.sh says so.
ARM64_OUT	?= $(OUT)-arm64
image: $(IMAGE_STAMP) $(BIN)
	$(Q)if [ -e $(ARM64_OUT)/ksplit ]; then $(MAKE) --no-print-directory ARCH=arm64 OUT=$(ARM64_OUT) $(ARM64_OUT)/ksplit; fi
	$(Q)OUT=$(OUT) ARM64_OUT=$(ARM64_OUT) bash scripts/image.sh

# The host's image under podman, then, when it was built, the arm64 one:
# pulled by platform from the index, its own binary run under qemu-user.
image-test: image $(TOOLS)
	$(Q)OUT=$(OUT) bash scripts/image-test.sh
	$(Q)if [ -e $(OUT)/image/ksplit-image-arm64.tar ]; then OUT=$(OUT) ARM64_OUT=$(ARM64_OUT) bash scripts/image-test-arm64.sh; \
	else echo '[image-test] no arm64 image to test (make ARCH=arm64 first)'; fi

image-test-arm64: image
	$(Q)OUT=$(OUT) ARM64_OUT=$(ARM64_OUT) bash scripts/image-test-arm64.sh

demo: $(BIN) $(TOOLS)
	$(Q)bash scripts/demo.sh

# The kernel tests named in VM_TESTS and the demo on Debian's own cloud
# kernel KERNEL (6.1: Debian 12, AL2023's family; 5.10: Debian 11, AL2's),
# booted under qemu: scripts/vm-test.sh. ARCH=arm64: the cross build in
# build-arm64/ on Debian's arm64 cloud kernel under qemu-system-aarch64.
KERNEL		?= 6.1
VM_TESTS	?= split udp_vips passive drain
vm-test: $(VM_STAMP) $(BIN) $(TOOLS) $(patsubst %,$(OUT)/selftests/kern/test_%,$(VM_TESTS))
	$(Q)OUT=$(OUT) KERNEL=$(KERNEL) ARCH=$(ARCH) TESTS="$(VM_TESTS)" bash scripts/vm-test.sh

# The README's promise on a clean bookworm (mmdebstrap): catches packages
# missing from scripts/deps.sh that this machine happens to have.
fresh-check:
	$(Q)OUT=$(OUT) bash scripts/fresh-check.sh

bench: $(BENCH_STAMP) $(BIN) $(TOOLS) bench-prober bench-metrics bench-tc
	$(Q)QUICK=$(QUICK) bash bench/run.sh

# Per-packet ns of the TC programs (BPF_PROG_TEST_RUN, repeat 1,000,000), against an empty program
# (BEFORE=<build dir>: another build's figures beside, same run); then iperf3 through the veth.
bench-tc: $(BIN) $(OUT)/tc_cost
	$(Q)OUT=$(OUT) BEFORE=$(BEFORE) ROUNDS=$(if $(QUICK),3,5) bash bench/tc_cost.sh
	$(Q)OUT=$(OUT) ROUNDS=$(if $(QUICK),3,5) bash bench/tc_iperf.sh

# One /metrics scrape at 10,000 services: wall time, agent CPU, RSS before and after.
bench-metrics: $(BENCH_STAMP) $(BIN)
	$(Q)KSPLIT=$(BIN) SCRAPES=$(if $(QUICK),10,50) bash bench/metrics_scrape.sh

# BPF ns per connection, optionally before/after: BEFORE=/path/to/other/checkout/build.
bench-bpf: $(BIN) $(TOOLS)
	$(Q)OUT=$(OUT) BEFORE=$(BEFORE) bash bench/bpf_cost.sh

# Active health checker CPU at 5,000 endpoints / 5 s (60 s per kind, 20 s with QUICK=1).
bench-prober: $(OUT)/selftests/kern/test_prober_scale
	$(Q)OUT=$(OUT) SECONDS_RUN=$(if $(QUICK),20,60) KINDS="http tcp https https2 h2c" bash bench/prober_cpu.sh

FUZZ_SECONDS	?= 60
FUZZ_SRCS	:= $(sort $(wildcard user/config/*.c user/common/*.c))
fuzz: $(SKEL)
	$(call msg,FUZZ,$(OUT)/fuzz_manifest)
	$(Q)mkdir -p $(OUT)/fuzz-corpus
	$(Q)$(CLANG) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -Iinclude -Iuser -I$(OUT) \
		selftests/fuzz/fuzz_manifest.c $(FUZZ_SRCS) -lyaml -lbpf -ljson-c -o $(OUT)/fuzz_manifest
	$(Q)$(OUT)/fuzz_manifest -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=5 \
		$(OUT)/fuzz-corpus selftests/data
	$(call msg,FUZZ,$(OUT)/fuzz_response)
	$(Q)mkdir -p $(OUT)/fuzz-corpus-response
	$(Q)$(CLANG) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -Iuser \
		selftests/fuzz/fuzz_response.c user/health/h1.c user/health/h2.c -lhttp_parser -lnghttp2 \
		-o $(OUT)/fuzz_response
	$(Q)$(OUT)/fuzz_response -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=5 \
		$(OUT)/fuzz-corpus-response

clean:
	$(Q)rm -rf build build-san build-arm64

-include $(wildcard $(OUT)/*/*.d $(OUT)/user/*/*.d $(OUT)/selftests/*/*.d)
