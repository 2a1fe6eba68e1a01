/* Hard limits on everything an archive controls. Exceeding one is an error
 * that names the limit. They bound the memory and work that a hostile file
 * can cost; the real models we know of stay far below each. */
#ifndef SKOPSFS_LIMITS_H
#define SKOPSFS_LIMITS_H

/* schema.json is read whole; a 500-tree forest writes about 7 MiB, a dict
 * of a million small ints (which skops loads) about 350 MiB. */
#define SK_MAX_SCHEMA_BYTES (512u * 1024 * 1024)
/* Node nesting; jansson itself stops JSON nesting at 2048 levels. */
#define SK_MAX_NODE_DEPTH 512
#define SK_MAX_NODES 4000000u
/* A dict of a million keys has a million and one children (key_types). */
#define SK_MAX_CHILDREN_PER_NODE 4000000u
/* Walking hidden parts (key_types, shapes) that shared objects make large. */
#define SK_MAX_AUDIT_STEPS 100000000ull
/* Keys longer than this are refused outright rather than cut to a name. */
#define SK_MAX_KEY_BYTES 65536u
#define SK_MAX_MEMBERS 1000000u
/* The largest member the reader will serve, uncompressed. */
#define SK_MAX_MEMBER_BYTES (1ull << 40)
/* A member up to this size is verified (CRC-32, lengths) in full when a
 * reader is first opened on it; larger ones by their first in-order read or
 * by the daemon's background pass. */
#define SK_VERIFY_AT_OPEN_BYTES (64ull << 20)
/* A member up to this size is read whole when a reader opens it, checked,
 * and served from memory from then on: one read instead of one per call,
 * and the bytes served are the bytes checked. All open readers together
 * hold at most SK_MAX_HELD_BYTES; past it a reader reads the file as it
 * does for larger members. */
#define SK_HOLD_MEMBER_BYTES (256u * 1024)
#define SK_MAX_HELD_BYTES (256ull << 20)
/* DEFLATE can expand at most ~1032:1; a larger declared ratio is a lie. */
#define SK_MAX_COMPRESSION_RATIO 1100u
/* A compressed joblib file is decompressed whole into memory (a memfd). */
#define SK_MAX_PICKLE_BYTES (4ull << 30)
/* A ratio limit on decompression (an option) counts only past this much
 * output, so that a small pickle's header does not trip it. */
#define SK_PICKLE_RATIO_FLOOR_BYTES (1u << 20)
/* liblzma's memory for one decoder (xz -9 needs 65 MiB, LZMA_alone's
 * dictionary may claim up to 4 GiB). */
#define SK_MAX_PICKLE_DECODER_MEMORY (512ull << 20)
/* numpy writes headers of a few hundred bytes; it reads at most 10000. */
#define SK_MAX_NPY_HEADER_BYTES 65536u
#define SK_MAX_NPY_DIMS 64u
/* Records of one tree's nodes array that the content checks follow; they
 * keep about 15 bytes a record (sklearn's own take 56). */
#define SK_MAX_CHECKED_TREE_NODES (1u << 25)
/* Threads the content checks run on at most (one per online CPU below it;
 * each holds one tree's graph, SK_MAX_CHECKED_TREE_NODES records at most). */
#define SK_MAX_CHECK_THREADS 8u
/* A sparse matrix's .npz member that the content checks copy into memory
 * to read its inner zip; a 10^7-nonzero CSR matrix is about 120 MiB. */
#define SK_MAX_CHECKED_NPZ_BYTES (256u * 1024 * 1024)
/* Linux's NAME_MAX. */
#define SK_MAX_NAME_BYTES 255u
/* Entries in a mounted tree (nodes, aliases, .type files). */
#define SK_MAX_ENTRIES 8000000u
/* Allowlist lines and their length. */
#define SK_MAX_ALLOWLIST_TYPES 100000u
#define SK_MAX_TYPE_NAME_BYTES 4096u
/* A trust file is read whole; skops's own default lists are about 20 KiB. */
#define SK_MAX_TRUST_FILE_BYTES (16u * 1024 * 1024)
/* A trust file's line, comment included. */
#define SK_MAX_TRUST_LINE_BYTES 65536u

/* .skops/schema.json of a mounted pickle, where each reference of a shared
 * object is written out in full as skops writes it. */
#define SK_MAX_PICKLE_SCHEMA_TEXT (64u * 1024 * 1024)

/* The limits a user may raise (-o max_schema_mb=, max_nodes=, max_entries=,
 * max_children=, max_key_bytes=, max_pickle_mb=, max_pickle_opcodes=,
 * max_pickle_memo=, max_pickle_values=, max_pickle_arena_mb=,
 * max_pickle_schema_mb= for mount.skopsfs; --max-schema-mb, --max-nodes,
 * --max-entries, --max-children, --max-key-bytes, --max-pickle-mb,
 * --max-pickle-opcodes, --max-pickle-memo, --max-pickle-values,
 * --max-pickle-arena-mb, --max-pickle-schema-mb for skopsfs): a zero field means the default above
 * (or pickle.h's). */
struct sk_limits {
    unsigned long long schema_bytes;
    unsigned long long nodes;
    unsigned long long entries;
    unsigned long long children;  /* per node: SK_MAX_CHILDREN_PER_NODE */
    unsigned long long key_bytes; /* SK_MAX_KEY_BYTES */
    /* Pickle and joblib files: */
    unsigned long long pickle_bytes;        /* decompressed: SK_MAX_PICKLE_BYTES */
    unsigned long long pickle_opcodes;      /* SK_PICKLE_MAX_OPCODES */
    unsigned long long pickle_memo;         /* SK_PICKLE_MAX_MEMO */
    unsigned long long pickle_values;       /* SK_PICKLE_MAX_VALUES */
    unsigned long long pickle_arena_bytes;  /* SK_PICKLE_MAX_ARENA_BYTES */
    unsigned long long pickle_schema_bytes; /* SK_MAX_PICKLE_SCHEMA_TEXT */
};

#endif
