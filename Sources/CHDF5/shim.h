#ifndef QPK_CHDF5_SHIM_H
#define QPK_CHDF5_SHIM_H
#include <hdf5/serial/hdf5.h>
#include <string.h>

/*
 * Macro constants, `_g` globals and version-dependent calls that Swift cannot import (or that
 * change between HDF5 1.10 and 1.14) are wrapped here as static inline functions, so the Swift
 * side sees one stable API. Nothing here allocates or keeps state.
 */

static inline hid_t qpk_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t qpk_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t qpk_H5S_ALL(void) { return H5S_ALL; }
static inline size_t qpk_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/* Turns off the automatic printing of the library's error stack. */
static inline herr_t qpk_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* File access flags. */
static inline unsigned qpk_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned qpk_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned qpk_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }

/* Predefined file/memory types (the `_g` globals). */
static inline hid_t qpk_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t qpk_H5T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t qpk_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t qpk_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t qpk_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t qpk_H5T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t qpk_H5T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t qpk_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }
static inline hid_t qpk_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t qpk_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t qpk_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t qpk_H5T_C_S1(void) { return H5T_C_S1; }

/* Property list classes. */
static inline hid_t qpk_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t qpk_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t qpk_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }

/* Filters. */
static inline H5Z_filter_t qpk_H5Z_FILTER_DEFLATE(void) { return H5Z_FILTER_DEFLATE; }

/* The number of attributes attached to an object, or a negative value on error. */
static inline long long qpk_attribute_count(hid_t object) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(object, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
#else
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_NUM_ATTRS) < 0) return -1;
#endif
    return (long long)info.num_attrs;
}

/*
 * Writes a key identifying `object` within its file (its header address or token) into `key`
 * (16 bytes, zero-padded). Two hard links to one object give the same key, which is how the tree
 * walk detects cycles and aliases. Returns a negative value on error.
 */
static inline herr_t qpk_object_key(hid_t object, unsigned char key[16]) {
    memset(key, 0, 16);
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(object, &info, H5O_INFO_BASIC) < 0) return -1;
    memcpy(key, &info.token, sizeof(info.token) < 16 ? sizeof(info.token) : 16);
#else
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) return -1;
    memcpy(key, &info.addr, sizeof(info.addr) < 16 ? sizeof(info.addr) : 16);
#endif
    return 0;
}

/* The link type of `name` in `group`: 0 hard, 1 soft, 64 external, other user-defined; < 0 on error. */
static inline int qpk_link_type(hid_t group, const char *name) {
#if H5_VERSION_GE(1, 12, 0)
    H5L_info2_t info;
    if (H5Lget_info2(group, name, &info, H5P_DEFAULT) < 0) return -1;
#else
    H5L_info_t info;
    if (H5Lget_info(group, name, &info, H5P_DEFAULT) < 0) return -1;
#endif
    return (int)info.type;
}

/* Frees the strings H5Aread allocated for a variable-length string attribute. */
static inline herr_t qpk_reclaim_vlen(hid_t type, hid_t space, void *buffer) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type, space, H5P_DEFAULT, buffer);
#else
    return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buffer);
#endif
}

#endif
