# SPDX-License-Identifier: BSD-2-Clause
# ksplit build. Output goes to $(OUT) (build/ by default). `make help` lists targets.

OUT		?= build
CC		?= cc
CLANG		?= clang
BPFTOOL		?= bpftool
ARCH		:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

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
CFLAGS		+= -std=gnu11 -Wall -Wextra -Werror -MMD -MP $(SANFLAGS) \
		   -Iinclude -Iuser -I$(OUT)
LDFLAGS		+= $(SANFLAGS)
LDLIBS		:= -lbpf -lelf -lz -lyaml -ljson-c -lmnl -lcurl -lm
BPF_CFLAGS	:= -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__TARGET_ARCH_$(ARCH) \
		   -Iinclude -Ivmlinux -Ibpf -MMD -MP

BPF_SRCS	:= $(sort $(wildcard bpf/*.bpf.c))
BPF_OBJS	:= $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKEL		:= $(OUT)/ksplit.skel.h
LIB_SRCS	:= $(filter-out user/main.c,$(sort $(wildcard user/*.c)))
LIB_OBJS	:= $(patsubst user/%.c,$(OUT)/user/%.o,$(LIB_SRCS))
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

.PHONY: all help test unit-test kern-test demo bench fuzz vmlinux deps clean
.DEFAULT_GOAL := all

all: $(BIN) $(TOOLS)

help:
	@echo 'ksplit targets:'
	@echo '  all (default)  build $(BIN) and the test/bench tools'
	@echo '  test           unit tests (no root) then kernel tests (root)'
	@echo '  unit-test      cmocka unit tests only'
	@echo '  kern-test      real-kernel tests only (root; netns + cgroup)'
	@echo '  demo           run the checkout A/B demo (root)'
	@echo '  bench          benchmarks vs kube-proxy shapes (root; QUICK=1 for a short run)'
	@echo '  fuzz           run the manifest parser fuzzer (FUZZ_SECONDS=60)'
	@echo '  vmlinux        regenerate vmlinux/vmlinux.h from /sys/kernel/btf/vmlinux'
	@echo '  deps           install Debian build/test dependencies'
	@echo '  clean          remove build/ and build-san/'
	@echo 'variables: V=1 (show commands)  SANITIZE=1 (ASan+UBSan build in build-san/)'

deps:
	$(Q)bash scripts/deps.sh

vmlinux:
	$(call msg,GEN,vmlinux/vmlinux.h)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h.tmp
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

$(OUT)/user/%.o: user/%.c $(SKEL) | $(OUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): user/main.c $(LIB) | $(OUT)/user
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

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

$(OUT) $(OUT)/bpf $(OUT)/user $(OUT)/selftests/unit $(OUT)/selftests/kern:
	$(Q)mkdir -p $@

unit-test: $(UNIT_BINS)
	$(Q)bash scripts/run-tests.sh unit $(UNIT_BINS)

kern-test: $(BIN) $(TOOLS) $(KERN_BINS)
	$(Q)bash scripts/run-tests.sh kern $(KERN_BINS)

test: unit-test kern-test

demo: $(BIN) $(TOOLS)
	$(Q)bash scripts/demo.sh

bench: $(BIN) $(TOOLS)
	$(Q)QUICK=$(QUICK) bash bench/run.sh

FUZZ_SECONDS	?= 60
FUZZ_SRCS	:= $(sort $(wildcard user/manifest*.c user/yaml*.c user/model*.c user/diag*.c user/log.c))
fuzz: $(SKEL)
	$(call msg,FUZZ,$(OUT)/fuzz_manifest)
	$(Q)mkdir -p $(OUT)/fuzz-corpus
	$(Q)$(CLANG) -g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -Iinclude -Iuser -I$(OUT) \
		selftests/fuzz/fuzz_manifest.c $(FUZZ_SRCS) -lyaml -lbpf -o $(OUT)/fuzz_manifest
	$(Q)$(OUT)/fuzz_manifest -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=5 \
		$(OUT)/fuzz-corpus selftests/data

clean:
	$(Q)rm -rf build build-san

-include $(wildcard $(OUT)/*/*.d $(OUT)/selftests/*/*.d)
