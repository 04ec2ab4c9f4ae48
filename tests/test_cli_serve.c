/* bin/stepfuse serve and replay as processes: argument errors, and a replay to a serving
 * client that is then stopped with SIGTERM and leaves its state file. */
#include <criterion/criterion.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spec.h"
#include "testutil.h"
#include "util.h"
#include "weights.h"

#define STEPFUSE "bin/stepfuse"

extern char **environ;

Test(cli_serve, bad_arguments_and_addresses)
{
    expect_command(STEPFUSE " serve --help", 0, "usage: stepfuse serve");
    expect_command(STEPFUSE " replay --help", 0, "usage: stepfuse replay");
    expect_command(STEPFUSE " demo --help", 0, "usage: stepfuse demo");
    expect_command(STEPFUSE " serve --spec specs/tiny.yaml", 2, "--spec, --weights and --connect are required");
    expect_command(STEPFUSE " serve --spec a --weights b --connect nowhere", 2, "expected HOST:PORT");
    expect_command(STEPFUSE " serve --spec a --weights b --connect h:70000", 2, "not a number in 0..65535");
    expect_command(STEPFUSE " serve --spec a --weights b --connect h:1 --backend tpu", 2,
           "--backend is one of cpu, gpu; got 'tpu'");
    expect_command(STEPFUSE " serve --spec a --weights b --connect h:1 --snapshot-every x", 2,
           "--snapshot-every wants a number >= 0, got 'x'");
    expect_command(STEPFUSE " replay --data tests/data/tiny.csv", 2, "--data and --listen are required");
    expect_command(STEPFUSE " replay --data missing.csv --listen 0", 1, "missing.csv: cannot open");
    expect_command(STEPFUSE " replay --data tests/data/tiny.csv --listen 0 --speed fast", 2,
           "--speed wants a number >= 0, got 'fast'");
    expect_command(STEPFUSE " replay --data tests/data/tiny.csv --listen 0 --spec specs/tiny.yaml", 2,
           "needs both --spec and --weights");
    expect_command(STEPFUSE " demo --backend tpu", 2, "--backend is one of auto, cpu, gpu");
}

typedef struct {
    char dir[64], weights[128], state[128];
} files_t;

static void make_weights(files_t *f, uint64_t seed)
{
    spec_t spec;
    char err[ERR_MAX];
    cr_assert_eq(spec_load("specs/tiny.yaml", &spec, err), 0, "%s", err);
    snprintf(f->dir, sizeof f->dir, "/tmp/stepfuse-cli-XXXXXX");
    cr_assert(mkdtemp(f->dir));
    snprintf(f->weights, sizeof f->weights, "%s/w.safetensors", f->dir);
    snprintf(f->state, sizeof f->state, "%s/state.bin", f->dir);
    cr_assert_eq(weights_generate(&spec, seed, f->weights, 0, err), 0, "%s", err);
}

static pid_t spawn(const char *const *argv, int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Exit status of pid, waiting at most `seconds` (then it is killed: -1). */
static int wait_exit(pid_t pid, double seconds)
{
    int status;
    for (int i = 0; i < seconds * 100; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char *buf = xcalloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(cli_serve, replay_to_serve_then_sigterm_saves_state, .timeout = 60)
{
    files_t f;
    make_weights(&f, 5);
    char replay_log[160], serve_log[160], json[160], address[32];
    snprintf(replay_log, sizeof replay_log, "%s/replay.log", f.dir);
    snprintf(serve_log, sizeof serve_log, "%s/serve.log", f.dir);
    snprintf(json, sizeof json, "%s/report.json", f.dir);

    FILE *rl = fopen(replay_log, "w"), *sl = fopen(serve_log, "w");
    const char *replay_argv[] = {STEPFUSE, "replay", "--data", "tests/data/tiny.csv", "--listen",
                                 "0", "--speed", "0", "--spec", "specs/tiny.yaml",
                                 "--weights", f.weights, "--json", json, "--accept-timeout", "20",
                                 NULL};
    pid_t replay = spawn(replay_argv, fileno(rl));
    const char *serve_argv[] = {STEPFUSE, "serve", "--spec", "specs/tiny.yaml", "--weights",
                                f.weights, "--connect", address, "--max-symbols", "64",
                                "--state-file", f.state, NULL};
    pid_t serve = -1;
    for (int tries = 0; tries < 100; tries++) { /* until the replay listens */
        usleep(50000);
        char *text = slurp(replay_log), *at = strstr(text, "listening on 127.0.0.1:");
        int port = at ? atoi(at + strlen("listening on 127.0.0.1:")) : 0;
        free(text);
        if (port > 0) { /* the replay's ephemeral port */
            snprintf(address, sizeof address, "127.0.0.1:%d", port);
            serve = spawn(serve_argv, fileno(sl));
            break;
        }
    }
    cr_assert(serve > 0, "the replay never listened");
    int replay_rc = wait_exit(replay, 30);
    kill(serve, SIGTERM);
    int serve_rc = wait_exit(serve, 10);
    fclose(rl);
    fclose(sl);
    char *rtext = slurp(replay_log), *stext = slurp(serve_log);
    cr_assert_eq(replay_rc, 0, "replay exit %d:\n%s", replay_rc, rtext);
    cr_assert_eq(serve_rc, 0, "serve exit %d:\n%s", serve_rc, stext);
    cr_assert(strstr(rtext, "100 sent of 100, 100 answered, 0 dropped"), "%s", rtext);
    cr_assert(strstr(stext, "state saved to"), "%s", stext);
    cr_assert_eq(access(f.state, R_OK), 0);
    cr_assert_eq(access(json, R_OK), 0);

    /* the client's state file, offered to other weights, is refused */
    files_t g;
    make_weights(&g, 6);
    char cmd[512], *out;
    snprintf(cmd, sizeof cmd, STEPFUSE " serve --spec specs/tiny.yaml --weights %s --connect %s --max-symbols 64 "
                              "--state-file %s",
             g.weights, address, f.state);
    int rc = run_command(cmd, 20, &out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "made with other weights"), "%s", out);
    free(out);
    free(rtext);
    free(stext);
    unlink(g.weights);
    rmdir(g.dir);
    unlink(f.weights), unlink(f.state), unlink(replay_log), unlink(serve_log), unlink(json);
    rmdir(f.dir);
}
