# docket - build, test, run. See README.md.
#
#   make            the docket binary (-O2)
#   make SANITIZE=1 the same with AddressSanitizer and UBSan (build/asan)
#   make test       unit and end-to-end tests under the sanitizers
#   make run        the engine on the embedded default home
#   make deps       install the Debian packages docket needs
#   make lint       cppcheck, clang-tidy and clang-format checks
#   make bench      benchmarks against their peers (bench/results.md)

PKGS = libxml-2.0 sqlite3 libcurl libgit2 jansson libmicrohttpd libcrypto zlib
CC ?= cc

ifeq ($(SANITIZE),1)
BUILD ?= build/asan
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD ?= build/release
OPT = -O2 -g
endif

# Recursive (=) on purpose: pkg-config runs when a recipe needs it, which
# is after `make deps` has installed the packages on a fresh machine.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread -lm
# The docket binary does not link these: cli/lazylib.c loads them when a
# command first calls them, by the sonames their -dev links name. libgit2,
# loaded so, still finds cli/git_tls.c's mbedtls_x509_crt_parse_file first
# only if the executable exports it.
LAZY_PKGS = libcurl libmicrohttpd libgit2 libxml-2.0 libcrypto
CLI_LIBS = $(shell pkg-config --libs $(filter-out $(LAZY_PKGS),$(PKGS))) -lpthread -lm -ldl
soname = $(shell readelf -d "$$($(CC) -print-file-name=lib$(1).so)" | sed -n 's/.*soname: \[\(.*\)\]/\1/p')
CFLAGS_ALL = -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wno-unused-parameter -D_GNU_SOURCE $(OPT) -I. -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(OPT) $(LDFLAGS)

LIB_DIRS = util definitions engine store web-hooks api
LIB_SRC = $(sort $(wildcard $(addsuffix /*.c,$(LIB_DIRS))))
CLI_SRC = $(sort $(wildcard cli/*.c))
RES = $(sort $(wildcard definitions/*.rng api/static/*))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/resources.o
CLI_OBJ = $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC = $(sort $(wildcard tests/tools/*.c))
TOOL_BIN = $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)

.PHONY: all deps test run lint format bench clean unit-build
.DELETE_ON_ERROR:

all: docket

docket: $(BUILD)/docket
ifneq ($(SANITIZE),1)
	cp $(BUILD)/docket docket
endif

$(BUILD)/docket: $(CLI_OBJ) $(BUILD)/libdocket.a
	$(CC) $(LDFLAGS_ALL) -Wl,--export-dynamic-symbol=mbedtls_x509_crt_parse_file -o $@ $^ \
		$(CLI_LIBS)

$(BUILD)/cli/lazylib.o: CFLAGS_ALL += -DDK_LIBCURL_SONAME='"$(call soname,curl)"' \
	-DDK_LIBMHD_SONAME='"$(call soname,microhttpd)"' -DDK_LIBGIT2_SONAME='"$(call soname,git2)"' \
	-DDK_LIBXML2_SONAME='"$(call soname,xml2)"' -DDK_LIBCRYPTO_SONAME='"$(call soname,crypto)"'


$(BUILD)/libdocket.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(BUILD)/gen/resources.c: $(RES) tools/embed.sh
	@mkdir -p $(dir $@)
	sh tools/embed.sh $(RES) > $@

$(BUILD)/gen/resources.o: $(BUILD)/gen/resources.c
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libdocket.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libdocket.a $(PKG_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libdocket.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/libdocket.a $(PKG_LIBS)

unit-build: $(BUILD)/docket $(UNIT_BIN) $(TOOL_BIN)

deps:
	@sh tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory SANITIZE=1 unit-build
	@sh tests/run.sh build/asan

run: deps
	@$(MAKE) --no-print-directory docket
	@sh tools/run.sh

lint: deps
	@sh tools/lint.sh

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(UNIT_SRC) $(TOOL_SRC) $(wildcard */*.h)

bench: deps
	@$(MAKE) --no-print-directory docket
	@sh bench/run.sh

clean:
	rm -rf build docket

-include $(shell find build -name '*.d' 2>/dev/null)
