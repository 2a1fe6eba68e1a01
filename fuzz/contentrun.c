#include "contentrun.h"

#include <stdio.h>
#include <stdlib.h>

#include "model.h"

char *content_outcome(const char *path, const char *threads)
{
    setenv("SKOPSFS_CHECK_THREADS", threads, 1);
    struct sk_model *model;
    struct sk_error err = {0};
    struct sk_model_options options = {.check_content = true};
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    if (out == NULL)
        abort();
    if (sk_model_open(path, &options, &model, &err) != 0) {
        fprintf(out, "error: %s\n", err.message);
    } else {
        const struct sk_content_report *report = model->content;
        for (size_t i = 0; i < report->count; i++) {
            char *line = sk_content_problem_text(&report->problems[i]);
            fprintf(out, "%s [node %zu]\n", line ? line : "(out of memory)",
                    (size_t)report->problems[i].object->index);
            free(line);
        }
        sk_model_close(model);
    }
    fclose(out);
    unsetenv("SKOPSFS_CHECK_THREADS");
    if (text == NULL)
        abort();
    return text;
}
