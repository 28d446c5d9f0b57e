// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ksplit binary's error contract, run as a user runs it (posix_spawn,
 * no shell): every error exits 1; under --json it is one JSON object with
 * an "error" key on stdout, otherwise "ksplit <cmd>: ..." on stderr. None
 * of these touch a BPF object, so no root is needed.
 */
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

extern char **environ;

struct run {
	int status;		/* exit status */
	char out[16384];	/* stdout */
	char err[16384];	/* stderr */
};

static void slurp(FILE *f, char *buf, size_t len)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
}

/* build/selftests/unit/test_cli -> build/ksplit (also for build-san/). */
static void ksplit(struct run *r, ...)
{
	char exe[PATH_MAX], bin[PATH_MAX + 16], *argv[16] = { bin };
	posix_spawn_file_actions_t fa;
	FILE *out = tmpfile(), *err = tmpfile();
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	size_t i = 1;
	va_list ap;
	pid_t pid;

	assert_true(n > 0);
	exe[n] = 0;
	snprintf(bin, sizeof(bin), "%s/../../ksplit", dirname(exe));
	if (access(bin, X_OK))
		fail_msg("%s not found: run `make` first", bin);
	va_start(ap, r);
	while (i < 15 && (argv[i] = va_arg(ap, char *)))
		i++;
	va_end(ap);
	argv[i] = NULL;
	assert_non_null(out);
	assert_non_null(err);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_adddup2(&fa, fileno(out), STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fileno(err), STDERR_FILENO);
	assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &r->status, 0), pid);
	assert_true(WIFEXITED(r->status));
	r->status = WEXITSTATUS(r->status);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
}

/* stdout is exactly one JSON object (whitespace around it aside) with "error". */
static struct json_object *json_error(const struct run *r)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(r->out);
	struct json_object *o, *e;
	size_t end;

	assert_non_null(tok);
	o = json_tokener_parse_ex(tok, r->out, len);
	assert_non_null(o);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	assert_int_equal(strspn(r->out + end, " \n"), len - end);
	assert_true(json_object_is_type(o, json_type_object));
	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_true(json_object_is_type(e, json_type_string));
	assert_true(json_object_get_string_len(e) > 0);
	return o;
}

static void test_status_json_missing_pin_dir(void **state)
{
	struct run r;
	struct json_object *o;

	(void)state;
	ksplit(&r, "status", "--json", "--pin-dir", "/nonexistent", NULL);
	assert_int_equal(r.status, 1);
	o = json_error(&r);
	assert_non_null(strstr(json_object_get_string(json_object_object_get(o, "error")),
			       "cannot read pinned maps in /nonexistent"));
	json_object_put(o);
}

static void test_status_text_missing_pin_dir(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "status", "--pin-dir", "/nonexistent", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "ksplit status: cannot read pinned maps in /nonexistent: "));
}

/* down fails half-way on a pin dir that is a file: one object, result and error. */
static void test_down_json_error_keeps_result(void **state)
{
	char path[] = "/tmp/ksplit-test-cli-XXXXXX";
	struct json_object *o, *v;
	struct run r;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	ksplit(&r, "down", "--json", "--pin-dir", path, NULL);
	unlink(path);
	assert_int_equal(r.status, 1);
	o = json_error(&r);
	assert_true(json_object_object_get_ex(o, "ok", &v));
	assert_false(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "removed", &v));
	assert_int_equal(json_object_get_int(v), 0);
	json_object_put(o);
}

static void test_option_errors_json(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "validate", "--json", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "status", "--json", "--bogus", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "down", "--json", "--pin-dir", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
	ksplit(&r, "run", "--json", NULL);
	assert_int_equal(r.status, 1);
	json_object_put(json_error(&r));
}

/* --allow-loopback-vips is an option of run and validate only. */
static void test_allow_loopback_vips(void **state)
{
	struct run r;

	(void)state;
	ksplit(&r, "validate", "--allow-loopback-vips", "/nonexistent.yaml", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "error: /nonexistent.yaml: No such file or directory"));
	ksplit(&r, "run", "--allow-loopback-vips", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "at least one --config PATH is required"));
	ksplit(&r, "status", "--allow-loopback-vips", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "allow-loopback-vips"));
	ksplit(&r, "validate", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "validate [--allow-loopback-vips] [--json] PATH..."));
}

static void test_unknown_command_and_help(void **state)
{
	static const char *const names[] = { "run", "validate", "status", "down", "version",
					     "help" };
	char line[32];
	struct run r;
	size_t i;

	(void)state;
	ksplit(&r, "bogus", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "ksplit: unknown command 'bogus'"));
	ksplit(&r, "help", NULL);
	assert_int_equal(r.status, 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(line, sizeof(line), "\n  %s", names[i]);
		assert_non_null(strstr(r.out, line));
	}
	ksplit(&r, "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\n  status [--json] [--pin-dir DIR]\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_json_missing_pin_dir),
		cmocka_unit_test(test_status_text_missing_pin_dir),
		cmocka_unit_test(test_down_json_error_keeps_result),
		cmocka_unit_test(test_option_errors_json),
		cmocka_unit_test(test_unknown_command_and_help),
		cmocka_unit_test(test_allow_loopback_vips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
