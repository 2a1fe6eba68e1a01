/* Reads everything a mount would serve from a layout: every file's bytes,
 * every xattr, every link resolved, so the fuzzers reach all of it. */
#ifndef SKOPSFS_FUZZ_WALK_H
#define SKOPSFS_FUZZ_WALK_H

#include "model.h"

void fuzz_walk_layout(const struct sk_layout *layout);

#endif
