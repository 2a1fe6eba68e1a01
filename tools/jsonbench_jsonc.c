/* jsonbench's json-c reader (see jsonbench.c). */
#include <json-c/json.h>
#include <stddef.h>

int read_json_c(const char *text, size_t length);

/* json-c's tokener, which always builds its tree of the document. */
int read_json_c(const char *text, size_t length)
{
    json_tokener *tokener = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tokener, text, (int)length);
    int rc = root != NULL && json_tokener_get_error(tokener) == json_tokener_success ? 0 : -1;
    json_object_put(root);
    json_tokener_free(tokener);
    return rc;
}
