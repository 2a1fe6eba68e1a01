#include "commands.h"
int cli_diff(struct cli_options *options, int count, char **operands)
{
    (void)options; (void)count; (void)operands;
    return 2;
}
