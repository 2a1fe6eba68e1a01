/* Measures the JSON readers considered for schema.json (issue 14) on one
 * file: MB/s (best of N runs) and the process's peak RSS, one reader per
 * process so that each peak is its own. Not built by meson: yajl and
 * json-c are not dependencies of skopsfs. Build and run (after ninja -C build):
 *
 *   cc -O2 -D_GNU_SOURCE -Iformat -o /tmp/jsonbench tools/jsonbench.c tools/jsonbench_jsonc.c \
 *      build/libskopsformat.a -ljansson -lyajl -ljson-c -lcrypto -lz -lm
 *   for r in jsonscan jsonscan-decode sk_json_parse jansson yajl json-c; do
 *       /tmp/jsonbench $r schema.json 10; done
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <yajl/yajl_parse.h>

#include "jsonscan.h"
#include "jsontext.h"

static unsigned long events;

static int read_jsonscan(const char *text, size_t length, int decode)
{
    struct sk_json_scan scan;
    sk_json_scan_init(&scan, text, length);
    struct sk_error err = {0};
    struct sk_json_event event;
    enum sk_json_token token;
    static char buffer[1 << 20];
    while ((token = sk_json_next(&scan, &event, &err)) > SK_JSON_END) {
        events++;
        if (decode && (token == SK_JSON_KEY || token == SK_JSON_STRING) &&
            event.length <= sizeof buffer)
            events += sk_json_decode(&event, buffer) & 1;
    }
    return token == SK_JSON_END ? 0 : -1;
}

static int read_sk_json_parse(const char *text, size_t length)
{
    json_t *root;
    struct sk_json_arena *arena;
    struct sk_error err = {0};
    int rc = sk_json_parse(text, length, &root, &arena, &err);
    sk_json_arena_free(arena);
    return rc;
}

static int read_jansson(const char *text, size_t length)
{
    json_t *root = json_loadb(text, length, JSON_ALLOW_NUL, NULL);
    json_decref(root);
    return root == NULL ? -1 : 0;
}

static int count(void *context)
{
    (void)context;
    events++;
    return 1;
}
static int count_bool(void *context, int value)
{
    (void)value;
    return count(context);
}
static int count_number(void *context, const char *text, size_t length)
{
    (void)text, (void)length;
    return count(context);
}
static int count_string(void *context, const unsigned char *text, size_t length)
{
    (void)text, (void)length;
    return count(context);
}

/* yajl's event stream, numbers as text (no conversion), strings validated. */
static int read_yajl(const char *text, size_t length)
{
    static const yajl_callbacks callbacks = {
        count, count_bool,   NULL,  NULL,  count_number, count_string,
        count, count_string, count, count, count,
    };
    yajl_handle handle = yajl_alloc(&callbacks, NULL, NULL);
    int rc = yajl_parse(handle, (const unsigned char *)text, length) == yajl_status_ok &&
                     yajl_complete_parse(handle) == yajl_status_ok
                 ? 0
                 : -1;
    yajl_free(handle);
    return rc;
}

/* json-c's tokener, in its own file: json-c and jansson both name a type json_type. */
int read_json_c(const char *text, size_t length);

static int run(const char *reader, const char *text, size_t length)
{
    if (strcmp(reader, "jsonscan") == 0)
        return read_jsonscan(text, length, 0);
    if (strcmp(reader, "jsonscan-decode") == 0)
        return read_jsonscan(text, length, 1);
    if (strcmp(reader, "sk_json_parse") == 0)
        return read_sk_json_parse(text, length);
    if (strcmp(reader, "jansson") == 0)
        return read_jansson(text, length);
    if (strcmp(reader, "yajl") == 0)
        return read_yajl(text, length);
    if (strcmp(reader, "json-c") == 0)
        return read_json_c(text, length);
    fprintf(stderr, "unknown reader %s\n", reader);
    exit(2);
}

static double seconds(struct timespec from, struct timespec to)
{
    return (double)(to.tv_sec - from.tv_sec) + (double)(to.tv_nsec - from.tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: jsonbench READER FILE RUNS\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (f == NULL) {
        perror(argv[2]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    size_t length = (size_t)ftell(f);
    rewind(f);
    char *text = malloc(length);
    if (fread(text, 1, length, f) != length)
        return 2;
    fclose(f);
    /* CPU time as well as wall time: on a shared machine the best CPU time
     * of N runs is the steadier figure. */
    double best = 1e9, best_cpu = 1e9;
    for (int i = 0; i < atoi(argv[3]); i++) {
        struct timespec t0, t1, c0, c1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        if (run(argv[1], text, length) != 0) {
            fprintf(stderr, "%s refused %s\n", argv[1], argv[2]);
            return 1;
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        best = fmin(best, seconds(t0, t1));
        best_cpu = fmin(best_cpu, seconds(c0, c1));
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("%-16s %7.1f MB/s wall %7.1f MB/s cpu  %7.2f ms  peak RSS %6.1f MB (text %.1f MB)\n",
           argv[1], (double)length / best / 1e6, (double)length / best_cpu / 1e6, best_cpu * 1e3,
           (double)usage.ru_maxrss / 1024, (double)length / 1e6);
    return 0;
}
