/*
 * The version of the library that was actually loaded.
 */
#include "mlc-int.h"

#define STR2(x) #x
#define STR(x) STR2(x)

MLC_EXPORT uint32_t
mlc_version(void)
{
	return (uint32_t)MLC_VERSION_MAJOR << 16 |
	       (uint32_t)MLC_VERSION_MINOR << 8 | (uint32_t)MLC_VERSION_PATCH;
}

MLC_EXPORT const char *
mlc_version_string(void)
{
	return MLC_VERSION_STRING;
}
