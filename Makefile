# stepfuse: `make` builds bin/stepfuse, `make test` builds and runs the Criterion suite.
CUDA ?= /usr/local/cuda
CC ?= gcc
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Igen -Iruntime -Ibuild -I$(CUDA)/include
LDLIBS = -lyaml -ljansson -lm -lpthread \
         -L$(CUDA)/lib64 -lnvrtc -lcudart_static -ldl -lrt -Wl,-rpath,$(CUDA)/lib64

LIB_SRC := $(sort $(wildcard gen/*.c) $(filter-out runtime/main.c,$(wildcard runtime/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=build/%.o)
TEST_SRC := $(sort $(wildcard tests/*.c))
TEST_OBJ := $(TEST_SRC:%.c=build/%.o)

all: bin/stepfuse

build/%.o: %.c $(wildcard gen/*.h runtime/*.h tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/libstepfuse.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

bin/stepfuse: build/runtime/main.o build/libstepfuse.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

bin/tests: $(TEST_OBJ) build/libstepfuse.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $^ -o $@ -lcriterion $(LDLIBS)

# Tests run from the repository root; golden data comes from $STEPFUSE_SHARED (../shared).
test: bin/stepfuse bin/tests
	./bin/tests $(TEST_ARGS)

# Debian packages the build and the tests need (CUDA comes from $(CUDA)).
DEPS = build-essential pkg-config libyaml-dev libjansson-dev libcriterion-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@test -x $(CUDA)/bin/nvcc || test -f $(CUDA)/include/nvrtc.h || \
	  { echo "CUDA toolkit not found at $(CUDA) (set CUDA=...)" >&2; exit 1; }
	@dpkg -s $(DEPS) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEPS); }

clean:
	rm -rf build bin

.PHONY: all test deps clean
