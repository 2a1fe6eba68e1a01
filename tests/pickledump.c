/* Test program: runs the pickle machine and the mapping on one pickle or
 * (uncompressed) joblib file and prints, in sections, the mapped schema
 * (JSON, insertion order), the member table, the globals (as the stream
 * spells them) and the unrepresentable findings. Exit 0 when it mapped
 * (findings or not), 2 when the machine refused the file. --skops-copies:
 * write shared objects as skops does (sk_pickle_map_options). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pickle.h"
#include "pickle_map.h"

static const char *kind_name(enum sk_pickle_member_kind kind)
{
    return kind == SK_PICKLE_MEMBER_RANGE          ? "range"
           : kind == SK_PICKLE_MEMBER_LATIN1_RANGE ? "latin1"
                                                   : "bytes";
}

static void print_member(const struct sk_pickle_member *m, const char *indent)
{
    printf("%s%s kind=%s offset=%" PRIu64 " length=%" PRIu64 " bytes=%zu", indent, m->name,
           kind_name(m->kind), m->offset, m->length, m->bytes_length);
    if (m->is_npy) {
        printf(" descr=%s fortran=%d byteswap=%d shape=(", m->descr, m->fortran_order, m->byteswap);
        for (unsigned i = 0; i < m->ndim; i++)
            printf("%s%" PRIu64, i ? "," : "", m->shape[i]);
        printf(")");
    }
    printf("\n");
    for (unsigned i = 0; i < m->part_count; i++)
        print_member(&m->parts[i], "    ");
}

int main(int argc, char **argv)
{
    struct sk_pickle_map_options map_options = {0};
    if (argc == 3 && !strcmp(argv[1], "--skops-copies")) {
        map_options.skops_copies = true;
        argv++;
        argc--;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: pickledump [--skops-copies] FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 2;
    }
    const unsigned char *input = (const unsigned char *)"";
    if (st.st_size > 0) {
        void *mapped = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapped == MAP_FAILED) {
            perror("mmap");
            return 2;
        }
        input = mapped;
    }
    struct sk_error err = {0};
    struct sk_pickle p;
    struct sk_pickle_options options = {.joblib = true};
    int rc = sk_pickle_run(input, (uint64_t)st.st_size, &options, &p, &err);
    struct sk_pickle_map map = {0};
    if (rc == 0 && sk_pickle_map(&p, &map_options, &map, &err) != 0)
        rc = -1;
    printf("== schema\n");
    if (map.schema) {
        char *text =
            json_dumps(map.schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        printf("%s\n", text ? text : "null");
        free(text);
    } else {
        printf("null\n");
    }
    printf("== cyclic %d\n== protocol %d\n== members\n", map.cyclic, p.protocol);
    for (size_t i = 0; i < map.member_count; i++)
        print_member(&map.members[i], "");
    printf("== joblib arrays\n");
    for (uint32_t i = 0; i < p.value_count; i++)
        if (p.values[i].kind == SK_PK_JOBLIB_ARRAY)
            printf("%" PRIu64 " %" PRIu64 "\n", p.values[i].u.joblib.section_start,
                   p.values[i].u.joblib.section_end);
    printf("== globals\n");
    for (uint32_t i = 0; i < p.global_count; i++) {
        const struct sk_pk_global *g = &p.globals[i];
        printf("%.*s.%.*s %s %" PRIu64 "\n", (int)g->raw_module.length, g->raw_module.bytes,
               (int)g->raw_name.length, g->raw_name.bytes, g->opcode, g->offset);
    }
    printf("== unrepresentable\n");
    if (rc == 0) {
        for (size_t i = 0; i < map.finding_count; i++)
            printf("%s\t%" PRIu64 "\t%s\n", map.findings[i].global, map.findings[i].offset,
                   map.findings[i].reason);
    } else {
        for (uint32_t i = 0; i < p.finding_count; i++)
            printf("%s\t%" PRIu64 "\t%s\n", p.findings[i].global ? p.findings[i].global : "",
                   p.findings[i].offset, p.findings[i].what);
    }
    printf("== error\n%s\n", rc == 0 ? "" : err.message);
    sk_pickle_map_free(&map);
    sk_pickle_free(&p);
    return rc == 0 ? 0 : 2;
}
