# cairn — build, test, bench.
#
# Plain GNU make: the tree is small, pkg-config gives every flag, and a
# newcomer can read the whole build in one screen (CMake would add a
# configure step and nothing we need).  Sources are globbed per folder, so
# adding a module is adding a file.
#
#   make            build build/cairn
#   make up         install what is missing, build, start the embedded default
#   make down       stop what make up started (the data stays)
#   make test       install what is missing, build, run every test (and again
#                   under ASan + UBSan)
#   make check-asan the whole suite under AddressSanitizer + UBSan
#   make bench      benchmarks against redis-server (not part of test)
#   make deps       apt-get install the Debian packages that are missing
#   make clean

CC      ?= cc
PKGS    := libuv libxxhash libcurl jansson libcrypto
OPT     ?= -O2 -g
SAN     ?=
# CFLAGS/LDFLAGS stay free for the caller (make CFLAGS=-march=native).
XCFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
           -Wno-unused-parameter -fno-strict-aliasing -pthread -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(OPT) $(SAN) $(XCFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
BUILD   ?= build

LIB_SRC  := $(wildcard src/lib/*.c) $(wildcard src/net/*.c)
NODE_SRC := $(wildcard src/node/*.c)
MANAGER_SRC := $(wildcard src/manager/*.c)
CTL_SRC  := $(wildcard src/ctl/*.c)
GW_SRC   := $(wildcard src/gateway/*.c)
MAIN_SRC := src/main.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
NODE_OBJ := $(NODE_SRC:%.c=$(BUILD)/%.o)
MANAGER_OBJ := $(MANAGER_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ  := $(CTL_SRC:%.c=$(BUILD)/%.o)
GW_OBJ   := $(GW_SRC:%.c=$(BUILD)/%.o)
# Everything a role needs besides the library; unit tests link it too.
APP_OBJ  := $(NODE_OBJ) $(MANAGER_OBJ) $(CTL_OBJ) $(GW_OBJ)
MAIN_OBJ := $(MAIN_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

DEBS := build-essential pkg-config clang libclang-rt-14-dev libuv1-dev libxxhash-dev \
        libcurl4-openssl-dev libjansson-dev libssl-dev \
        libcmocka-dev libhiredis-dev redis-server redis-tools \
        etcd-server etcd-client curl python3 python3-pytest python3-redis

.PHONY: all deps up down test unit integration check-asan bench clean
all: $(BUILD)/cairn

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcairn.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/cairn: $(MAIN_OBJ) $(APP_OBJ) $(BUILD)/libcairn.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcairn.a $(APP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -Itests/unit -o $@ $< $(filter-out %/main.o,$(APP_OBJ)) \
	    $(BUILD)/libcairn.a $(LDLIBS) -lcmocka

$(BUILD)/tests/hiredis_client: tests/integration/hiredis_client.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $$(pkg-config --cflags --libs hiredis)

deps:
	@scripts/deps.sh $(DEBS)

up: deps all
	scripts/up.sh

down:
	scripts/down.sh

unit: all $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

integration: all $(BUILD)/tests/hiredis_client
	CAIRN_BIN=$(abspath $(BUILD)/cairn) HIREDIS_CLIENT=$(abspath $(BUILD)/tests/hiredis_client) \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration tests/diff

# The whole suite: optimised build, then again under ASan + UBSan.
test: deps
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) check-asan

check-asan: deps
	ASAN_OPTIONS=quarantine_size_mb=32 $(MAKE) BUILD=build-asan CC=clang OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    unit integration

# Every benchmark, each against its peer in the same run (about 20 min).
bench: deps all
	@scripts/deps.sh nutcracker
	bench/node_vs_redis.sh
	bench/replication.sh
	bench/failover.sh
	bench/gateway.sh

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
